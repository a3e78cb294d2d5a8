import { Inject, Logger, Optional } from '@nestjs/common';
import { WorkerHost } from '@nestjs/bullmq';
import { UnrecoverableError, WaitingChildrenError, type Job } from 'bullmq';
import { z } from 'zod';
import {
  STAGES,
  instanceId,
  partJobId,
  partsOf,
  stageJobId,
  type ArtifactEntry,
  type ParsedPartPayloadOf,
  type ParsedPayloadOf,
  type PartPayloadOf,
  type PartResultOf,
  type ResultOf,
  type RunRecord,
  type StageName,
} from '@xyp/contracts';
import { scopeStoreToInstance, type ArtifactStore } from '@xyp/storage';
import {
  STAGE_JOB_METRICS,
  SpanKind,
  StageJobMetrics,
  currentTraceContext,
  endSpan,
  markOutcome,
  startSpan,
  withTelemetryScope,
  type StageJobOutcome,
  type TelemetryScope,
  type TraceContext,
  type TrainingFigures,
} from '@xyp/telemetry';
import { describeIssues } from './describe-issues';
import type { StageRuntime } from './stage-runtime';

/** What a stage's work sees of its job. */
export interface StageContext {
  runId: string;
  /** The instance key (`phase-2` of `corpus.bucket#phase-2`); undefined for the stage's default instance. */
  instance?: string;
  jobId: string;
  /** 1 on the first try. */
  attempt: number;
  /**
   * The store as this instance sees it: objects and the manifest of its own run and stage land in
   * the instance's folder (`scopeStoreToInstance`), so stage code needs no instance of its own.
   */
  store: ArtifactStore;
  /**
   * Reports progress in units a person understands (documents, steps). Stops the
   * work with a `RunCancelledError` when the run was cancelled meanwhile, and aborts `signal`.
   * A training job passes the figures its engine reported for the step (`figures`: loss, mean
   * reward), which set the `xyp_training_loss` and `xyp_reward_mean` gauges of its instance.
   */
  progress(done: number, total: number, unit: string, message?: string, figures?: TrainingFigures): Promise<void>;
  /**
   * Aborted (reason: a `RunCancelledError`) once a progress report finds the run cancelled:
   * work that does not await `progress` (callbacks, loops between reports) checks it and stops.
   */
  signal: AbortSignal;
  log(message: string): void;
  /**
   * Fans the stage out into part jobs on its own queue and returns their results in
   * part order. BullMQ's process-step-jobs pattern: the first time, `plan` runs and the
   * parts are added as children of this job, which then waits (its worker slot is freed,
   * so the same workers run the parts); when every part has completed the stage job
   * runs again from the top and this call returns the results without planning again.
   */
  fanOut(plan: () => Promise<PartPayloadOf<StageName>[]>): Promise<PartResultOf<StageName>[]>;
  /**
   * `fanOut` for a stage that needs more than the parts' results after them (e.g. totals of
   * the input its plan scanned): the plan's `state` (JSON) is kept on this job
   * (`job.updateData`, before the parts are added) and handed back with the results when the
   * job resumes, so nothing the plan computed is computed again.
   */
  fanOutWithState<T>(plan: () => Promise<FanOutPlan<T>>): Promise<FanOutResult<T>>;
  /**
   * The resume checkpoint an earlier attempt of this job kept (`keepCheckpoint`), or undefined: a
   * retry after a crash, or a stalled job taken over by another worker, goes on from it.
   */
  resumeCheckpoint: unknown;
  /** Keeps a resume checkpoint (JSON, e.g. the engine's `ResumeMarker`) on this job (`job.updateData`). */
  keepCheckpoint(checkpoint: unknown): Promise<void>;
}

/** A plan with state to keep for after the parts (see `StageContext.fanOutWithState`). */
export interface FanOutPlan<T> {
  parts: PartPayloadOf<StageName>[];
  /** Must survive `JSON.stringify`; it comes back as `JSON.parse` gives it. */
  state: T;
}

export interface FanOutResult<T> {
  results: PartResultOf<StageName>[];
  state: T;
}

/**
 * Key of the fan-out state in a stage job's data. Stage payloads are strict, so the key is
 * removed before the payload is validated; it is never part of what a producer sends.
 */
export const FAN_OUT_STATE_KEY = 'xypFanOutState';

/**
 * The key under which a stage job's data keeps the resume checkpoint of its long-running work
 * (`StageContext.keepCheckpoint`); like the fan-out state, removed before the payload is validated.
 */
export const RESUME_CHECKPOINT_KEY = 'xypResumeCheckpoint';

