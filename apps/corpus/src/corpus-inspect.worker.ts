import { Inject } from '@nestjs/common';
import { Processor } from '@nestjs/bullmq';
import { inspectCorpus, materializeInput } from '@xyp/bucketing';
import type { ParsedPayloadOf } from '@xyp/contracts';
import { StageRuntime, StageWorker, type StageContext, type StageOutput } from '@xyp/queue';
import { CORPUS_CACHE_DIR } from './corpus-cache';

/**
 * corpus.inspect: checks every line of the run's input with the packing rules and counts
 * documents and characters per category and rejected lines per reason (`summary.json`).
 */
@Processor('corpus.inspect')
export class CorpusInspectWorker extends StageWorker<'corpus.inspect'> {
  readonly stage = 'corpus.inspect' as const;

  constructor(runtime: StageRuntime, @Inject(CORPUS_CACHE_DIR) private readonly cacheDir: string) {
    super(runtime);
  }

  protected async execute(payload: ParsedPayloadOf<'corpus.inspect'>, context: StageContext): Promise<StageOutput<'corpus.inspect'>> {
    const input = await materializeInput(context.store, payload.inputKey, this.cacheDir);
    const result = await inspectCorpus(input, (done, total) => context.progress(done, total, 'bytes'));
    const summary = await context.store.putObject(payload.runId, this.stage, 'summary.json', JSON.stringify(result, null, 2), 'application/json');
    return { result, artifacts: [summary] };
  }
}
