import { Inject } from '@nestjs/common';
import { Processor } from '@nestjs/bullmq';
import { UnrecoverableError } from 'bullmq';
import type { ParsedPayloadOf } from '@xyp/contracts';
import { LlmGatewayError } from '@xyp/llm';
import { PairsInputError, runRewardPairs } from '@xyp/preference-pairs';
import { StageRuntime, StageWorker, type StageContext, type StageOutput } from '@xyp/queue';
import { REWARD_ENGINE_BACKEND, type RewardEngineBackend } from './engine-options';

const ARTIFACTS = [
  ['pretrain.jsonl', 'application/x-ndjson'],
  ['finetune.jsonl', 'application/x-ndjson'],
  ['samples.jsonl', 'application/x-ndjson'],
  ['dropped.jsonl', 'application/x-ndjson'],
  ['summary.json', 'application/json'],
] as const;

/**
 * reward.pairs: preference pairs from several models and sampling settings (libs/preference-pairs).
 * Commits `pretrain.jsonl` (general pairs) and `finetune.jsonl` (finance pairs) as
 * `PreferenceRecord` lines, the sampled responses (`samples.jsonl`, whose ids human labels may
 * name), the dropped pairs with their reasons and the summary. Bad input (a prompt or label line,
 * the config) and an endpoint's refusal (a 4xx other than 408/409/429) fail without retries; an
 * endpoint still failing after the LLM gateway's retries (429, 5xx, timeouts, connection errors)
 * fails the attempt, which BullMQ retries.
 */
@Processor('reward.pairs')
export class RewardPairsWorker extends StageWorker<'reward.pairs'> {
  readonly stage = 'reward.pairs' as const;

  constructor(
    runtime: StageRuntime,
    @Inject(REWARD_ENGINE_BACKEND) private readonly backend: RewardEngineBackend,
  ) {
    super(runtime);
  }

  /** The API key a config's `apiKeyEnv` names (endpoints' keys live in the service's environment, never in the config). */
  protected secret(name: string): string | undefined {
    return process.env[name];
  }

  protected async execute(payload: ParsedPayloadOf<'reward.pairs'>, context: StageContext): Promise<StageOutput<'reward.pairs'>> {
    const read = async (key: string, file: string) => ({ text: (await context.store.getObject(key)).toString('utf8'), file });
    let output;
    try {
      output = await runRewardPairs({
        config: await read(payload.configKey, 'reward-pairs.json'),
        prompts: await read(payload.promptsKey, 'prompts.jsonl'),
        humanLabels: payload.humanLabelsKey ? await read(payload.humanLabelsKey, 'human-labels.jsonl') : undefined,
        overrides: { seed: payload.seed, minMargin: payload.minMargin, samplesPerSetting: payload.samplesPerSetting, maxPairsPerPrompt: payload.maxPairsPerPrompt },
        store: context.store,
        backend: this.backend,
        secret: (name) => this.secret(name),
        signal: context.signal,
        onProgress: (done, total, unit, message) => context.progress(done, total, unit, message),
      });
    } catch (error) {
      if (error instanceof PairsInputError) throw new UnrecoverableError(error.message);
      if (error instanceof LlmGatewayError && error.permanent) throw new UnrecoverableError(error.message);
      throw error;
    }
    const artifacts = [];
    for (const [name, type] of ARTIFACTS) artifacts.push(await context.store.putObject(payload.runId, this.stage, name, output.files[name], type));
    const s = output.summary;
    const judge = s.labellers.judge as { promptVersion?: string } | undefined;
    context.log(`${s.kept} of ${s.candidatePairs} candidate pairs kept (pretrain ${s.collections.pretrain}, finetune ${s.collections.finetune})`);
    return {
      result: {
        prompts: s.prompts,
        samples: s.samples,
        responses: s.responses,
        candidatePairs: s.candidatePairs,
        kept: s.kept,
        dropped: Object.fromEntries(Object.entries(s.dropped).map(([reason, n]) => [reason, n ?? 0])),
        perLabeller: s.perLabeller,
        perModelPair: s.perModelPair,
        collections: s.collections,
        humanLabelsUnmatched: s.humanLabelsUnmatched,
        seed: s.seed,
        ...(judge?.promptVersion ? { judgePromptVersion: judge.promptVersion } : {}),
      },
      artifacts,
    };
  }
}