/** A stage job's data without the fan-out state and resume checkpoint a worker stored on it. */
function withoutFanOutState(data: unknown): unknown {
  if (typeof data !== 'object' || data === null || !(FAN_OUT_STATE_KEY in data || RESUME_CHECKPOINT_KEY in data)) return data;
  const { [FAN_OUT_STATE_KEY]: _state, [RESUME_CHECKPOINT_KEY]: _checkpoint, ...payload } = data as Record<string, unknown>;
  return payload;
}

function storedFanOutState(data: unknown): { found: boolean; state: unknown } {
  if (typeof data !== 'object' || data === null || !(FAN_OUT_STATE_KEY in data)) return { found: false, state: undefined };
  return { found: true, state: (data as Record<string, unknown>)[FAN_OUT_STATE_KEY] };
}

/** What a part job's work sees: its run, its place, the store, progress. */
export type PartContext = Omit<StageContext, 'fanOut' | 'fanOutWithState'> & { partIndex: number; partCount: number };

/** A stage's output: its result and the artifacts its manifest commits. */
export interface StageOutput<S extends StageName> {
  result: ResultOf<S>;
  artifacts: ArtifactEntry[];
}

/**
 * A stage that fails for good (no retry) after writing objects a user needs to see why, e.g.
 * the rejects of a corpus over its reject rate: they are recorded on the failed run
 * (`failureArtifacts`), so `ListArtifacts` lists them although no manifest commits them.
 */
export class StageFailedError extends UnrecoverableError {
  constructor(
    message: string,
    readonly artifacts: ArtifactEntry[],
  ) {
    super(message);
  }
}

/** The run of a job was cancelled: the work stops, commits nothing and does not fail the run. */
export class RunCancelledError extends UnrecoverableError {
  constructor(runId: string) {
    super(`run ${runId} was cancelled`);
  }
}

/** Progress events and cancellation checks at most this often. */
const PROGRESS_INTERVAL_MS = 500;

/**
 * Base of every stage processor (one per queue). It owns what every stage must do the
 * same way, so a stage only writes its work:
 *  - validates the payload against `STAGES[stage].payload` before any work; an invalid
 *    payload fails the job at once with UnrecoverableError (BullMQ does not retry it);
 *  - skips work whose manifest is already committed (delivery is at least once, the
 *    effect must be exactly once) and commits the manifest last, for the job's stage
 *    instance (`instance` in the payload: `runs/<runId>/<stage>/<instance>/`);
 *  - publishes stage events to the run's stream and ends the run when a stage fails
 *    for good; errors are rethrown so BullMQ sees them and retries transient ones;
 *  - observes every job the same way (`observed`, around `process(job)`, the subclass's override
 *    included): log lines written while the job runs carry its run id, stage, stage instance, job id
 *    and attempt (`@xyp/telemetry`'s job scope); with tracing on, the job runs in a span that is a
 *    child of the trace context in its data (`trace`, set by whoever added the job), and jobs it adds
 *    carry that span's context; its duration and outcome go to `xyp_stage_job_duration_seconds` and
 *    `xyp_stage_jobs_total`.
 *
 * Subclasses are `@Processor(stage)` classes; `WorkerRegistration` sets their worker
 * options from configuration and starts them once the app has bootstrapped.
 */
export abstract class StageWorker<S extends StageName> extends WorkerHost {
  abstract readonly stage: S;
  protected readonly logger = new Logger(this.constructor.name);

  /**
   * Where job durations, outcomes and training figures are recorded: the app's registry
   * (`PlatformModule` provides it; injected as a property so that subclass constructors stay as
   * they are). Unset — a worker built outside Nest — records nothing.
   */
  @Optional() @Inject(STAGE_JOB_METRICS) stageMetrics?: StageJobMetrics;

  constructor(protected readonly runtime: StageRuntime) {
    super();
    // `process` as the subclass defines it (an override included), run inside the job's scope.
    const work = this.process.bind(this) as (job: Job, token?: string) => Promise<unknown>;
    this.process = (job: Job, token?: string) => this.observed(job, () => work(job, token));
  }

  protected abstract execute(payload: ParsedPayloadOf<S>, context: StageContext): Promise<StageOutput<S>>;

  /** The work of one part job; stages that fan out (see `STAGE_PARTS`) implement it. */
  protected executePart(_payload: ParsedPartPayloadOf<S>, _context: PartContext): Promise<PartResultOf<S>> {
    throw new UnrecoverableError(`${this.stage} has no part jobs`);
  }

  async process(job: Job, token?: string): Promise<unknown> {
    if (job.name === partsOf(this.stage)?.jobName) return this.processPart(job);
    return this.processStage(job, token);
  }

