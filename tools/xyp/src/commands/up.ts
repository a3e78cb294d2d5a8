import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { loadConfig, PlatformEnv, storeSettings } from '@xyp/config';
import { createPipelineClient, submitRunRequest, unary, type PipelineClient } from '@xyp/grpc';
import { SERVICE_NAMES, ServiceGroup, WORKSPACE_ROOT, describeExit, ensureRedis } from '@xyp/launcher';
import { createArtifactStore } from '@xyp/storage';
import { collectParam, followRun } from './run';
import { ReportedError, printResult, progress } from '../cli-output';
import { readSpecUpload, writeReportCopies } from '../spec-files';

/** The bundled recipe: the run spec `xyp up` runs unless given --spec. */
export const RECIPE_SPEC = join(WORKSPACE_ROOT, 'recipes', 'xuanyuan3.yaml');

interface UpOptions {
  param: Record<string, string>;
  input?: string;
  spec: string;
  keep?: boolean;
  json?: boolean;
  grpcPort: string;
}

/**
 * `xyp up`: the platform on one machine. Starts Redis when none runs, every service
 * as its own process on its configured ports, the local artifact store, submits a run
 * of the bundled recipe (a run spec; or --spec) on the sample (or --input), follows it to
 * the end and writes its report under `.xyp/reports/`. Ctrl-C stops everything
 * cleanly. A service that fails to start stops the others, and one that exits after it
 * was ready is reported at once and ends `xyp up` with exit 1, the others stopped.
 */
