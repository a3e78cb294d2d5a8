import { z } from 'zod';
import { RunId } from './ids';

export const RunStatus = z.enum(['queued', 'running', 'completed', 'failed', 'cancelled']);
export type RunStatus = z.infer<typeof RunStatus>;

/** What the registry keeps about a run. */
export const RunRecord = z.object({
  runId: RunId,
  status: RunStatus,
  stages: z.array(z.string()),
  inputName: z.string(),
  /** Stage parameters as submitted: `<stage>.<name>` = value. */
  params: z.record(z.string(), z.string()).default({}),
  createdAt: z.string().datetime(),
  updatedAt: z.string().datetime(),
  error: z.string().optional(),
  reportKey: z.string().optional(),
});
export type RunRecord = z.output<typeof RunRecord>;
export type RunRecordInput = z.input<typeof RunRecord>;

export const RunEventType = z.enum([
  'run-queued',
  'stage-started',
  'stage-progress',
  'stage-retrying',
  'stage-completed',
  'stage-skipped',
  'stage-failed',
  'run-completed',
  'run-failed',
  'run-cancelled',
]);
export type RunEventType = z.infer<typeof RunEventType>;

/** One entry of a run's event stream, as `WatchRun` sends it. */
export const RunEvent = z.object({
  /** Redis stream entry id; resume a watch after it. */
  id: z.string().default(''),
  runId: RunId,
  type: RunEventType,
  stage: z.string(),
  at: z.string().datetime(),
  message: z.string().default(''),
  /** Progress in units a person understands, e.g. 1200 of 5000 documents. */
  done: z.number().nonnegative().default(0),
  total: z.number().nonnegative().default(0),
  unit: z.string().default(''),
  attempt: z.number().int().nonnegative().default(0),
});
export type RunEvent = z.infer<typeof RunEvent>;
export type RunEventInput = z.input<typeof RunEvent>;

export const TERMINAL_RUN_EVENTS: ReadonlySet<RunEventType> = new Set(['run-completed', 'run-failed', 'run-cancelled']);
export const TERMINAL_RUN_STATUSES: ReadonlySet<RunStatus> = new Set(['completed', 'failed', 'cancelled']);
