import { Processor } from '@nestjs/bullmq';
import { inspectCorpus, storeByteSource } from '@xyp/bucketing';
import type { ParsedPayloadOf } from '@xyp/contracts';
import { StageRuntime, StageWorker, type StageContext, type StageOutput } from '@xyp/queue';

/**
 * corpus.inspect: checks every line of the run's input with the packing rules and counts
 * documents and characters per category and rejected lines per reason (`summary.json`).
 */
@Processor('corpus.inspect')
export class CorpusInspectWorker extends StageWorker<'corpus.inspect'> {
  readonly stage = 'corpus.inspect' as const;

  constructor(runtime: StageRuntime) {
    super(runtime);
  }

  protected async execute(payload: ParsedPayloadOf<'corpus.inspect'>, context: StageContext): Promise<StageOutput<'corpus.inspect'>> {
    const result = await inspectCorpus(storeByteSource(context.store, payload.inputKey), (done, total) => context.progress(done, total, 'bytes'));
    const summary = await context.store.putObject(payload.runId, this.stage, 'summary.json', JSON.stringify(result, null, 2), 'application/json');
    return { result, artifacts: [summary] };
  }
}
