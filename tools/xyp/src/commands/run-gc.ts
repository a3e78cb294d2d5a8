import type { Command } from 'commander';
import { unary, type CollectRunsResponse } from '@xyp/grpc';
import { parseRetention } from '@xyp/queue';
import { printResult } from '../cli-output';
import { withPipelineClient } from './run';

const MB = 1024 * 1024;

function describeCollection(response: CollectRunsResponse): string {
  const verb = response.dryRun ? 'would remove' : 'removed';
  const bytes = response.removed.reduce((sum, r) => sum + r.committedBytes, 0);
  return [
    `${verb} ${response.removed.length} run(s), ${(bytes / MB).toFixed(1)} MiB of committed artifacts (scratch objects on top); kept ${response.active} active and ${response.recent} recent run(s)`,
    ...response.removed.map((r) => `  ${r.runId.padEnd(28)} ${String(r.status).replace('RUN_STATUS_', '').toLowerCase().padEnd(9)} ended ${r.endedAt}  ${(r.committedBytes / MB).toFixed(1).padStart(8)} MiB  ${r.jobs} job(s)`),
  ].join('\n');
}

/** `xyp run gc --older-than 7d [--dry-run]`: the control plane's CollectRuns. */
export function registerRunGc(run: Command, withCommon: (command: Command) => Command): void {
  withCommon(run.command('gc').description("Remove runs that ended longer ago than --older-than: their artifacts (scratch objects included), jobs, plans, events and records"))
    .requiredOption('--older-than <duration>', 'e.g. 7d, 12h, 30m, 1d12h (0s: every ended run)')
    .option('--dry-run', 'list what would be removed and remove nothing')
    .action(async (options: { address: string; token?: string; json?: boolean; olderThan: string; dryRun?: boolean }) => {
      const olderThanSeconds = parseRetention(options.olderThan) / 1000;
      const response = await withPipelineClient(options.address, (client) => unary(client.collectRuns.bind(client), { olderThanSeconds, dryRun: Boolean(options.dryRun) }), options.token);
      printResult(response, Boolean(options.json), describeCollection);
    });
}
