import { Processor } from '@nestjs/bullmq';
import { UnrecoverableError } from 'bullmq';
import type { ParsedPayloadOf } from '@xyp/contracts';
import { MixtureInputError, decideMixture, mixtureSettled } from '@xyp/mixture';
import { StageRuntime, StageWorker, type StageContext, type StageOutput } from '@xyp/queue';

/**
 * corpus.mix: the next stage's sampling weights (or next epoch's SFT ratios) from a
 * per-category loss report. The full decision, with the reason for every change, is
 * committed as `mixture.json`, the weights alone as `weights.json` (what the next corpus.mix
 * or trainer reads); bad input fails the stage without retries. The result says whether the
 * mixture still moves (`decision`), so a loop of mixture rounds can end on it.
 */
@Processor('corpus.mix')
export class CorpusMixWorker extends StageWorker<'corpus.mix'> {
  readonly stage = 'corpus.mix' as const;

  constructor(runtime: StageRuntime) {
    super(runtime);
  }

  protected async execute(payload: ParsedPayloadOf<'corpus.mix'>, context: StageContext): Promise<StageOutput<'corpus.mix'>> {
    const read = async (key: string, source: string) => ({ text: (await context.store.getObject(key)).toString('utf8'), source });
    let decision;
    try {
      decision = decideMixture({
        losses: await read(payload.lossesKey, 'losses.jsonl'),
        weights: await read(payload.weightsKey, 'weights.json'),
        config: payload.configKey ? await read(payload.configKey, 'mixture-config.json') : undefined,
        sft: payload.mode === 'sft',
      });
    } catch (error) {
      if (error instanceof MixtureInputError) throw new UnrecoverableError(error.message);
      throw error;
    }
    const artifact = await context.store.putObject(payload.runId, this.stage, 'mixture.json', JSON.stringify(decision, null, 2), 'application/json');
    const weights = await context.store.putObject(payload.runId, this.stage, 'weights.json', `${JSON.stringify(decision.weights, null, 2)}\n`, 'application/json');
    const changes = decision.changes.map((c) => ({ category: c.category, oldWeight: c.oldWeight, newWeight: c.newWeight, reason: c.reason }));
    const settled = mixtureSettled(changes, payload.stopBelow);
    return {
      result: {
        mode: decision.mode,
        weights: decision.weights,
        changes,
        notes: decision.notes,
        maxWeightChange: settled.maxChange,
        decision: { continue: settled.continue, reason: settled.reason },
      },
      artifacts: [artifact, weights],
    };
  }
}
