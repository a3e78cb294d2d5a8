import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Queue, Worker, type ConnectionOptions, type Job, type JobsOptions } from 'bullmq';
import { Redis } from 'ioredis';
import { PlatformEnv, loadConfig, redisSettings } from '@xyp/config';
import { queueSettings, stageJob } from '@xyp/queue';
import { RunEvents, RunRegistry } from '@xyp/runs';
import { LocalDirectoryStore, type ArtifactStore } from '@xyp/storage';
import { BENCH_STAGE, NoopInspectStage, benchRuntime } from './queue-stage';

/** The target of `xyp bench queue`: the worker base at least this fraction of raw BullMQ's jobs/s. */
export const QUEUE_RATIO_TARGET = 0.8;

/** Stage instances per run in the project side (runs are what the worker base checks and moves). */
const INSTANCES_PER_RUN = 100;

export interface QueueBenchOptions {
  redisUrl: string;
  /** Jobs per round, both sides. */
  jobs: number;
  /** The BullMQ `Worker`'s concurrency, both sides. */
  concurrency: number;
  /** Timed rounds of each side, interleaved raw, project, raw, project… */
  repetitions: number;
  /** Where the project side's manifests go; default a fresh directory on tmpfs (`/dev/shm`) when there is one. */
  storeDir?: string;
  progress: (line: string) => void;
}

export interface Spread {
  median: number;
  min: number;
  max: number;
}

/** Mean cost per job of one call the worker base makes, from the instrumented round. */
export interface OperationCost {
  callsPerJob: number;
  meanMs: number;
}

export interface QueueBenchReport {
  machine: { cpus: number; node: string };
  redis: { host: string; port: number; version: string };
  jobs: number;
  concurrency: number;
  repetitions: number;
  store: { dir: string; tmpfs: boolean };
  /** Jobs/s of each timed round, in the order they ran, and their median, min and max. */
  raw: Spread & { rounds: number[] };
  project: Spread & { rounds: number[] };
  /** project median ÷ raw median; `pairRatios`: each project round ÷ the raw round just before it. */
  ratio: number;
  pairRatios: Spread;
  target: number;
  met: boolean;
  /**
   * Redis commands per job over the timed rounds of each side, commands run inside BullMQ's Lua
   * scripts included, the ten most frequent (server-wide INFO commandstats difference, so another
   * client of the same Redis adds to it).
   */
  redisCommandsPerJob: { raw: Record<string, number>; project: Record<string, number> };
  /**
   * One extra project round (not in the figures above) with the runtime's calls timed: calls per
   * job and mean latency of each (latencies overlap across the `concurrency` jobs in flight).
   */
  breakdown: Record<string, OperationCost>;
}

/** The job options of a production queue (`queueSettings` defaults): retries, backoff, completed jobs kept. */
function productionJobOptions(): JobsOptions {
  return queueSettings(loadConfig(PlatformEnv, {})).defaultJobOptions;
}

function spread(values: number[], digits = 1): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  return { median: round(median, digits), min: round(sorted[0], digits), max: round(sorted[sorted.length - 1], digits) };
}

