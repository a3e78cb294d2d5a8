import { Processor } from '@nestjs/bullmq';
import { UnrecoverableError } from 'bullmq';
import { CorpusBucketResult, StageManifest, type ParsedPayloadOf } from '@xyp/contracts';
import { rankPackings } from '@xyp/packing-compare';
import { StageRuntime, StageWorker, describeIssues, type StageContext, type StageOutput } from '@xyp/queue';

/**
 * corpus.compare: a join over corpus.bucket instances. Reads the committed manifest of each
 * (its payload names them), ranks the packings by what they waste, and commits the ranking as
 * `comparison.json`. A manifest that is not a corpus.bucket result fails without retries.
 */
@Processor('corpus.compare')
export class CorpusCompareWorker extends StageWorker<'corpus.compare'> {
  readonly stage = 'corpus.compare' as const;

  constructor(runtime: StageRuntime) {
    super(runtime);
  }

  protected async execute(payload: ParsedPayloadOf<'corpus.compare'>, context: StageContext): Promise<StageOutput<'corpus.compare'>> {
    const packings = [];
    for (const { instance, manifestKey } of payload.packings) {
      const manifest = StageManifest.parse(JSON.parse((await context.store.getObject(manifestKey)).toString('utf8')));
      const result = CorpusBucketResult.safeParse(manifest.result);
      if (manifest.stage !== 'corpus.bucket' || !result.success) {
        throw new UnrecoverableError(`${instance} (${manifestKey}) is not a committed corpus.bucket${result.success ? '' : `: ${describeIssues(result.error)}`}`);
      }
      packings.push({ instance, result: result.data });
    }
    const ranking = rankPackings(packings, payload.criterion);
    const artifact = await context.store.putObject(payload.runId, this.stage, 'comparison.json', `${JSON.stringify(ranking, null, 2)}\n`, 'application/json');
    return { result: ranking, artifacts: [artifact] };
  }
}