export function registerUp(program: Command): void {
  program
    .command('up')
    .description('Start the whole platform here, run the recipe on the bundled sample (or --input) and follow it to the end')
    .option('--input <file>', 'input corpus, JSONL {id, text, category, lang?} per line (default: bundled sample)')
    .option('--spec <file>', 'run spec, YAML or JSON (default: the bundled recipe, recipes/xuanyuan3.yaml)', RECIPE_SPEC)
    .option('--keep', 'keep the platform running after the run (Bull Board, gRPC) until Ctrl-C')
    .option('--grpc-port <port>', 'control plane gRPC port', process.env.XYP_CONTROL_PLANE_GRPC_PORT ?? '50051')
    .option('--param <name=value>', 'stage parameter, <instance or stage>.<name>=value, e.g. corpus.bucket.strategy=bfd (repeatable)', collectParam, {})
    .option('--json', 'print the run and its report paths as JSON')
    .action(async (options: UpOptions) => {
      const env: Record<string, string> = {
        XYP_STORE_DIR: process.env.XYP_STORE_DIR ?? join(WORKSPACE_ROOT, '.xyp', 'store'),
        XYP_BOARD_PASSWORD: process.env.XYP_BOARD_PASSWORD ?? randomBytes(9).toString('base64url'),
        XYP_CONTROL_PLANE_GRPC_PORT: options.grpcPort,
        // /metrics wants a bearer token too, one per launch unless configured.
        ...(process.env.XYP_METRICS_TOKEN || process.env.XYP_METRICS_TOKEN_FILE ? {} : { XYP_METRICS_TOKEN: randomBytes(24).toString('base64url') }),
      };
      const platform = loadConfig(PlatformEnv, { ...process.env, ...env });
      // Read before anything starts: a spec that cannot be read stops here with one line.
      const spec = await readSpecUpload(options.spec);
      const redis = await ensureRedis(platform.XYP_REDIS_URL);
      progress(`redis ${platform.XYP_REDIS_URL}: ${redis}`);

      // Every service is stopped on every way out: a failed start, a service that dies,
      // the end of the run, Ctrl-C; and, should this process end otherwise, by the
      // launcher's exit hook and by each service noticing its launcher is gone.
      const group = new ServiceGroup();
      let stopping: Promise<void> | undefined;
      const stopAll = () =>
        (stopping ??= (async () => {
          progress('stopping services');
          await group.stop();
        })());
      // The run this command submitted and follows, until it ends. Interrupted, `xyp up` cancels it
      // before stopping the services: otherwise its jobs stay queued in Redis and the next `xyp up`
      // resumes it beside its own run. (`xyp run submit` runs survive restarts and resume.)
      let following: { client: PipelineClient; runId: string } | undefined;
      const interrupted = async (signal: string, code: number) => {
        if (following) {
          const { client: rpc, runId } = following;
          progress(`${signal}: cancelling run ${runId}`);
          await Promise.race([unary(rpc.cancelRun.bind(rpc), { runId }).catch((error: unknown) => progress(`could not cancel run ${runId}: ${(error as Error).message}`)), new Promise((done) => setTimeout(done, 5000))]);
        }
        await stopAll();
        process.exit(code);
      };
      process.once('SIGINT', () => void interrupted('SIGINT', 130));
      process.once('SIGTERM', () => void interrupted('SIGTERM', 143));

      const logDir = resolve(process.env.XYP_LOG_DIR ?? join(WORKSPACE_ROOT, '.xyp', 'logs'));
      let client: PipelineClient | undefined;
      const tokenFilesWritten: string[] = [];
      try {
        progress(`starting ${SERVICE_NAMES.join(', ')} (logs in ${shown(logDir)})`);
        const services = await group.start(
          SERVICE_NAMES,
          (name) => ({ env, logFile: join(logDir, `${name}.log`) }),
          (service) => progress(`  ${service.name} ready at ${service.httpUrl}`),
        );
        // A service that dies after it was ready ends `xyp up` at once, run or no run.
        const died = group.unexpectedExit.then(({ service, result }) => {
          const log = service.logFile ? `; log ${shown(service.logFile)}` : '';
          progress(`${service.name} (pid ${service.pid}) exited after it was ready, with ${describeExit(result)}${log}`);
          throw new ReportedError(`${service.name} exited`);
        });
        died.catch(() => undefined);

        const controlPlane = services.find((service) => service.name === 'control-plane')!;
        const board = `${controlPlane.httpUrl}/queues`;
        progress(`Bull Board: ${board} (user ${process.env.XYP_BOARD_USER ?? 'admin'}, password ${env.XYP_BOARD_PASSWORD})`);

        // The launch's tokens, for other shells (owner-only files, removed at stop): gRPC for
        // `xyp run ...`, and the one `/metrics` wants.
        const home = dirname(resolve(platform.XYP_STORE_DIR));
        const keep = async (name: string, token: string): Promise<string> => {
          const file = join(home, name);
          await mkdir(home, { recursive: true });
          await writeFile(file, `${token}\n`, { mode: 0o600 });
          tokenFilesWritten.push(file);
          return shown(file);
        };
        if (group.grpcToken) progress(`gRPC needs a token: XYP_GRPC_TOKEN_FILE=${await keep('grpc-token', group.grpcToken)} npx xyp run status <runId>`);
        if (env.XYP_METRICS_TOKEN) progress(`/metrics needs a token: curl -H "Authorization: Bearer $(cat ${await keep('metrics-token', env.XYP_METRICS_TOKEN)})" ${controlPlane.httpUrl}/metrics`);
        const rpc = createPipelineClient(`127.0.0.1:${options.grpcPort}`, { token: group.grpcToken });
        client = rpc;
        const run = await Promise.race([
          died,
          (async () => {
            const submitted = await unary(rpc.submitRun.bind(rpc), submitRunRequest({
              runId: '',
              spec: spec.text,
              inputJsonl: options.input ? await readFile(options.input) : spec.inputJsonl,
              inputName: options.input ? basename(options.input) : (spec.inputName ?? ''),
              params: options.param,
              files: spec.files,
            }));
            const runId = submitted.run!.runId;
            progress(`run ${runId} submitted`);
            following = { client: rpc, runId };
            const ended = await followRun(rpc, runId);
            following = undefined;
            return ended;
          })(),
        ]);

        // The report, as files a person opens: `.xyp/reports/<runId>.html` (self-contained, links
        // into the local store by relative path) and `.md`, beside the store directory.
        const store = createArtifactStore(storeSettings(platform));
        const reports = run.reportKey
          ? await writeReportCopies(store, run.reportKey, join(dirname(resolve(platform.XYP_STORE_DIR)), 'reports'), platform.XYP_STORE === 'local' ? resolve(platform.XYP_STORE_DIR) : undefined)
          : null;
        printResult({ run, reports }, Boolean(options.json), ({ run: r, reports: files }: { run: typeof run; reports: { html: string; markdown: string } | null }) =>
          [
            `run ${r.runId}: ${String(r.status).replace('RUN_STATUS_', '').toLowerCase()}${r.error ? ` (${r.error})` : ''}`,
            ...r.instances.map((i) => `  ${i.id}: ${String(i.status).replace('STAGE_INSTANCE_STATUS_', '').toLowerCase()}`),
            ...r.loops.map((l) => `  loop ${l.name}: ${l.rounds} round(s)${l.stopped ? `, ${l.stopReason}` : ''}`),
            ...(files ? [`report: ${shown(files.html)}`, `        ${shown(files.markdown)}`] : []),
          ].join('\n'),
        );
        if (String(run.status) !== 'RUN_STATUS_COMPLETED') process.exitCode = 1;
        if (options.keep) {
          progress(`platform stays up: gRPC 127.0.0.1:${options.grpcPort}, Bull Board ${board}; Ctrl-C stops it`);
          await died;
        }
      } finally {
        client?.close();
        for (const file of tokenFilesWritten) await rm(file, { force: true });
        await stopAll();
      }
    });
}

/** A path as a person reads it: relative to the working directory when inside it. */
function shown(path: string): string {
  const inside = relative(process.cwd(), path);
  return inside && !inside.startsWith('..') && !isAbsolute(inside) ? inside : path;
}