  /** Runs one job's work in its telemetry scope and span, and records its duration and outcome (see the class comment). */
  private async observed(job: Job, work: () => Promise<unknown>): Promise<unknown> {
    const data = (typeof job.data === 'object' && job.data !== null ? job.data : {}) as Record<string, unknown>;
    const runId = typeof data.runId === 'string' ? data.runId : undefined;
    const stageInstance = instanceId(this.stage, typeof data.instance === 'string' ? data.instance : '');
    const attempt = job.attemptsMade + 1;
    const span = startSpan(job.name, {
      kind: SpanKind.CONSUMER,
      parent: data.trace as TraceContext | undefined,
      attributes: { 'messaging.system': 'bullmq', 'messaging.destination.name': this.stage, 'xyp.stage': this.stage, 'xyp.stage_instance': stageInstance, 'xyp.job_id': String(job.id), 'xyp.attempt': attempt, ...(runId ? { 'xyp.run_id': runId } : {}) },
    });
    const scope: TelemetryScope = { fields: { ...(runId ? { runId } : {}), stage: this.stage, stageInstance, jobId: String(job.id), attempt }, ...(span ? { span } : {}) };
    const started = performance.now();
    const ended = (outcome: StageJobOutcome, error?: unknown) => {
      this.stageMetrics?.jobEnded(job.name, outcome, (performance.now() - started) / 1000);
      endSpan(span, { 'xyp.outcome': outcome }, outcome === 'failed' ? error : undefined);
    };
    return withTelemetryScope(scope, async () => {
      try {
        const value = await work();
        ended(scope.outcome ?? 'completed');
        return value;
      } catch (error) {
        // Waiting for its parts is no outcome: the job runs again when they are done.
        if (error instanceof WaitingChildrenError) {
          endSpan(span, { 'xyp.outcome': 'waiting-for-parts' });
          throw error;
        }
        ended(error instanceof RunCancelledError || scope.outcome === 'cancelled' ? 'cancelled' : 'failed', error);
        throw error;
      }
    });
  }

  private async processStage(job: Job, token?: string): Promise<ResultOf<S>> {
    const attempt = job.attemptsMade + 1;
    const payload = (await this.validated(job, STAGES[this.stage].payload, attempt, withoutFanOutState(job.data))) as ParsedPayloadOf<S>;
    const { runId, instance = '' } = payload;
    const ref = instanceId(this.stage, instance);
    const { registry, events, store } = this.runtime;
    // The run check and the committed-manifest check are independent reads: issued together, a job
    // waits for one round trip instead of two. The run check still decides first.
    const manifestRead = store.readManifest(runId, ref);
    manifestRead.catch(() => undefined);
    const run = await this.refuseEndedRun(runId, attempt, instance);
    const committed = await manifestRead;
    if (committed) {
      markOutcome('skipped-committed');
      await events.publish({ runId, type: 'stage-skipped', stage: this.stage, instance, message: 'already committed', attempt });
      return STAGES[this.stage].result.parse(committed.result) as ResultOf<S>;
    }

    // A run already running stays so (the transition would change nothing): no round trip for it.
    if (run?.status !== 'running') await registry.transition(runId, 'running');
    const resumed = await this.partsAdded(job);
    await events.publish({
      runId,
      type: resumed ? 'stage-progress' : 'stage-started',
      stage: this.stage,
      instance,
      attempt,
      message: resumed ? 'every part completed; merging' : `job ${job.id}`,
    });
    const context = this.contextFor(job, runId, instance, attempt, token);
    try {
      const output = await this.execute(payload, context);
      const result = STAGES[this.stage].result.safeParse(output.result);
      if (!result.success) {
        throw new UnrecoverableError(`${this.stage} produced an invalid result: ${describeIssues(result.error)}`);
      }
      const { committed: wrote, manifest } = await store.commitManifest({
        version: 1,
        runId,
        stage: this.stage,
        ...(instance ? { instance } : {}),
        committedAt: new Date().toISOString(),
        artifacts: output.artifacts,
        result: result.data as Record<string, unknown>,
      });
      if (!wrote) markOutcome('skipped-committed');
      await events.publish({
        runId,
        type: wrote ? 'stage-completed' : 'stage-skipped',
        stage: this.stage,
        instance,
        attempt,
        message: wrote ? `${manifest.artifacts.length} artifact(s) committed` : 'committed by an earlier attempt',
      });
      return STAGES[this.stage].result.parse(manifest.result) as ResultOf<S>;
    } catch (error) {
      if (error instanceof WaitingChildrenError) throw error;
      throw await this.failed(error, job, runId, instance, attempt, ref);
    }
  }

