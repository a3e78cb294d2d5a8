import { z } from 'zod';
import { ArtifactEntry } from './artifacts';
import { RunId } from './ids';

export const RunStatus = z.enum(['queued', 'running', 'completed', 'failed', 'cancelled']);
export type RunStatus = z.infer<typeof RunStatus>;

/** What the registry keeps about a run. */
export const RunRecord = z.object({
  runId: RunId,
  status: RunStatus,
  /** Stage instances of the run's plan, static ones in spec order (`corpus.inspect`, `corpus.bucket#phase-2`). */
  stages: z.array(z.string()),
  inputName: z.string(),
  /** The run spec's name (`xuanyuan3` for the bundled recipe); empty for a spec without one. */
  specName: z.string().default(''),
  /** Stage parameters as submitted: `<stage>.<name>` = value. */
  params: z.record(z.string(), z.string()).default({}),
  createdAt: z.string().datetime(),
  updatedAt: z.string().datetime(),
  error: z.string().optional(),
  /** Store key of the run report: JSON (`reportKey`), Markdown and self-contained HTML. */
  reportKey: z.string().optional(),
  reportMarkdownKey: z.string().optional(),
  /**
   * What the stage that failed the run wrote before failing (e.g. `rejects.jsonl` of a
   * corpus.bucket over its reject rate), so a user can list and fetch it: no manifest commits it.
   */
  failureArtifacts: z.array(ArtifactEntry.extend({ stage: z.string() })).optional(),
  reportHtmlKey: z.string().optional(),
});
export type RunRecord = z.output<typeof RunRecord>;
export type RunRecordInput = z.input<typeof RunRecord>;

export const RunEventType = z.enum([
  'run-queued',
  /** A stage instance was added to the run's queues (its dependencies committed). */
  'stage-queued',
  'stage-started',
  'stage-progress',
  'stage-retrying',
  'stage-completed',
  'stage-skipped',
  'stage-failed',
  /** The deciding instance of a loop round said continue: the next round was added. */
  'loop-continued',
  /** A loop ended: its deciding instance said stop, or it reached its maximum rounds. */
  'loop-stopped',
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
  /** The stage instance's key (`round-2` of `rlhf.ppo#round-2`); empty for a stage's default instance. */
  instance: z.string().default(''),
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
