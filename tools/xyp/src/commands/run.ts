import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { status as grpcStatus } from '@grpc/grpc-js';
import type { Command } from 'commander';
import { createPipelineClient, submitRunRequest, unary, type PipelineClient } from '@xyp/grpc';
import type { Run, RunEvent } from '@xyp/grpc';
import { printResult, progress } from '../cli-output';
import { readSpecUpload } from '../spec-files';
import { registerRunGc } from './run-gc';

const DEFAULT_ADDRESS = process.env.XYP_GRPC_ADDRESS ?? '127.0.0.1:50051';

interface Common {
  address: string;
  token?: string;
  json?: boolean;
}

const lower = (value: unknown, prefix: string) => String(value).replace(prefix, '').toLowerCase().replace(/_/g, '-');

export function describeRun(run: Run): string {
  const status = lower(run.status, 'RUN_STATUS_');
  return [
    `run ${run.runId}: ${status}${run.specName ? ` (spec ${run.specName})` : ''}`,
    ...(run.instances.length
      ? run.instances.map((i) => `  ${i.id.padEnd(28)} ${lower(i.status, 'STAGE_INSTANCE_STATUS_').padEnd(9)}${i.needs.length ? ` after ${i.needs.join(', ')}` : ''}`)
      : [`  stages: ${run.stages.join(' -> ')}`]),
    ...run.loops.map((l) => `  loop ${l.name}: ${l.rounds} of at most ${l.maxRounds} round(s)${l.stopped ? `, ended: ${l.stopReason}` : ''}`),
    `  input: ${run.inputName}`,
    `  created: ${run.createdAt}  updated: ${run.updatedAt}`,
    ...(Object.keys(run.params).length ? [`  params: ${Object.entries(run.params).map(([k, v]) => `${k}=${v}`).join(' ')}`] : []),
    ...(run.error ? [`  error: ${run.error}`] : []),
    ...(run.reportKey ? [`  report: ${run.reportHtmlKey || run.reportKey}`] : []),
  ].join('\n');
}

function describeEvent(event: RunEvent): string {
  const type = lower(event.type, 'RUN_EVENT_TYPE_');
  const stage = event.instance ? `${event.stage}#${event.instance}` : event.stage;
  const share = event.total > 0 ? ` ${event.done}/${event.total} ${event.unit} (${((100 * event.done) / event.total).toFixed(0)}%)` : '';
  const attempt = event.attempt > 1 ? ` attempt ${event.attempt}` : '';
  return `${event.at.slice(11, 19)} ${stage.padEnd(16)} ${type}${share}${attempt}${event.message ? ` ${event.message}` : ''}`;
}

/** How `followRun` resumes a watch that broke off. */
export interface FollowRunOptions {
  /** Reconnects in a row without an event in between before it gives up (default 6). */
  retries?: number;
  /** The first pause before reconnecting; each next one doubles, up to `maxDelayMs` (defaults 500 ms and 8 s). */
  firstDelayMs?: number;
  maxDelayMs?: number;
}

/**
 * Follows a run's events until it ends; progress goes to stderr. Resolves with the
 * final run record.
 *
 * A watch that breaks off — the control plane restarting, the connection dropping, Redis
 * unreachable for longer than the control plane waits (UNAVAILABLE, UNKNOWN, INTERNAL, a socket
 * error) — is opened again after the last event it printed, with exponential backoff, at most
 * `retries` times in a row; each time a line on stderr says so. Events are printed once each, in
 * order: ids are Redis stream ids, so one not after the last printed is a repeat and is skipped.
 * Any other status (NOT_FOUND, FAILED_PRECONDITION: Redis lost the run) ends the watch with it.
 */
