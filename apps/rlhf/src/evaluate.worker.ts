import { readFile } from 'node:fs/promises';
import { Inject } from '@nestjs/common';
import { Processor } from '@nestjs/bullmq';
import { instanceId, type ParsedPayloadOf } from '@xyp/contracts';
import { LlmGatewayError } from '@xyp/llm';
import { LocalEngine } from '@xyp/local-engine';
import { StageRuntime, StageWorker, checkpointOf, failForGoodIf, withLocalCopies, type StageContext, type StageOutput } from '@xyp/queue';
import { evaluateStage, parseHumanVerdicts, readRlhfPrompts } from '@xyp/rlhf-stages';
import { RLHF_ENGINE_BACKEND, isInputError, type RlhfEngineBackend } from './engine-options';
import { putStageFiles } from './stage-files';

/**
 * rlhf.evaluate: the round's policy against the SFT model on held-out prompts (`evaluateStage` of
 * `@xyp/rlhf-stages`): verdicts in both orders by the reference judge or an LLM judge (human
 * verdicts first), the UFRM score of both models' responses, the policy's KL to the reference, per
 * subdomain. The LLM judge's API key comes from the environment variable the spec names; its
 * endpoint is a one-model LLM gateway, whose retries are the only ones. A judge endpoint's refusal
 * (a 4xx other than 408/409/429) fails for good; one still failing after the gateway's retries fails
 * the attempt, which BullMQ retries.
 */
@Processor('rlhf.evaluate')
export class RlhfEvaluateWorker extends StageWorker<'rlhf.evaluate'> {
  readonly stage = 'rlhf.evaluate' as const;

  constructor(
    runtime: StageRuntime,
    @Inject(RLHF_ENGINE_BACKEND) private readonly backend: RlhfEngineBackend,
  ) {
    super(runtime);
  }

  protected async execute(payload: ParsedPayloadOf<'rlhf.evaluate'>, context: StageContext): Promise<StageOutput<'rlhf.evaluate'>> {
    const policy = (await checkpointOf(context.store, payload.policyManifestKey, 'policy')).checkpoint;
    const baseline = (await checkpointOf(context.store, payload.baselineManifestKey, 'baseline')).checkpoint;
    const reward = (await checkpointOf(context.store, payload.rewardManifestKey, 'reward')).checkpoint;
    const objects: Record<string, string> = { 'prompts.jsonl': payload.promptsKey, ...(payload.humanKey ? { 'human.jsonl': payload.humanKey } : {}) };
    return withLocalCopies(context.store, objects, async (paths) => {
      const engine = new LocalEngine({ store: context.store, backend: this.backend });
      const { out, result, files } = await failForGoodIf(
        async () =>
          evaluateStage(engine, {
            policy,
            baseline,
            reward,
            read: await readRlhfPrompts(paths['prompts.jsonl'], { subdomainPrefix: payload.subdomainPrefix }),
            source: 'prompts',
            human: paths['human.jsonl'] ? parseHumanVerdicts(await readFile(paths['human.jsonl'], 'utf8'), 'human') : undefined,
            settings: payload,
            judgeApiKey: payload.judgeApiKeyEnv ? process.env[payload.judgeApiKeyEnv] : undefined,
            // The judge's xyp_llm_* metrics on the service's registry, served at /metrics.
            metricsRegistry: this.stageMetrics?.registry,
            backend: this.backend,
            signal: context.signal,
            onProgress: (done, total, what) => context.progress(done, total, 'phases', what),
          }),
        (error) => (error instanceof LlmGatewayError ? error.permanent : isInputError(error) || (error instanceof Error && /^human:\d+: |judge/.test(error.message))),
      );
      context.log(`judge ${out.judge}: win ${out.overall.win}, tie ${out.overall.tie}, loss ${out.overall.loss}, skip ${out.overall.skip}; UFRM gain ${out.overall.scoreGain.toFixed(4)}, KL ${out.overall.kl.toFixed(3)}${result.klWithinBound ? '' : ` above the bound ${payload.maxKl}`}`);
      return { result, artifacts: await putStageFiles(context, payload.runId, instanceId(this.stage, context.instance), files) };
    });
  }
}