function round(x: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** `INFO commandstats` as command → calls. */
async function commandCalls(redis: Redis): Promise<Map<string, number>> {
  const info = await redis.info('commandstats');
  const calls = new Map<string, number>();
  for (const line of info.split('\n')) {
    const match = /^cmdstat_([^:]+):calls=(\d+)/.exec(line.trim());
    if (match) calls.set(match[1], Number(match[2]));
  }
  return calls;
}

function addDifference(total: Map<string, number>, before: Map<string, number>, after: Map<string, number>): void {
  for (const [command, calls] of after) total.set(command, (total.get(command) ?? 0) + calls - (before.get(command) ?? 0));
}

function perJob(total: Map<string, number>, jobs: number): Record<string, number> {
  return Object.fromEntries(
    [...total]
      .filter(([command, calls]) => calls > 0 && command !== 'info')
      .sort((a, b) => b[1] - a[1])
      .slice(0, 10)
      .map(([command, calls]) => [command, round(calls / jobs, 2)]),
  );
}

interface Side {
  queue: Queue;
  processor: (job: Job, token?: string) => Promise<unknown>;
}

/**
 * Runs every job waiting in `side.queue` through one BullMQ Worker of `concurrency` and returns
 * jobs/s, timed from the worker's start (its connection already open) to the last completion.
 */
async function drain(side: Side, connection: ConnectionOptions, prefix: string, jobs: number, concurrency: number): Promise<number> {
  const worker = new Worker(side.queue.name, side.processor, { connection, prefix, concurrency, autorun: false });
  let completed = 0;
  let failure: Error | undefined;
  const done = new Promise<void>((resolve, reject) => {
    worker.on('completed', () => {
      completed += 1;
      if (completed === jobs) resolve();
    });
    worker.on('failed', (job, error) => {
      failure = new Error(`bench job ${job?.id} failed: ${error.message}`);
      reject(failure);
    });
  });
  await worker.waitUntilReady();
  const start = performance.now();
  void worker.run();
  try {
    await done;
  } finally {
    await worker.close();
  }
  return jobs / ((performance.now() - start) / 1000);
}

async function addInChunks(queue: Queue, jobs: { name: string; data: unknown; opts: JobsOptions }[]): Promise<void> {
  for (let i = 0; i < jobs.length; i += 1000) await queue.addBulk(jobs.slice(i, i + 1000));
}

/**
 * `xyp bench queue`: no-op stage jobs per second through the project's worker base (`StageWorker`
 * under a BullMQ `Worker`, a `corpus.inspect` processor that does nothing) beside raw BullMQ (the
 * same number of jobs added with `Queue.addBulk`, a `Worker` with a processor that returns at once),
 * same Redis, job options, job count and concurrency, rounds interleaved raw, project, raw, project…
 * Each round has fresh queues and runs; everything is removed at the end.
 */
export async function benchQueue(options: QueueBenchOptions): Promise<QueueBenchReport> {
  const { jobs, concurrency, repetitions, progress } = options;
  const settings = redisSettings(options.redisUrl);
  const connection: ConnectionOptions = { ...settings, tls: settings.tls ? {} : undefined, maxRetriesPerRequest: null };
  const prefix = `xyp-bench-queue-${randomBytes(4).toString('hex')}`;
  const redis = new Redis(options.redisUrl, { maxRetriesPerRequest: 3 });
  const tmpfs = options.storeDir === undefined && existsSync('/dev/shm');
  const storeDir = options.storeDir ?? mkdtempSync(join(tmpfs ? '/dev/shm' : tmpdir(), 'xyp-bench-queue-'));
  const store: ArtifactStore = new LocalDirectoryStore(storeDir);
  const registry = new RunRegistry(redis, prefix);
  const events = new RunEvents(redis, prefix);
  const jobOptions = productionJobOptions();
  const queues: Queue[] = [];
  let roundNumber = 0;

  const rawSide = async (count: number): Promise<Side> => {
    const queue = new Queue(`bench-raw-${++roundNumber}`, { connection, prefix });
    queues.push(queue);
    await addInChunks(queue, Array.from({ length: count }, (_, index) => ({ name: 'noop', data: { index }, opts: { ...jobOptions, jobId: `raw-${roundNumber}-${index}` } })));
    return { queue, processor: async () => ({}) };
  };

  const projectSide = async (count: number, runtimeStore: ArtifactStore = store, runtimeRegistry = registry, runtimeEvents = events): Promise<Side> => {
    const queue = new Queue(`${BENCH_STAGE}-${++roundNumber}`, { connection, prefix });
    queues.push(queue);
    const now = new Date().toISOString();
    const stageJobs: { name: string; data: unknown; opts: JobsOptions }[] = [];
    for (let index = 0; index < count; index++) {
      const runId = `bench-${roundNumber}-${Math.floor(index / INSTANCES_PER_RUN)}`;
      if (index % INSTANCES_PER_RUN === 0) {
        await registry.create({ runId, status: 'queued', stages: [BENCH_STAGE], inputName: 'bench.jsonl', createdAt: now, updatedAt: now });
      }
      const job = stageJob(BENCH_STAGE, { runId, instance: `n-${index}`, inputKey: `runs/${runId}/input/objects/bench` });
      stageJobs.push({ name: job.name, data: job.data, opts: { ...jobOptions, ...job.opts } });
    }
    await addInChunks(queue, stageJobs);
    const stage = new NoopInspectStage(benchRuntime(runtimeRegistry, runtimeEvents, runtimeStore, queue));
    return { queue, processor: (job, token) => stage.process(job, token) };
  };

  const measure = async (side: Side, count: number): Promise<number> => {
    const rate = await drain(side, connection, prefix, count, concurrency);
    await side.queue.obliterate({ force: true });
    return rate;
  };

  try {
    const version = /redis_version:(\S+)/.exec(await redis.info('server'))?.[1] ?? 'unknown';
    const warmUp = Math.min(jobs, 1000);
    progress(`warm-up: ${warmUp} jobs each side`);
    await measure(await rawSide(warmUp), warmUp);
    await measure(await projectSide(warmUp), warmUp);

    const rates = { raw: [] as number[], project: [] as number[] };
    const commands = { raw: new Map<string, number>(), project: new Map<string, number>() };
    for (let repetition = 1; repetition <= repetitions; repetition++) {
      for (const kind of ['raw', 'project'] as const) {
        const side = kind === 'raw' ? await rawSide(jobs) : await projectSide(jobs);
        const before = await commandCalls(redis);
        const rate = await drain(side, connection, prefix, jobs, concurrency);
        addDifference(commands[kind], before, await commandCalls(redis));
        await side.queue.obliterate({ force: true });
        rates[kind].push(rate);
        progress(`round ${repetition}/${repetitions} ${kind.padEnd(7)} ${Math.round(rate)} jobs/s`);
      }
    }

    progress(`breakdown: one more project round of ${jobs} jobs with the worker base's calls timed`);
    const timings = new Map<string, { calls: number; ms: number }>();
    const timedCall = async <T>(label: string, call: () => Promise<T>): Promise<T> => {
      const start = performance.now();
      try {
        return await call();
      } finally {
        const entry = timings.get(label) ?? { calls: 0, ms: 0 };
        entry.calls += 1;
        entry.ms += performance.now() - start;
        timings.set(label, entry);
      }
    };
    /** `target` with `methods` timed, the rest as it is (a prototype-linked view; the target is not changed). */
    const timed = <T extends object>(target: T, label: string, methods: (keyof T & string)[]): T => {
      const view = Object.create(target) as Record<string, unknown>;
      for (const method of methods) {
        const original = (target[method] as (...args: unknown[]) => Promise<unknown>).bind(target);
        view[method] = (...args: unknown[]) => timedCall(`${label}.${method}`, () => original(...args));
      }
      return view as T;
    };
    const side = await projectSide(jobs, timed(store, 'store', ['readManifest', 'commitManifest']), timed(registry, 'registry', ['get', 'transition']), timed(events, 'events', ['publish']));
    const processor = side.processor;
    side.processor = (job, token) => {
      const updateProgress = job.updateProgress.bind(job);
      job.updateProgress = (value) => timedCall('job.updateProgress', () => updateProgress(value));
      return timedCall('StageWorker.process (whole job)', () => processor(job, token));
    };
    await measure(side, jobs);
    const breakdown = Object.fromEntries([...timings].map(([name, t]) => [name, { callsPerJob: round(t.calls / jobs, 2), meanMs: round(t.ms / t.calls, 3) }]));

    const raw = spread(rates.raw);
    const project = spread(rates.project);
    const ratio = round(project.median / raw.median, 3);
    const pairRatios = spread(
      rates.project.map((rate, index) => rate / rates.raw[index]),
      3,
    );
    return {
      machine: { cpus: cpus().length, node: process.version },
      redis: { host: settings.host, port: settings.port, version },
      jobs,
      concurrency,
      repetitions,
      store: { dir: storeDir, tmpfs },
      raw: { ...raw, rounds: rates.raw.map((r) => round(r)) },
      project: { ...project, rounds: rates.project.map((r) => round(r)) },
      ratio,
      pairRatios,
      target: QUEUE_RATIO_TARGET,
      met: ratio >= QUEUE_RATIO_TARGET,
      redisCommandsPerJob: { raw: perJob(commands.raw, jobs * repetitions), project: perJob(commands.project, jobs * repetitions) },
      breakdown,
    };
  } finally {
    await Promise.all(queues.map((queue) => queue.obliterate({ force: true }).catch(() => undefined).then(() => queue.close())));
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await redis.del(...keys);
    } while (cursor !== '0');
    redis.disconnect();
    if (options.storeDir === undefined) rmSync(storeDir, { recursive: true, force: true });
  }
}