  private async processPart(job: Job): Promise<PartResultOf<S>> {
    const parts = partsOf(this.stage);
    if (!parts) throw new UnrecoverableError(`${this.stage} has no part jobs`);
    const attempt = job.attemptsMade + 1;
    const payload = (await this.validated(job, parts.payload, attempt)) as ParsedPartPayloadOf<S> & { runId: string; partIndex: number; partCount: number };
    const { runId, partIndex, partCount } = payload;
    const instance = payload.instance ?? '';
    await this.refuseEndedRun(runId, attempt, instance);
    const label = `${instanceId(this.stage, instance)} part ${partIndex + 1}/${partCount}`;
    try {
      const { fanOut: _none, fanOutWithState: _neither, ...context } = this.contextFor(job, runId, instance, attempt);
      const output = await this.executePart(payload, { ...context, partIndex, partCount });
      const result = parts.result.safeParse(output);
      if (!result.success) throw new UnrecoverableError(`${label} produced an invalid result: ${describeIssues(result.error)}`);
      await this.runtime.events.publish({ runId, type: 'stage-progress', stage: this.stage, instance, attempt, message: `${label} done`, done: partIndex + 1, total: partCount, unit: 'parts' });
      return result.data as PartResultOf<S>;
    } catch (error) {
      throw await this.failed(error, job, runId, instance, attempt, label);
    }
  }

  /** The payload, or an UnrecoverableError naming every bad field (and the run failed). */
  private async validated(job: Job, schema: z.ZodType, attempt: number, data: unknown = job.data): Promise<unknown> {
    const parsed = schema.safeParse(data);
    if (parsed.success) return parsed.data;
    const reason = `invalid ${job.name} payload in job ${job.id}: ${describeIssues(parsed.error)}`;
    const runId = z.object({ runId: z.string(), instance: z.string().optional() }).safeParse(job.data);
    if (runId.success && (await this.runtime.registry.get(runId.data.runId))) {
      await this.runtime.events.publish({ runId: runId.data.runId, type: 'stage-failed', stage: this.stage, instance: runId.data.instance ?? '', message: reason, attempt });
      await this.runtime.endRun(runId.data.runId, 'failed', { error: reason, stage: this.stage });
    }
    throw new UnrecoverableError(reason);
  }

  /** The run's record; throws (after a `stage-skipped` event) when the run was cancelled or failed. */
  private async refuseEndedRun(runId: string, attempt: number, instance: string): Promise<RunRecord | null> {
    const run = await this.runtime.registry.get(runId);
    if (run && (run.status === 'cancelled' || run.status === 'failed')) {
      if (run.status === 'cancelled') markOutcome('cancelled');
      await this.runtime.events.publish({ runId, type: 'stage-skipped', stage: this.stage, instance, message: `run is ${run.status}`, attempt });
      throw new UnrecoverableError(`run ${runId} is ${run.status}; ${this.stage} not started`);
    }
    return run;
  }

  /**
   * Publishes the failure (retrying, or failed for good and the run with it) and returns
   * the error for the caller to rethrow: BullMQ must see every failure.
   */
  private async failed(error: unknown, job: Job, runId: string, instance: string, attempt: number, what: string): Promise<unknown> {
    const message = error instanceof Error ? error.message : String(error);
    if (error instanceof RunCancelledError) {
      this.logger.log(`run ${runId} job ${job.id}: ${what} stopped, ${message}`);
      await this.runtime.events.publish({ runId, type: 'stage-skipped', stage: this.stage, instance, attempt, message: `${what} stopped: ${message}` });
      return error;
    }
    const final = error instanceof UnrecoverableError || attempt >= (job.opts.attempts ?? 1);
    this.logger.warn(`run ${runId} job ${job.id} attempt ${attempt}: ${message}`);
    await this.runtime.events.publish({ runId, type: final ? 'stage-failed' : 'stage-retrying', stage: this.stage, instance, attempt, message });
    if (final) {
      const failureArtifacts = error instanceof StageFailedError ? error.artifacts.map((artifact) => ({ ...artifact, stage: instanceId(this.stage, instance) })) : [];
      await this.runtime.endRun(runId, 'failed', { error: `${what}: ${message}`, stage: this.stage, failureArtifacts });
    }
    return error;
  }

  /** Whether an earlier pass of this stage job already added its part jobs. */
  private async partsAdded(job: Job): Promise<boolean> {
    if (!partsOf(this.stage)) return false;
    return (await this.runtime.producer.queue(this.stage).getJob(partJobId(String(job.id), 0))) !== undefined;
  }

