import { Inject } from '@nestjs/common';
import { Processor } from '@nestjs/bullmq';
import { instanceId, type ParsedPayloadOf } from '@xyp/contracts';
import { LocalEngine } from '@xyp/local-engine';
import { StageRuntime, StageWorker, checkpointOf, failForGoodIf, withLocalCopies, type StageContext, type StageOutput } from '@xyp/queue';
import { ciFilterStage, readRlhfPrompts } from '@xyp/rlhf-stages';
import { RLHF_ENGINE_BACKEND, isInputError, type RlhfEngineBackend } from './engine-options';
import { putStageFiles } from './stage-files';

/**
 * rlhf.ci-filter: the confidence-interval filter of the finance prompts (`ciFilterStage` of
 * `@xyp/rlhf-stages`): n samples of the SFT policy per prompt, UFRM scores, `ciFilter` of
 * `@xyp/rlhf`. Every prompt is kept or dropped by a named rule; the kept ones and the first round's
 * ratios and KL are committed for the PEI loop.
 */
@Processor('rlhf.ci-filter')
export class RlhfCiFilterWorker extends StageWorker<'rlhf.ci-filter'> {
  readonly stage = 'rlhf.ci-filter' as const;

  constructor(
    runtime: StageRuntime,
    @Inject(RLHF_ENGINE_BACKEND) private readonly backend: RlhfEngineBackend,
  ) {
    super(runtime);
  }

  protected async execute(payload: ParsedPayloadOf<'rlhf.ci-filter'>, context: StageContext): Promise<StageOutput<'rlhf.ci-filter'>> {
    const policy = (await checkpointOf(context.store, payload.policyManifestKey, 'policy')).checkpoint;
    const reward = (await checkpointOf(context.store, payload.rewardManifestKey, 'reward')).checkpoint;
    return withLocalCopies(context.store, { 'prompts.jsonl': payload.promptsKey }, async (paths) => {
      const read = await readRlhfPrompts(paths['prompts.jsonl'], { subdomainPrefix: payload.subdomainPrefix });
      const engine = new LocalEngine({ store: context.store, backend: this.backend });
      const out = await failForGoodIf(
        () =>
          ciFilterStage(engine, {
            policy,
            reward,
            read,
            source: 'prompts',
            settings: payload,
            backend: this.backend,
            signal: context.signal,
            onProgress: (done, total, what) => context.progress(done, total, what, 'sampling and scoring'),
          }),
        (error) => isInputError(error),
      );
      context.log(`kept ${out.result.kept} of ${out.result.prompts} prompts`);
      return { result: out.result, artifacts: await putStageFiles(context, payload.runId, instanceId(this.stage, context.instance), out.files) };
    });
  }
}
