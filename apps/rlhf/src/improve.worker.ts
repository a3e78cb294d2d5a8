import { Processor } from '@nestjs/bullmq';
import { instanceId, type ParsedPayloadOf } from '@xyp/contracts';
import { StageRuntime, StageWorker, failForGoodIf, readStageJson, type StageContext, type StageOutput } from '@xyp/queue';
import { alignmentRates, improveStage, readRoundRatios, type ImproveStageInput, type PeiHistory } from '@xyp/rlhf-stages';
import { putStageFiles } from './stage-files';

/**
 * rlhf.improve: the PEI grid (`improveStage` of `@xyp/rlhf-stages`) over the round's PPO gains and
 * the UFRM alignment rates moves each subdomain's data ratio and lowers the KL; its decision says
 * whether the control plane adds another round, and why not. A pure decision over committed
 * inputs: any error fails for good.
 */
@Processor('rlhf.improve')
export class RlhfImproveWorker extends StageWorker<'rlhf.improve'> {
  readonly stage = 'rlhf.improve' as const;

  constructor(runtime: StageRuntime) {
    super(runtime);
  }

  protected async execute(payload: ParsedPayloadOf<'rlhf.improve'>, context: StageContext): Promise<StageOutput<'rlhf.improve'>> {
    const round = Number(/-(\d+)$/.exec(context.instance ?? '')?.[1] ?? 1);
    const evaluation = await readStageJson<ImproveStageInput['evaluation']>(context.store, payload.evaluationKey, 'evaluation');
    const alignmentJson = await readStageJson(context.store, payload.alignmentKey, 'alignment');
    const history = await readStageJson<PeiHistory>(context.store, payload.historyKey, 'history');
    const ratiosText = (await context.store.getObject(payload.ratiosKey)).toString('utf8');
    const out = await failForGoodIf(
      async () => {
        const used = readRoundRatios(ratiosText, 'ratios');
        return improveStage({ round, evaluation, used, alignment: alignmentRates(alignmentJson, payload.alignmentVariant), history, settings: payload });
      },
      () => true,
    );
    context.log(`round ${round}: ${out.result.decision.reason}`);
    return { result: out.result, artifacts: await putStageFiles(context, payload.runId, instanceId(this.stage, context.instance), out.files) };
  }
}
