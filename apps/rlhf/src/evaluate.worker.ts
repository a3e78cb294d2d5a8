import { readFile } from 'node:fs/promises';
import { Inject } from '@nestjs/common';
import { Processor } from '@nestjs/bullmq';
import { UnrecoverableError } from 'bullmq';
import { SUBCATEGORIES, instanceId, type ArtifactEntry, type ParsedPayloadOf } from '@xyp/contracts';
import { LocalEngine, openPolicyScorer, openTextReward } from '@xyp/local-engine';
import { StageRuntime, StageWorker, checkpointOf, withLocalCopies, type StageContext, type StageOutput } from '@xyp/queue';
import { winTieLossChart } from '@xyp/rlhf';
import { annotationExport, evaluationMarkdown, llmPairJudge, parseHumanVerdicts, readRlhfPrompts, runEvaluation } from '@xyp/rlhf-stages';
import { RLHF_ENGINE_BACKEND, isInputError, type RlhfEngineBackend } from './engine-options';

const LABELS = Object.fromEntries(SUBCATEGORIES.map((s) => [s.id, s.label]));

/**
 * rlhf.evaluate: the round's policy against the SFT model on held-out prompts (`runEvaluation` of
 * `@xyp/rlhf-stages`): verdicts in both orders by the reference judge (human verdicts first), the
 * UFRM score of both models' responses, the policy's KL to the reference, per subdomain.
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
    const stage = instanceId(this.stage, context.instance);
    const policy = (await checkpointOf(context.store, payload.policyManifestKey, 'policy')).checkpoint;
    const baseline = (await checkpointOf(context.store, payload.baselineManifestKey, 'baseline')).checkpoint;
    const rewardModel = (await checkpointOf(context.store, payload.rewardManifestKey, 'reward')).checkpoint;
    const objects: Record<string, string> = { 'prompts.jsonl': payload.promptsKey, ...(payload.humanKey ? { 'human.jsonl': payload.humanKey } : {}) };
    return withLocalCopies(context.store, objects, async (paths) => {
      const read = await readRlhfPrompts(paths['prompts.jsonl'], { subdomainPrefix: payload.subdomainPrefix });
      if (read.prompts.length === 0) throw new UnrecoverableError(`rlhf.evaluate: prompts: no held-out prompt (${read.lines} lines, ${read.rejects.length} rejected, ${read.skipped} of other subdomains)`);
      let human;
      try {
        human = paths['human.jsonl'] ? parseHumanVerdicts(await readFile(paths['human.jsonl'], 'utf8'), 'human') : undefined;
      } catch (error) {
        throw new UnrecoverableError(error instanceof Error ? error.message : String(error));
      }
      let judge;
      if (payload.judge === 'llm') {
        if (!payload.judgeBaseUrl || !payload.judgeModel) throw new UnrecoverableError('rlhf.evaluate: judge llm needs judge_base_url and judge_model');
        const apiKey = payload.judgeApiKeyEnv ? process.env[payload.judgeApiKeyEnv] : undefined;
        if (payload.judgeApiKeyEnv && !apiKey) throw new UnrecoverableError(`rlhf.evaluate: judge_api_key_env: ${payload.judgeApiKeyEnv} is not set in the rlhf service's environment`);
        judge = llmPairJudge({ baseUrl: payload.judgeBaseUrl, model: payload.judgeModel, apiKey });
      }
      const engine = new LocalEngine({ store: context.store, backend: this.backend });
      const reward = await openTextReward(rewardModel, context.store, this.backend);
      const policyScorer = await openPolicyScorer(policy, context.store, { backend: this.backend });
      const referenceScorer = await openPolicyScorer(baseline, context.store, { backend: this.backend });
      try {
        const out = await runEvaluation(engine, {
          policy,
          baseline,
          policyScorer: policyScorer.scorer,
          referenceScorer: referenceScorer.scorer,
          reward: reward.reward,
          prompts: read.prompts,
          maxTokens: payload.maxTokens,
          temperature: payload.temperature,
          seed: payload.seed,
          tieMargin: payload.tieMargin,
          human,
          judge,
          judgeName: judge ? `llm:${payload.judgeModel}` : undefined,
          signal: context.signal,
          onProgress: (done, total, what) => context.progress(done, total, 'phases', what),
        }).catch((error: unknown) => {
          if (isInputError(error)) throw new UnrecoverableError(error.message);
          throw error;
        });
        const artifacts: ArtifactEntry[] = [];
        const put = async (name: string, body: string | Uint8Array, type: string) => artifacts.push(await context.store.putObject(payload.runId, stage, name, Buffer.from(body), type));
        const exported = annotationExport(out.pairs);
        await put('evaluation.json', `${JSON.stringify({ policy, baseline, judge: out.judge, overall: out.overall, bySubdomain: out.bySubdomain, pairs: out.pairs }, null, 2)}\n`, 'application/json');
        await put('evaluation.md', `${evaluationMarkdown(out, { policy, baseline })}\nKL bound: ${payload.maxKl} nats per response; ${out.overall.kl <= payload.maxKl ? 'within it' : 'ABOVE it'} (${out.overall.kl.toFixed(3)}).\n`, 'text/markdown');
        await put('pairs.csv', exported.csv, 'text/csv');
        await put('pairs.jsonl', exported.jsonl, 'application/x-ndjson');
        await put('win-tie-loss.png', winTieLossChart(out.bySubdomain, { labels: LABELS, title: `${policy} vs ${baseline}` }), 'image/png');
        context.log(`judge ${out.judge}: win ${out.overall.win}, tie ${out.overall.tie}, loss ${out.overall.loss}, skip ${out.overall.skip}; UFRM gain ${out.overall.scoreGain.toFixed(4)}, KL ${out.overall.kl.toFixed(3)}`);
        const klWithinBound = out.overall.kl <= payload.maxKl;
        if (!klWithinBound) context.log(`KL ${out.overall.kl.toFixed(3)} nats per response is above the bound ${payload.maxKl}`);
        return { result: { judge: out.judge, prompts: read.prompts.length, overall: out.overall, bySubdomain: out.bySubdomain, maxKl: payload.maxKl, klWithinBound }, artifacts };
      } finally {
        reward.dispose();
        policyScorer.dispose();
        referenceScorer.dispose();
      }
    });
  }
}