export async function followRun(client: PipelineClient, runId: string, afterEventId = '', options: FollowRunOptions = {}): Promise<Run> {
  const { retries = 6, firstDelayMs = 500, maxDelayMs = 8000 } = options;
  let lastId = afterEventId;
  const reconnect = async (error: unknown, failures: number, doing: string) => {
    if (!resumableWatchError(error) || failures > retries) throw error;
    const delayMs = Math.min(firstDelayMs * 2 ** (failures - 1), maxDelayMs);
    progress(`xyp: ${doing} of run ${runId} broke off (${errorLine(error)}); reconnecting in ${(delayMs / 1000).toFixed(1)} s, after event ${lastId || '(none yet)'} (try ${failures} of ${retries})`);
    await new Promise((r) => setTimeout(r, delayMs));
  };
  for (let failures = 0; ; ) {
    try {
      const stream = client.watchRun({ runId, afterEventId: lastId });
      for await (const message of stream as AsyncIterable<{ event?: RunEvent }>) {
        const event = message.event;
        if (!event || (lastId && !streamIdAfter(event.id, lastId))) continue;
        lastId = event.id;
        failures = 0;
        progress(describeEvent(event));
      }
      break;
    } catch (error) {
      await reconnect(error, ++failures, 'the watch');
    }
  }
  for (let failures = 0; ; ) {
    try {
      const { run } = await unary(client.getRun.bind(client), { runId });
      if (!run) throw new Error(`run ${runId} vanished`);
      return run;
    } catch (error) {
      await reconnect(error, ++failures, 'reading the record');
    }
  }
}

/** gRPC statuses (and socket errors) after which a watch is worth opening again. */
const RESUMABLE_STATUSES = new Set([grpcStatus.UNAVAILABLE, grpcStatus.UNKNOWN, grpcStatus.INTERNAL, grpcStatus.DEADLINE_EXCEEDED]);

function resumableWatchError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'number') return RESUMABLE_STATUSES.has(code);
  return typeof code === 'string' && ['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT'].includes(code);
}

function errorLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0];
}

/** True when Redis stream id `id` (`<ms>-<seq>`) comes after `than`. */
export function streamIdAfter(id: string, than: string): boolean {
  const [ms, seq = '0'] = id.split('-');
  const [thanMs, thanSeq = '0'] = than.split('-');
  const a = BigInt(ms || '0');
  const b = BigInt(thanMs || '0');
  return a !== b ? a > b : BigInt(seq) > BigInt(thanSeq);
}

/** Collects repeated `--param name=value` (or `--file name=path`) options into one map. */
export function collectParam(entry: string, params: Record<string, string>): Record<string, string> {
  const at = entry.indexOf('=');
  if (at <= 0) throw new Error(`${entry}: expected name=value, e.g. corpus.bucket.strategy=bfd or losses.jsonl=./losses.jsonl`);
  return { ...params, [entry.slice(0, at)]: entry.slice(at + 1) };
}

/**
 * Runs `call` with a client of the control plane at `address`, closed afterwards whatever happens;
 * `token` (--token) over XYP_GRPC_TOKEN.
 */