  private async fanOut(job: Job, token: string | undefined, plan: () => Promise<FanOutPlan<unknown>>, keepState: boolean): Promise<FanOutResult<unknown>> {
    const parts = partsOf(this.stage);
    if (!parts) throw new UnrecoverableError(`${this.stage} has no part jobs`);
    if (!token) throw new Error(`${this.stage} job ${job.id} has no lock token, so it cannot wait for parts`);
    const queue = this.runtime.producer.queue(this.stage);
    const { runId, instance } = job.data as { runId: string; instance?: string };
    const stageId = String(job.id ?? stageJobId(runId, this.stage, instance));
    let state: unknown;
    if (!(await this.partsAdded(job))) {
      const planned = await plan();
      const trace = currentTraceContext();
      const payloads = planned.parts;
      state = planned.state;
      // Kept before the parts exist: once they do, a resumed pass finds the state with them.
      if (keepState) await job.updateData({ ...(job.data as Record<string, unknown>), [FAN_OUT_STATE_KEY]: state ?? null });
      if (payloads.length === 0) return { results: [], state };
      await queue.addBulk(
        payloads.map((data, index) => ({
          name: parts.jobName,
          // Parts belong to the stage job's instance (their events and objects say so).
          // ... and to its trace: each part's span is a child of the stage job's.
          data: parts.payload.parse({ ...data, ...(instance ? { instance } : {}), ...(trace ? { trace } : {}) }),
          opts: {
            jobId: partJobId(stageId, index),
            parent: { id: stageId, queue: job.queueQualifiedName },
            failParentOnFailure: true,
          },
        })),
      );
    }
    else if (keepState) {
      const stored = storedFanOutState(job.data);
      if (stored.found) {
        state = stored.state;
      } else {
        // Parts added by a worker that kept no state (an older version): plan again for the
        // state only; the parts stand as they are. The one case where planning repeats.
        this.logger.warn(`${this.stage} job ${job.id}: parts exist without a stored plan state; planning again for it`);
        state = (await plan()).state;
        await job.updateData({ ...(job.data as Record<string, unknown>), [FAN_OUT_STATE_KEY]: state ?? null });
      }
    }
    if (await job.moveToWaitingChildren(token)) throw new WaitingChildrenError();
    const values = await job.getChildrenValues<unknown>();
    const marker = `:${stageId}.part-`;
    const results = Object.entries(values)
      .filter(([key]) => key.includes(marker))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([key, value]) => {
        const parsed = parts.result.safeParse(value);
        if (!parsed.success) throw new UnrecoverableError(`part ${key} returned an invalid result: ${describeIssues(parsed.error)}`);
        return parsed.data as PartResultOf<StageName>;
      });
    return { results, state };
  }

  private contextFor(job: Job, runId: string, instance: string, attempt: number, token?: string): StageContext {
    let lastReport = 0;
    const cancel = new AbortController();
    return {
      signal: cancel.signal,
      runId,
      ...(instance ? { instance } : {}),
      jobId: String(job.id),
      attempt,
      store: scopeStoreToInstance(this.runtime.store, { runId, stage: this.stage, instance }),
      log: (message) => this.logger.log(`run ${runId} job ${job.id}: ${message}`),
      fanOut: async (plan) => (await this.fanOut(job, token, async () => ({ parts: await plan(), state: null }), false)).results,
      fanOutWithState: <T>(plan: () => Promise<FanOutPlan<T>>) => this.fanOut(job, token, plan, true) as Promise<FanOutResult<T>>,
      resumeCheckpoint: (job.data as Record<string, unknown> | undefined)?.[RESUME_CHECKPOINT_KEY] ?? undefined,
      keepCheckpoint: async (checkpoint) => {
        await job.updateData({ ...(job.data as Record<string, unknown>), [RESUME_CHECKPOINT_KEY]: checkpoint });
      },
      progress: async (done, total, unit, message = '', figures) => {
        if (figures) this.stageMetrics?.training(this.stage, instance, figures);
        const now = Date.now();
        if (now - lastReport < PROGRESS_INTERVAL_MS && done < total) return;
        lastReport = now;
        // Independent: the job's progress and the cancel check go out together.
        const [, run] = await Promise.all([job.updateProgress({ done, total, unit }), this.runtime.registry.get(runId)]);
        if (run?.status === 'cancelled') {
          const error = new RunCancelledError(runId);
          cancel.abort(error);
          throw error;
        }
        await this.runtime.events.publish({ runId, type: 'stage-progress', stage: this.stage, instance, done, total, unit, message, attempt });
      },
    };
  }
}
