import { Processor } from '@nestjs/bullmq';
import { UnrecoverableError } from 'bullmq';
import { instanceId, type ParsedPayloadOf } from '@xyp/contracts';
import { StageRuntime, StageWorker, type StageContext, type StageOutput } from '@xyp/queue';
import { alignmentRates, improveStage, readRoundRatios, type ImproveStageInput, type PeiHistory } from '@xyp/rlhf-stages';
import { failInputForGood, putStageFiles } from './stage-files';

async function json<T>(context: StageContext, key: string, slot: string): Promise<T> {
  try {
    return JSON.parse((await context.store.getObject(key)).toString('utf8')) as T;
  } catch (error) {
    throw new UnrecoverableError(`${slot}: ${key} is not JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
}

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
    const evaluation = await json<ImproveStageInput['evaluation']>(context, payload.evaluationKey, 'evaluation');
    const alignmentJson = await json<unknown>(context, payload.alignmentKey, 'alignment');
    const history = await json<PeiHistory>(context, payload.historyKey, 'history');
    const ratiosText = (await context.store.getObject(payload.ratiosKey)).toString('utf8');
    const out = await failInputForGood(
      async () => {
        const used = readRoundRatios(ratiosText, 'ratios');
        return improveStage({ round, evaluation, used, alignment: alignmentRates(alignmentJson, payload.alignmentVariant), history, settings: payload });
      },
      () => true,
      UnrecoverableError,
    );
    context.log(`round ${round}: ${out.result.decision.reason}`);
    return { result: out.result, artifacts: await putStageFiles(context, payload.runId, instanceId(this.stage, context.instance), out.files) };
  }
}