export async function withPipelineClient<T>(address: string, call: (client: PipelineClient) => Promise<T>, token?: string): Promise<T> {
  const client = createPipelineClient(address, token ? { token } : undefined);
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
    command
      .option('--address <host:port>', 'control plane gRPC address (env XYP_GRPC_ADDRESS)', DEFAULT_ADDRESS)
      .option('--token <token>', 'bearer token the control plane asks for (env XYP_GRPC_TOKEN)')
      .option('--json', 'print JSON');

  withCommon(
    run
      .command('submit')
      .description('Submit a run: a run spec (YAML/JSON), or --stages; the bundled recipe without either, on the sample corpus unless --input is given')
      .argument('[spec]', 'run spec file, e.g. recipes/xuanyuan3.yaml; the input files its inputs name by path are uploaded with it'),
  )
    .option('--input <file>', 'input corpus, JSONL {id, text, category, lang?} per line (over the spec\'s corpus.jsonl)')
    .option('--run-id <id>', 'run id (submitting the same id again starts nothing)')
    .option('--stages <list>', 'comma-separated stages (default: the whole recipe)')
    .option('--param <name=value>', 'stage parameter, <instance or stage>.<name>=value, e.g. corpus.bucket.strategy=bfd (repeatable)', collectParam, {})
    .option('--file <name=path>', 'extra input file, e.g. losses.jsonl=./losses.jsonl for corpus.mix (repeatable)', collectParam, {})
    .option('--watch', 'follow the run until it ends; exit non-zero unless it completes')
    .action(async (specPath: string | undefined, options: Common & { input?: string; runId?: string; stages?: string; watch?: boolean; param: Record<string, string>; file: Record<string, string> }) => {
      const spec = specPath ? await readSpecUpload(specPath) : undefined;
      const files: Record<string, Buffer> = { ...spec?.files };
      for (const [name, path] of Object.entries(options.file)) files[name] = await readFile(path);
      const inputJsonl = options.input ? await readFile(options.input) : spec?.inputJsonl;
      const { run: current, created } = await withPipelineClient(options.address, async (client) => {
        const response = await unary(client.submitRun.bind(client), submitRunRequest({
          runId: options.runId ?? '',
          stages: options.stages ? options.stages.split(',').map((s) => s.trim()).filter(Boolean) : [],
          // Left out without --input (the server runs the bundled sample); an empty file is sent as
          // set-but-empty, which the server refuses (INVALID_ARGUMENT) instead of running the sample.
          inputJsonl,
          inputName: options.input ? basename(options.input) : (spec?.inputName ?? ''),
          params: options.param,
          files,
          spec: spec?.text ?? '',
        }));
        progress(`${response.created ? 'submitted' : 'already submitted'}: run ${response.run!.runId}`);
        return { run: options.watch ? await followRun(client, response.run!.runId) : response.run!, created: response.created };
      }, options.token);
      printResult({ run: current, created }, Boolean(options.json), (r: { run: Run }) => describeRun(r.run));
      if (options.watch && !runSucceeded(current)) process.exitCode = 1;
    });

  withCommon(run.command('status').description("Print a run's record").argument('<runId>')).action(async (runId: string, options: Common) => {
    const { run: record } = await withPipelineClient(options.address, (client) => unary(client.getRun.bind(client), { runId }), options.token);
    printResult(record, Boolean(options.json), describeRun);
  });

  withCommon(run.command('watch').description("Follow a run's stage events until it ends").argument('<runId>'))
    .option('--after <eventId>', 'resume after this event id')
    .action(async (runId: string, options: Common & { after?: string }) => {
      const record = await withPipelineClient(options.address, (client) => followRun(client, runId, options.after ?? ''), options.token);
      printResult(record, Boolean(options.json), describeRun);
      if (!runSucceeded(record)) process.exitCode = 1;
    });

  withCommon(run.command('cancel').description('Cancel a run').argument('<runId>')).action(async (runId: string, options: Common) => {
    const { run: record } = await withPipelineClient(options.address, (client) => unary(client.cancelRun.bind(client), { runId }), options.token);
    printResult(record, Boolean(options.json), describeRun);
  });

  withCommon(run.command('artifacts').description("List a run's committed artifacts, and what the stage that failed it wrote").argument('<runId>'))
    .option('--stage <stage>', 'only this stage (every instance) or one instance, e.g. corpus.bucket#phase-2')
    .action(async (runId: string, options: Common & { stage?: string }) => {
      const { artifacts } = await withPipelineClient(options.address, (client) =>
        unary(client.listArtifacts.bind(client), { runId, stage: options.stage ?? '' }), options.token,
      );
      printResult(artifacts, Boolean(options.json), (list: typeof artifacts) =>
        list
          .map((a) => `${(a.instance ? `${a.stage}#${a.instance}` : a.stage).padEnd(24)} ${a.name.padEnd(24)} ${String(a.size).padStart(10)}  ${a.key}${a.failed ? '  (written by the failed stage; not committed)' : ''}`)
          .join('\n'),
      );
    });

  registerRunGc(run, withCommon);
}
