/**
 * What the work in progress is about — a run, a stage instance, a job — kept in an
 * `AsyncLocalStorage` around the work (a stage worker's `process(job)`, a gRPC call), so that a log
 * line written from deep inside it carries the ids without being handed them, and a job added from
 * inside it carries its trace context.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Span } from '@opentelemetry/api';

/** The ids a log line carries while a job runs. */
export interface JobLogFields {
  runId?: string;
  /** The stage (the queue), e.g. `corpus.bucket`. */
  stage?: string;
  /** The stage instance, e.g. `corpus.bucket#bfd` (`corpus.bucket` for the stage's default instance). */
  stageInstance?: string;
  jobId?: string;
  /** 1 on the first try. */
  attempt?: number;
}

/** How a stage job ended, for `xyp_stage_jobs_total{outcome}`. */
export type StageJobOutcome = 'completed' | 'failed' | 'cancelled' | 'skipped-committed';

export interface TelemetryScope {
  fields: JobLogFields;
  /** The span of the work, when tracing is on. */
  span?: Span;
  /** Set by the work when it ends otherwise than by completing its work (skipped, cancelled). */
  outcome?: StageJobOutcome;
}

const scopes = new AsyncLocalStorage<TelemetryScope>();

/** Runs `work` with `scope` as the current one (for everything it awaits and starts). */
export function withTelemetryScope<T>(scope: TelemetryScope, work: () => T): T {
  return scopes.run(scope, work);
}

/** The scope of the work in progress, if any. */
export function currentScope(): TelemetryScope | undefined {
  return scopes.getStore();
}

/** The ids of the work in progress, with its trace id when tracing is on; `{}` outside any. */
export function currentLogFields(): JobLogFields & { traceId?: string } {
  const scope = scopes.getStore();
  if (!scope) return {};
  const traceId = scope.span?.spanContext().traceId;
  return traceId ? { ...scope.fields, traceId } : scope.fields;
}

/** Records how the current stage job ended (read by the stage worker when the job returns). */
export function markOutcome(outcome: StageJobOutcome): void {
  const scope = scopes.getStore();
  if (scope) scope.outcome = outcome;
}
