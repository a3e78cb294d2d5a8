import { Processor } from '@nestjs/bullmq';
import { UnrecoverableError } from 'bullmq';
import { SUBCATEGORIES, instanceId, type ArtifactEntry, type ParsedPayloadOf } from '@xyp/contracts';
import { StageRuntime, StageWorker, type StageContext, type StageOutput } from '@xyp/queue';
import { gainChart, peiLoopSummary, peiRoundTable, ratioTrajectoryChart, type PeiRound, type WinTieLoss } from '@xyp/rlhf';
import { alignmentRates, improveRound, readRoundRatios } from '@xyp/rlhf-stages';

const LABELS = Object.fromEntries(SUBCATEGORIES.map((s) => [s.id, s.label]));

/** The loop so far: round 0 (the CI filter's ratios and KL), then one `PeiRound` per improve step. */
type History = [{ round: 0; ratios: Record<string, number>; kl: number }, ...PeiRound[]] | PeiRound[];

async function json<T>(context: StageContext, key: string, slot: string): Promise<T> {
  try {
    return JSON.parse((await context.store.getObject(key)).toString('utf8')) as T;
  } catch (error) {
    throw new UnrecoverableError(`${slot}: ${key} is not JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/**
 * rlhf.improve: the PEI grid (`improveRound` of `@xyp/rlhf-stages`) over the round's PPO gains and
 * the UFRM alignment rates moves each subdomain's data ratio and lowers the KL; its decision says
 * whether the control plane adds another round, and why not.
 */
@Processor('rlhf.improve')
export class RlhfImproveWorker extends StageWorker<'rlhf.improve'> {
  readonly stage = 'rlhf.improve' as const;

  constructor(runtime: StageRuntime) {
    super(runtime);
  }

  protected async execute(payload: ParsedPayloadOf<'rlhf.improve'>, context: StageContext): Promise<StageOutput<'rlhf.improve'>> {
    const stage = instanceId(this.stage, context.instance);
    const round = Number(/-(\d+)$/.exec(context.instance ?? '')?.[1] ?? 1);
    const evaluation = await json<{ bySubdomain: Record<string, WinTieLoss>; overall: WinTieLoss }>(context, payload.evaluationKey, 'evaluation');
    const used = readRoundRatios((await context.store.getObject(payload.ratiosKey)).toString('utf8'), 'ratios');
    const alignment = alignmentRates(await json(context, payload.alignmentKey, 'alignment'), payload.alignmentVariant);
    const history = await json<History>(context, payload.historyKey, 'history');
    let out;
    try {
      out = improveRound({
        round,
        maxRounds: payload.maxRounds,
        ratios: used.ratios,
        kl: used.kl,
        gains: Object.fromEntries(Object.keys(used.ratios).map((s) => [s, evaluation.bySubdomain[s]?.netWinRate ?? null])),
        alignment,
        ppoTiers: payload.ppoTiers,
        rmTiers: payload.rmTiers,
        grid: { up: payload.up, upUp: payload.upUp, down: payload.down, downDown: payload.downDown, minRatio: payload.minRatio },
        klFactor: payload.klFactor,
        klMin: payload.klMin,
        epsilon: payload.epsilon,
      });
    } catch (error) {
      // A pure decision over committed inputs: the same inputs fail the same way on every retry.
      throw new UnrecoverableError(error instanceof Error ? error.message : String(error));
    }
    const subs = Object.keys(used.ratios);
    const peiRound: PeiRound = {
      round,
      kl: used.kl,
      nextKl: out.kl.after,
      judged: { overall: evaluation.overall, bySubdomain: Object.fromEntries(subs.filter((s) => evaluation.bySubdomain[s]).map((s) => [s, evaluation.bySubdomain[s]])) },
      rmAlignment: Object.fromEntries(subs.map((s) => [s, alignment[s]])),
      ppoTiers: out.ppo.tiers,
      rmTiers: out.rm.tiers,
      grid: out.grid,
      stop: out.decision,
    };
    const rounds = [...(history.filter((h) => 'grid' in h) as PeiRound[]), peiRound];
    const artifacts: ArtifactEntry[] = [];
    const put = async (name: string, body: string | Uint8Array, type: string) => artifacts.push(await context.store.putObject(payload.runId, stage, name, Buffer.from(body), type));
    await put('ratios.json', `${JSON.stringify({ ratios: out.grid.ratios, kl: out.kl.after }, null, 2)}\n`, 'application/json');
    await put('history.json', `${JSON.stringify([...history, peiRound], null, 2)}\n`, 'application/json');
    await put('improve.json', `${JSON.stringify({ round, ...out }, null, 2)}\n`, 'application/json');
    await put('improve.md', `${peiRoundTable(peiRound, { labels: LABELS })}\n\n${out.notes.map((n) => `- ${n}`).join('\n')}\n\n${peiLoopSummary(rounds, { labels: LABELS })}\n`, 'text/markdown');
    await put('ratios.png', ratioTrajectoryChart(rounds, { labels: LABELS }), 'image/png');
    await put('gains.png', gainChart(rounds, { labels: LABELS }), 'image/png');
    context.log(`round ${round}: ${out.decision.reason}`);
    return {
      result: {
        round,
        ratios: out.grid.ratios,
        kl: out.kl.after,
        moves: out.grid.records.map((r) => ({ subdomain: r.subdomain, ppoTier: r.ppoTier, rmTier: r.rmTier, action: r.action, before: r.before, after: r.after })),
        decision: { continue: out.decision.continue, reason: out.decision.reason },
      },
      artifacts,
    };
  }
}
