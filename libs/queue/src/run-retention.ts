import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { TERMINAL_RUN_STATUSES, type RunRecord } from '@xyp/contracts';
import type { RunPlans, RunRegistry } from '@xyp/runs';
import type { ArtifactStore } from '@xyp/storage';

/** A run `collectRuns` removed (or, on a dry run, would remove). */
export interface CollectedRun {
  runId: string;
  status: RunRecord['status'];
  /** When it ended: its record's last update. */
  endedAt: string;
  /** Bytes its committed manifests listed; scratch objects left by failed attempts come on top. */
  committedBytes: number;
  /** BullMQ jobs of the run removed from its queues (stage jobs, part jobs, pipeline steps). */
  jobs: number;
}

export interface CollectRunsResult {
  removed: CollectedRun[];
  /** Runs still running or queued, whatever their age: never removed. */
  active: number;
  /** Ended runs younger than the cutoff. */
  recent: number;
  dryRun: boolean;
}

/** The parts of the platform a run leaves state in. */
export interface RunRetentionDeps {
  registry: RunRegistry;
  plans: RunPlans;
  store: ArtifactStore;
  /** A client of the queues' Redis (SCAN for the run's job keys). */
  redis: Redis;
  /** The queues' key prefix (`XYP_QUEUE_PREFIX`). */
  prefix: string;
  /** Every stage queue (the control plane produces to all of them). */
  queues: readonly Queue[];
}

const SCAN_PAGE = 1000;

/**
 * Ids of the run's jobs on `queue`: every job id starts with `<runId>.` (`stageJobId`, `partJobId`,
 * `pipelineStepJobId`), and run ids have no dot, so `run-1.` never matches `run-10.`'s jobs.
 */
async function runJobIds(redis: Redis, prefix: string, queue: string, runId: string): Promise<string[]> {
  const base = `${prefix}:${queue}:`;
  const ids = new Set<string>();
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${base}${runId}.*`, 'COUNT', SCAN_PAGE);
    cursor = next;
    // A job's keys are `<base><jobId>` and `<base><jobId>:logs`, `:lock`, `:dependencies`, ...
    for (const key of keys) ids.add(key.slice(base.length).split(':')[0]);
  } while (cursor !== '0');
  return [...ids];
}

/**
 * Removes the runs that ended (completed, failed or cancelled) more than `olderThanMs` before `now`:
 * every object under `runs/<runId>/` in the store — committed artifacts and whatever scratch
 * objects (shard inputs, temp uploads of attempts that died) stayed behind — its jobs on every
 * queue, its plan, its events and its record, the record last so that an interrupted collection
 * is found again by the next one. Active runs are never touched.
 */
export async function collectRuns(deps: RunRetentionDeps, options: { olderThanMs: number; now?: number; dryRun?: boolean; limit?: number }): Promise<CollectRunsResult> {
  if (!Number.isFinite(options.olderThanMs) || options.olderThanMs < 0) throw new Error(`older than: must be a non-negative duration (got ${options.olderThanMs} ms)`);
  const cutoff = (options.now ?? Date.now()) - options.olderThanMs;
  const runs = await deps.registry.list(options.limit ?? 100_000);
  const result: CollectRunsResult = { removed: [], active: 0, recent: 0, dryRun: options.dryRun ?? false };
  for (const run of runs) {
    if (!TERMINAL_RUN_STATUSES.has(run.status)) {
      result.active += 1;
      continue;
    }
    if (Date.parse(run.updatedAt) > cutoff) {
      result.recent += 1;
      continue;
    }
    const manifests = await deps.store.listManifests(run.runId);
    const committedBytes = manifests.reduce((sum, m) => sum + m.artifacts.reduce((s, a) => s + a.size, 0), 0);
    let jobs = 0;
    for (const queue of deps.queues) {
      const ids = await runJobIds(deps.redis, deps.prefix, queue.name, run.runId);
      // Each job on its own (its flow's parent and children are ids of the run too), so the count is exact.
      if (!result.dryRun) for (const id of ids) jobs += await queue.remove(id, { removeChildren: false });
      else jobs += ids.length;
    }
    if (!result.dryRun) {
      await deps.store.removeRun(run.runId);
      await deps.plans.deactivate(run.runId);
      await deps.plans.remove(run.runId);
      await deps.registry.remove(run.runId);
    }
    result.removed.push({ runId: run.runId, status: run.status, endedAt: run.updatedAt, committedBytes, jobs });
  }
  return result;
}

const UNITS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** `7d`, `12h`, `30m`, `90s`, `2w` (or a sum, `1d12h`) in milliseconds; anything else is refused by name. */
export function parseRetention(text: string): number {
  const trimmed = text.trim();
  const parts = [...trimmed.matchAll(/(\d+(?:\.\d+)?)([smhdw])/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== trimmed) {
    throw new Error(`--older-than ${JSON.stringify(text)}: expected a duration like 7d, 12h, 30m, 90s or 1d12h (units s, m, h, d, w)`);
  }
  return parts.reduce((sum, [, value, unit]) => sum + Number(value) * UNITS[unit], 0);
}
