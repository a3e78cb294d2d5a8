import { Logger } from '@nestjs/common';
import { WorkerHost } from '@nestjs/bullmq';
import { UnrecoverableError, type Job } from 'bullmq';
import { z } from 'zod';
import {
  STAGES,
  type ArtifactEntry,
  type ParsedPayloadOf,
  type ResultOf,
  type StageName,
} from '@xyp/contracts';
import type { ArtifactStore } from '@xyp/storage';
import type { StageRuntime } from './stage-runtime';

/** What a stage's work sees of its job. */
export interface StageContext {
  runId: string;
  jobId: string;
  /** 1 on the first try. */
  attempt: number;
  store: ArtifactStore;
  /**
   * Reports progress in units a person understands (documents, steps). Stops the
   * work with an unrecoverable error when the run was cancelled meanwhile.
   */
  progress(done: number, total: number, unit: string, message?: string): Promise<void>;
  log(message: string): void;
}

/** A stage's output: its result and the artifacts its manifest commits. */
export interface StageOutput<S extends StageName> {
  result: ResultOf<S>;
  artifacts: ArtifactEntry[];
}

/** Progress events and cancellation checks at most this often. */
const PROGRESS_INTERVAL_MS = 500;

/** Turns zod issues into one line: `inputKey: expected string; extra: unrecognized key`. */
export function describeIssues(error: z.ZodError): string {
  return error.issues.map((issue) => `${issue.path.join('.') || '(payload)'}: ${issue.message}`).join('; ');
}

/**
 * Base of every stage processor (one per queue). It owns what every stage must do the
 * same way, so a stage only writes its work:
 *  - validates the payload against `STAGES[stage].payload` before any work; an invalid
 *    payload fails the job at once with UnrecoverableError (BullMQ does not retry it);
 *  - skips work whose manifest is already committed (delivery is at least once, the
 *    effect must be exactly once) and commits the manifest last;
 *  - publishes stage events to the run's stream and ends the run when a stage fails
 *    for good; errors are rethrown so BullMQ sees them and retries transient ones.
 *
 * Subclasses are `@Processor(stage)` classes; `WorkerRegistration` sets their worker
 * options from configuration and starts them once the app has bootstrapped.
 */
export abstract class StageWorker<S extends StageName> extends WorkerHost {
  abstract readonly stage: S;
  protected readonly logger = new Logger(this.constructor.name);

  constructor(protected readonly runtime: StageRuntime) {
    super();
  }

  protected abstract execute(payload: ParsedPayloadOf<S>, context: StageContext): Promise<StageOutput<S>>;

  async process(job: Job): Promise<ResultOf<S>> {
    const attempt = job.attemptsMade + 1;
    const parsed = STAGES[this.stage].payload.safeParse(job.data);
    if (!parsed.success) {
      const reason = `invalid ${this.stage} payload in job ${job.id}: ${describeIssues(parsed.error)}`;
      const runId = z.object({ runId: z.string() }).safeParse(job.data);
      if (runId.success && (await this.runtime.registry.get(runId.data.runId))) {
        await this.runtime.events.publish({ runId: runId.data.runId, type: 'stage-failed', stage: this.stage, message: reason, attempt });
        await this.runtime.endRun(runId.data.runId, 'failed', { error: reason, stage: this.stage });
      }
      throw new UnrecoverableError(reason);
    }
    const payload = parsed.data as ParsedPayloadOf<S>;
    const runId = payload.runId;
    const { registry, events, store } = this.runtime;

    const run = await registry.get(runId);
    if (run && (run.status === 'cancelled' || run.status === 'failed')) {
      await events.publish({ runId, type: 'stage-skipped', stage: this.stage, message: `run is ${run.status}`, attempt });
      throw new UnrecoverableError(`run ${runId} is ${run.status}; ${this.stage} not started`);
    }

    const committed = await store.readManifest(runId, this.stage);
    if (committed) {
      await events.publish({ runId, type: 'stage-skipped', stage: this.stage, message: 'already committed', attempt });
      return STAGES[this.stage].result.parse(committed.result) as ResultOf<S>;
    }

    await registry.transition(runId, 'running');
    await events.publish({ runId, type: 'stage-started', stage: this.stage, attempt, message: `job ${job.id}` });
    const context = this.contextFor(job, runId, attempt);
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
        committedAt: new Date().toISOString(),
        artifacts: output.artifacts,
        result: result.data as Record<string, unknown>,
      });
      await events.publish({
        runId,
        type: wrote ? 'stage-completed' : 'stage-skipped',
        stage: this.stage,
        attempt,
        message: wrote ? `${manifest.artifacts.length} artifact(s) committed` : 'committed by an earlier attempt',
      });
      return STAGES[this.stage].result.parse(manifest.result) as ResultOf<S>;
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      const final = error instanceof UnrecoverableError || attempt >= (job.opts.attempts ?? 1);
      this.logger.warn(`run ${runId} job ${job.id} attempt ${attempt}: ${message}`);
      await events.publish({ runId, type: final ? 'stage-failed' : 'stage-retrying', stage: this.stage, attempt, message });
      if (final) await this.runtime.endRun(runId, 'failed', { error: `${this.stage}: ${message}`, stage: this.stage });
      throw error;
    }
  }

  private contextFor(job: Job, runId: string, attempt: number): StageContext {
    let lastReport = 0;
    return {
      runId,
      jobId: String(job.id),
      attempt,
      store: this.runtime.store,
      log: (message) => this.logger.log(`run ${runId} job ${job.id}: ${message}`),
      progress: async (done, total, unit, message = '') => {
        const now = Date.now();
        if (now - lastReport < PROGRESS_INTERVAL_MS && done < total) return;
        lastReport = now;
        await job.updateProgress({ done, total, unit });
        const run = await this.runtime.registry.get(runId);
        if (run?.status === 'cancelled') throw new UnrecoverableError(`run ${runId} was cancelled`);
        await this.runtime.events.publish({ runId, type: 'stage-progress', stage: this.stage, done, total, unit, message, attempt });
      },
    };
  }
}
