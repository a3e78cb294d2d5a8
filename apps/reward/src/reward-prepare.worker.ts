import { Processor } from '@nestjs/bullmq';
import type { ArtifactEntry, ParsedPayloadOf } from '@xyp/contracts';
import { PREFERENCE_COLLECTIONS, linesOf, writePreferenceCollections, type PreferenceCollection } from '@xyp/preference-data';
import { StageFailedError, StageRuntime, StageWorker, type StageContext, type StageOutput } from '@xyp/queue';

/**
 * reward.prepare: the run's preference files (any layout `@xyp/preference-data` reads) → the
 * collections the reward stages read: `pretrain.jsonl`, `finetune.jsonl`, `train.jsonl`,
 * `test.jsonl`, `rejects.jsonl`, and `summary.json` with the counts. Over `maxRejectRatio` of
 * rejected lines the stage fails for good, leaving `rejects.jsonl` and `summary.json` fetchable.
 */
@Processor('reward.prepare')
export class RewardPrepareWorker extends StageWorker<'reward.prepare'> {
  readonly stage = 'reward.prepare' as const;

  constructor(runtime: StageRuntime) {
    super(runtime);
  }

  protected async execute(payload: ParsedPayloadOf<'reward.prepare'>, context: StageContext): Promise<StageOutput<'reward.prepare'>> {
    const c = payload.config;
    const lines: Record<PreferenceCollection, string[]> = { pretrain: [], finetune: [], train: [], test: [], rejects: [] };
    const inputs = await Promise.all(payload.inputs.map(async (input) => ({ name: input.name, lines: linesOf(await context.store.getObjectStream(input.key)) })));
    const counts = await writePreferenceCollections({
      inputs,
      testFraction: c.testFraction,
      seed: c.seed,
      nearDuplicateThreshold: c.nearDuplicateThreshold,
      defaults: { set: c.defaultSet, ...(c.defaultCategory ? { category: c.defaultCategory } : {}) },
      progressEvery: 1000,
      write: (collection, line) => void lines[collection].push(line),
      onProgress: (p) => void context.progress(p.lines, p.lines, 'lines', `${p.accepted} pairs accepted, ${p.rejected} rejected`).catch(() => undefined),
    });
    context.signal.throwIfAborted();
    const put = (name: string, body: string, type = 'application/x-ndjson'): Promise<ArtifactEntry> => context.store.putObject(payload.runId, this.stage, name, body, type);
    const jsonl = (items: string[]) => (items.length ? `${items.join('\n')}\n` : '');
    const testByCategory = counts.splits.test.byCategory;
    const result = {
      lines: counts.lines,
      accepted: counts.accepted,
      rejected: counts.rejected.total,
      rejectedByReason: Object.fromEntries(Object.entries(counts.rejected.byReason).filter(([, n]) => n > 0)),
      duplicates: counts.duplicates,
      train: counts.train,
      test: counts.test,
      byPhase: counts.splits.train.byPhase,
      testByCategory,
    };
    const summary = await put('summary.json', `${JSON.stringify({ ...result, counts }, null, 2)}\n`, 'application/json');
    const rejects = await put('rejects.jsonl', jsonl(lines.rejects));
    if (counts.lines > 0 && counts.rejected.total / counts.lines > c.maxRejectRatio) {
      throw new StageFailedError(
        `reward.prepare: ${counts.rejected.total} of ${counts.lines} lines rejected (${((100 * counts.rejected.total) / counts.lines).toFixed(1)}% > max_reject_ratio ${c.maxRejectRatio}); see rejects.jsonl`,
        [summary, rejects],
      );
    }
    if (counts.train === 0 || counts.test === 0) {
      throw new StageFailedError(`reward.prepare: ${counts.train} training and ${counts.test} held-out pairs; both must be non-empty (test_fraction ${c.testFraction})`, [summary, rejects]);
    }
    const artifacts = [summary, rejects];
    for (const collection of PREFERENCE_COLLECTIONS) if (collection !== 'rejects') artifacts.push(await put(`${collection}.jsonl`, jsonl(lines[collection])));
    return { result, artifacts };
  }
}
