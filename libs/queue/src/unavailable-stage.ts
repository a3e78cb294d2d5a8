import { Processor } from '@nestjs/bullmq';
import { UnrecoverableError } from 'bullmq';
import type { StageName } from '@xyp/contracts';
import { StageWorker, type StageOutput } from './stage-worker';
import { StageRuntime } from './stage-runtime';

/**
 * A registered worker for a stage whose capability this build does not ship yet. It
 * validates the payload like every stage worker, then fails the job at once, without
 * retries, with a message that says so; it never pretends to do the work.
 */
export function unavailableStageWorker<S extends StageName>(stage: S, plannedIn: string): new (runtime: StageRuntime) => StageWorker<S> {
  @Processor(stage)
  class UnavailableStageWorker extends StageWorker<S> {
    readonly stage = stage;
    constructor(runtime: StageRuntime) {
      super(runtime);
    }
    protected async execute(): Promise<StageOutput<S>> {
      throw new UnrecoverableError(`stage ${stage} is not available in this build (${plannedIn})`);
    }
  }
  Object.defineProperty(UnavailableStageWorker, 'name', { value: `${stage.replace(/[^a-z]+(.)/g, (_m, c: string) => c.toUpperCase())}Worker` });
  return UnavailableStageWorker;
}
