import type { Queue } from 'bullmq';
import type { ParsedPayloadOf, StageName } from '@xyp/contracts';
import { StageRuntime, StageWorker, type StageContext, type StageOutput } from '@xyp/queue';
import type { StageProducer } from '@xyp/queue';
import type { RunEvents, RunRegistry } from '@xyp/runs';
import type { ArtifactStore } from '@xyp/storage';

/**
 * The stage the queue benchmark runs its no-op jobs as: `corpus.inspect`, a production stage with a
 * small payload (`runId`, `instance`, `inputKey`), no part jobs and a small result. The bench gives it
 * a processor whose work does nothing, so everything measured is the worker base's: the payload
 * validated against the real schema, the run checked, the committed-manifest skip, the run moved to
 * `running`, `stage-started`, one progress report (job progress, cancel check, `stage-progress`), the
 * result validated, the manifest committed, `stage-completed`. No stage is added to the contracts.
 */
export const BENCH_STAGE = 'corpus.inspect' satisfies StageName;

/** What the no-op work returns: a valid `corpus.inspect` result of an empty corpus. */
export const EMPTY_INSPECT_RESULT = { docs: 0, rejected: 0, chars: 0, categories: {}, rejectReasons: {} };

/** A `corpus.inspect` processor whose work reports progress once and returns an empty result, committing no artifact. */
export class NoopInspectStage extends StageWorker<typeof BENCH_STAGE> {
  readonly stage = BENCH_STAGE;

  protected async execute(_payload: ParsedPayloadOf<typeof BENCH_STAGE>, context: StageContext): Promise<StageOutput<typeof BENCH_STAGE>> {
    await context.progress(1, 1, 'jobs');
    return { result: EMPTY_INSPECT_RESULT, artifacts: [] };
  }
}

/**
 * The runtime a bench stage worker talks to: the real registry, events and store; the producer
 * only answers `queue(stage)`, which the worker base asks for part jobs alone (none here).
 */
export function benchRuntime(registry: RunRegistry, events: RunEvents, store: ArtifactStore, queue: Queue): StageRuntime {
  const producer = { queue: () => queue } as unknown as StageProducer;
  return new StageRuntime(registry, events, store, producer);
}
