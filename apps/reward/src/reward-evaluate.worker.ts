import { Inject } from '@nestjs/common';
import { Processor } from '@nestjs/bullmq';
import { UnrecoverableError } from 'bullmq';
import { PreferenceRecord, type ParsedPayloadOf } from '@xyp/contracts';
import { LocalEngine } from '@xyp/local-engine';
import { StageRuntime, StageWorker, checkpointOf, type StageContext, type StageOutput } from '@xyp/queue';
import { alignmentByCategory, alignmentChart, alignmentTables, summarizeSeeds, type AlignmentReport } from '@xyp/ufrm';
import { REWARD_ENGINE_BACKEND, type RewardEngineBackend } from './engine-options';

/**
 * reward.evaluate: scores the held-out pairs with every reward.train instance bound to it and
 * reports the alignment rate per subcategory (`alignment.json`, `alignment.md`, `alignment.png`):
 * the seed's finance and general tables, one column per variant (UFRM, BT-only), each cell the mean
 * ± std over that variant's seeds with its pair count, every rate with a 95% Wilson interval.
 */
@Processor('reward.evaluate')
export class RewardEvaluateWorker extends StageWorker<'reward.evaluate'> {
  readonly stage = 'reward.evaluate' as const;

  constructor(
    runtime: StageRuntime,
    @Inject(REWARD_ENGINE_BACKEND) private readonly backend: RewardEngineBackend,
  ) {
    super(runtime);
  }

  protected async execute(payload: ParsedPayloadOf<'reward.evaluate'>, context: StageContext): Promise<StageOutput<'reward.evaluate'>> {
    const records = parseRecords((await context.store.getObject(payload.testKey)).toString('utf8'));
    const engine = new LocalEngine({ store: context.store, backend: this.backend });
    const byVariant = new Map<string, { models: string[]; reports: AlignmentReport[] }>();
    let done = 0;
    for (const model of payload.models) {
      const { checkpoint, manifest } = await checkpointOf(context.store, model.manifestKey, 'models');
      const variant = typeof manifest.result.variant === 'string' ? manifest.result.variant : model.instance;
      const { scored } = await engine.scorePreferences(checkpoint, records, { signal: context.signal });
      const entry = byVariant.get(variant) ?? { models: [], reports: [] };
      entry.models.push(checkpoint);
      entry.reports.push(alignmentByCategory(scored));
      byVariant.set(variant, entry);
      done += 1;
      await context.progress(done, payload.models.length, 'models', `${checkpoint}: ${(100 * entry.reports[entry.reports.length - 1].overall.rate).toFixed(1)}% aligned`);
    }
    const variants = [...byVariant].map(([name, v]) => ({ name, seeds: v.reports }));
    const tables = alignmentTables(variants);
    const put = (name: string, body: string | Uint8Array, type: string) => context.store.putObject(payload.runId, this.stage, name, typeof body === 'string' ? body : Buffer.from(body), type);
    const artifacts = [
      await put('alignment.json', `${JSON.stringify({ pairs: records.length, models: Object.fromEntries([...byVariant].map(([n, v]) => [n, v.models])), ...tables.json }, null, 2)}\n`, 'application/json'),
      await put('alignment.md', tables.markdown, 'text/markdown'),
      await put('alignment.png', alignmentChart(variants), 'image/png'),
    ];
    const summary = (s: { mean: number; std: number } | undefined, n: number) => (s ? { mean: s.mean, std: s.std, n } : null);
    return {
      result: {
        pairs: records.length,
        variants: [...byVariant].map(([name, v]) => {
          const seeds = summarizeSeeds(v.reports);
          return {
            name,
            seeds: v.reports.length,
            models: v.models,
            overall: { mean: seeds.overall.mean, std: seeds.overall.std, n: seeds.runs },
            finance: summary(seeds.bySet.finance?.macro, seeds.runs),
            general: summary(seeds.bySet.general?.macro, seeds.runs),
          };
        }),
      },
      artifacts,
    };
  }
}

/** The held-out records, every line checked; a bad line names its number. */
function parseRecords(text: string): PreferenceRecord[] {
  const records: PreferenceRecord[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    const parsed = PreferenceRecord.safeParse(JSON.parse(line));
    if (!parsed.success) throw new UnrecoverableError(`test.jsonl:${i + 1}: ${parsed.error.issues[0].path.join('.')}: ${parsed.error.issues[0].message}`);
    records.push(parsed.data);
  });
  if (records.length === 0) throw new UnrecoverableError('test.jsonl: no held-out pairs');
  return records;
}
