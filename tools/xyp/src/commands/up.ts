import { readFile } from 'node:fs/promises';
import { join, basename } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { loadConfig, PlatformEnv, storeSettings } from '@xyp/config';
import { createPipelineClient, submitRunRequest, unary } from '@xyp/grpc';
import { SERVICE_NAMES, WORKSPACE_ROOT, defaultHttpPort, ensureRedis, startServiceProcess, type ServiceProcess } from '@xyp/launcher';
import { createArtifactStore } from '@xyp/storage';
import { collectParam, followRun } from './run';
import { printResult, progress } from '../cli-output';

interface UpOptions {
  param: Record<string, string>;
  input?: string;
  keep?: boolean;
  json?: boolean;
  grpcPort: string;
}

/**
 * `xyp up`: the platform on one machine. Starts Redis when none runs, every service
 * as its own process, the local artifact store, submits a run of the bundled sample
 * (or --input) and follows it to the end. Ctrl-C stops everything cleanly.
 */
export function registerUp(program: Command): void {
  program
    .command('up')
    .description('Start the whole platform here, run the recipe on the bundled sample (or --input) and follow it to the end')
    .option('--input <file>', 'input corpus, JSONL {id, text, category, lang?} per line (default: bundled sample)')
    .option('--keep', 'keep the platform running after the run (Bull Board, gRPC) until Ctrl-C')
    .option('--grpc-port <port>', 'control plane gRPC port', process.env.XYP_CONTROL_PLANE_GRPC_PORT ?? '50051')
    .option('--param <name=value>', 'stage parameter, e.g. corpus.bucket.strategy=bfd (repeatable)', collectParam, {})
    .option('--json', 'print the run report as JSON')
    .action(async (options: UpOptions) => {
      const env: Record<string, string> = {
        XYP_STORE_DIR: process.env.XYP_STORE_DIR ?? join(WORKSPACE_ROOT, '.xyp', 'store'),
        XYP_BOARD_PASSWORD: process.env.XYP_BOARD_PASSWORD ?? randomBytes(9).toString('base64url'),
        XYP_CONTROL_PLANE_GRPC_PORT: options.grpcPort,
      };
      const platform = loadConfig(PlatformEnv, { ...process.env, ...env });
      const redis = await ensureRedis(platform.XYP_REDIS_URL);
      progress(`redis ${platform.XYP_REDIS_URL}: ${redis}`);

      const services: ServiceProcess[] = [];
      let stopping: Promise<void> | undefined;
      const stopAll = () =>
        (stopping ??= (async () => {
          progress('stopping services');
          await Promise.all(services.map((service) => service.stop()));
        })());
      process.once('SIGINT', () => void stopAll().then(() => process.exit(130)));
      process.once('SIGTERM', () => void stopAll().then(() => process.exit(143)));

      const logDir = join(WORKSPACE_ROOT, '.xyp', 'logs');
      try {
        progress(`starting ${SERVICE_NAMES.join(', ')} (logs in ${logDir})`);
        await Promise.all(
          SERVICE_NAMES.map(async (name) => {
            const service = await startServiceProcess(name, { env, logFile: join(logDir, `${name}.log`) });
            services.push(service);
            progress(`  ${name} ready at ${service.httpUrl}`);
          }),
        );
        const board = `http://127.0.0.1:${defaultHttpPort('control-plane')}/queues`;
        progress(`Bull Board: ${board} (user ${process.env.XYP_BOARD_USER ?? 'admin'}, password ${env.XYP_BOARD_PASSWORD})`);

        const client = createPipelineClient(`127.0.0.1:${options.grpcPort}`);
        const submitted = await unary(client.submitRun.bind(client), submitRunRequest({
          runId: '',
          stages: [],
          inputJsonl: options.input ? await readFile(options.input) : Buffer.alloc(0),
          inputName: options.input ? basename(options.input) : '',
          params: options.param,
        }));
        const runId = submitted.run!.runId;
        progress(`run ${runId} submitted`);
        const run = await followRun(client, runId);
        client.close();

        const store = createArtifactStore(storeSettings(platform));
        const report = run.reportKey ? JSON.parse((await store.getObject(run.reportKey)).toString('utf8')) : null;
        printResult({ run, report }, Boolean(options.json), ({ run: r, report: rep }: { run: typeof run; report: { stages: Record<string, unknown> } | null }) =>
          [
            `run ${r.runId}: ${String(r.status).replace('RUN_STATUS_', '').toLowerCase()}${r.error ? ` (${r.error})` : ''}`,
            ...Object.entries(rep?.stages ?? {}).map(([stage, result]) => `  ${stage}: ${JSON.stringify(result)}`),
            ...(r.reportKey ? [`report: ${join(platform.XYP_STORE_DIR, r.reportKey)}`] : []),
          ].join('\n'),
        );
        if (String(run.status) !== 'RUN_STATUS_COMPLETED') process.exitCode = 1;
        if (options.keep) {
          progress(`platform stays up: gRPC 127.0.0.1:${options.grpcPort}, Bull Board ${board}; Ctrl-C stops it`);
          await new Promise(() => undefined);
        }
      } finally {
        if (!options.keep) await stopAll();
      }
    });
}
