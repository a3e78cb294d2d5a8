import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Command } from 'commander';
import { createPipelineClient, submitRunRequest, unary, type PipelineClient } from '@xyp/grpc';
import type { Run, RunEvent } from '@xyp/grpc';
import { printResult, progress } from '../cli-output';

const DEFAULT_ADDRESS = process.env.XYP_GRPC_ADDRESS ?? '127.0.0.1:50051';

interface Common {
  address: string;
  json?: boolean;
}

function describeRun(run: Run): string {
  const status = String(run.status).replace('RUN_STATUS_', '').toLowerCase();
  return [
    `run ${run.runId}: ${status}`,
    `  stages: ${run.stages.join(' -> ')}`,
    `  input: ${run.inputName}`,
    `  created: ${run.createdAt}  updated: ${run.updatedAt}`,
    ...(Object.keys(run.params).length ? [`  params: ${Object.entries(run.params).map(([k, v]) => `${k}=${v}`).join(' ')}`] : []),
    ...(run.error ? [`  error: ${run.error}`] : []),
    ...(run.reportKey ? [`  report: ${run.reportKey}`] : []),
  ].join('\n');
}

function describeEvent(event: RunEvent): string {
  const type = String(event.type).replace('RUN_EVENT_TYPE_', '').toLowerCase().replace(/_/g, '-');
  const share = event.total > 0 ? ` ${event.done}/${event.total} ${event.unit} (${((100 * event.done) / event.total).toFixed(0)}%)` : '';
  const attempt = event.attempt > 1 ? ` attempt ${event.attempt}` : '';
  return `${event.at.slice(11, 19)} ${event.stage.padEnd(16)} ${type}${share}${attempt}${event.message ? ` ${event.message}` : ''}`;
}

/**
 * Follows a run's events until it ends; progress goes to stderr. Resolves with the
 * final run record.
 */
export async function followRun(client: PipelineClient, runId: string, afterEventId = ''): Promise<Run> {
  const stream = client.watchRun({ runId, afterEventId });
  for await (const message of stream as AsyncIterable<{ event?: RunEvent }>) {
    if (message.event) progress(describeEvent(message.event));
  }
  const { run } = await unary(client.getRun.bind(client), { runId });
  if (!run) throw new Error(`run ${runId} vanished`);
  return run;
}

/** Collects repeated `--param name=value` (or `--file name=path`) options into one map. */
export function collectParam(entry: string, params: Record<string, string>): Record<string, string> {
  const at = entry.indexOf('=');
  if (at <= 0) throw new Error(`${entry}: expected name=value, e.g. corpus.bucket.strategy=bfd or losses.jsonl=./losses.jsonl`);
  return { ...params, [entry.slice(0, at)]: entry.slice(at + 1) };
}

/** Runs `call` with a client of the control plane at `address`, closed afterwards whatever happens. */
async function withPipelineClient<T>(address: string, call: (client: PipelineClient) => Promise<T>): Promise<T> {
  const client = createPipelineClient(address);
  try {
    return await call(client);
  } finally {
    client.close();
  }
}

function runSucceeded(run: Run): boolean {
  return String(run.status) === 'RUN_STATUS_COMPLETED';
}

export function registerRunCommands(run: Command): void {
  const withCommon = (command: Command) =>
    command.option('--address <host:port>', 'control plane gRPC address (env XYP_GRPC_ADDRESS)', DEFAULT_ADDRESS).option('--json', 'print JSON');

  withCommon(run.command('submit').description('Submit a run (the bundled sample corpus unless --input is given)'))
    .option('--input <file>', 'input corpus, JSONL {id, text, category, lang?} per line')
    .option('--run-id <id>', 'run id (submitting the same id again starts nothing)')
    .option('--stages <list>', 'comma-separated stages (default: the whole recipe)')
    .option('--param <name=value>', 'stage parameter, e.g. corpus.bucket.strategy=bfd (repeatable)', collectParam, {})
    .option('--file <name=path>', 'extra input file, e.g. losses.jsonl=./losses.jsonl for corpus.mix (repeatable)', collectParam, {})
    .option('--watch', 'follow the run until it ends; exit non-zero unless it completes')
    .action(async (options: Common & { input?: string; runId?: string; stages?: string; watch?: boolean; param: Record<string, string>; file: Record<string, string> }) => {
      const files: Record<string, Buffer> = {};
      for (const [name, path] of Object.entries(options.file)) files[name] = await readFile(path);
      const inputJsonl = options.input ? await readFile(options.input) : undefined;
      const { run: current, created } = await withPipelineClient(options.address, async (client) => {
        const response = await unary(client.submitRun.bind(client), submitRunRequest({
          runId: options.runId ?? '',
          stages: options.stages ? options.stages.split(',').map((s) => s.trim()).filter(Boolean) : [],
          // Left out without --input (the server runs the bundled sample); an empty file is sent as
          // set-but-empty, which the server refuses (INVALID_ARGUMENT) instead of running the sample.
          inputJsonl,
          inputName: options.input ? basename(options.input) : '',
          params: options.param,
          files,
        }));
        progress(`${response.created ? 'submitted' : 'already submitted'}: run ${response.run!.runId}`);
        return { run: options.watch ? await followRun(client, response.run!.runId) : response.run!, created: response.created };
      });
      printResult({ run: current, created }, Boolean(options.json), (r: { run: Run }) => describeRun(r.run));
      if (options.watch && !runSucceeded(current)) process.exitCode = 1;
    });

  withCommon(run.command('status').description("Print a run's record").argument('<runId>')).action(async (runId: string, options: Common) => {
    const { run: record } = await withPipelineClient(options.address, (client) => unary(client.getRun.bind(client), { runId }));
    printResult(record, Boolean(options.json), describeRun);
  });

  withCommon(run.command('watch').description("Follow a run's stage events until it ends").argument('<runId>'))
    .option('--after <eventId>', 'resume after this event id')
    .action(async (runId: string, options: Common & { after?: string }) => {
      const record = await withPipelineClient(options.address, (client) => followRun(client, runId, options.after ?? ''));
      printResult(record, Boolean(options.json), describeRun);
      if (!runSucceeded(record)) process.exitCode = 1;
    });

  withCommon(run.command('cancel').description('Cancel a run').argument('<runId>')).action(async (runId: string, options: Common) => {
    const { run: record } = await withPipelineClient(options.address, (client) => unary(client.cancelRun.bind(client), { runId }));
    printResult(record, Boolean(options.json), describeRun);
  });

  withCommon(run.command('artifacts').description("List a run's committed artifacts").argument('<runId>'))
    .option('--stage <stage>', 'only this stage')
    .action(async (runId: string, options: Common & { stage?: string }) => {
      const { artifacts } = await withPipelineClient(options.address, (client) =>
        unary(client.listArtifacts.bind(client), { runId, stage: options.stage ?? '' }),
      );
      printResult(artifacts, Boolean(options.json), (list: typeof artifacts) =>
        list.map((a) => `${a.stage.padEnd(16)} ${a.name.padEnd(24)} ${String(a.size).padStart(10)}  ${a.key}`).join('\n'),
      );
    });
}
