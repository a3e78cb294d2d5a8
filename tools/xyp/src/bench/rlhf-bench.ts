/**
 * RLHF rollout bench (`xyp bench rlhf`): on one fresh byte model with a value head, response tokens
 * per second of
 *  - plain sampling: the engine's `generateAsync` on the round's prompts (n, max tokens, temperature);
 *  - the rollout phase of a PPO round (`ppoRound`'s `timings.rolloutSeconds`): the same sampling, which
 *    also returns the policy's log-probabilities and values of the sampled tokens, the batched reward
 *    call through a cheap in-process reward (`rewardLatencyMs` delays it like a reward service's round
 *    trip; the reference pass runs while it is pending), packing, the reference's teacher-forced pass,
 *    rewards and GAE;
 *  - the PPO updates (`timings.updateSeconds`): response tokens × epochs trained per second;
 *  - the same rollout phase with the reference streamed on a second thread while the policy samples
 *    (`streamReference: true`) instead of scored after sampling (the default).
 * The sides run interleaved in blocks on the same policy (plain sampling, a PPO round, a PPO round
 * with the reference streamed), after one untimed warm-up of each; medians reported. No end token: every row decodes `maxTokens` tokens, so
 * both sides sample the same number of tokens whatever the weights.
 */
import { existsSync, readFileSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { resolve } from 'node:path';
import { Trainer, cloneModel, countParams, disposeModel, fusedDecodingActive, generateAsync, initBackend, initParams, type BackendOptions } from '@xyp/engine';
import { ppoRound, type PpoRoundResult, type RewardFn } from '@xyp/ppo';
import { ByteTokenizer } from '@xyp/tokenizer';

export interface RlhfBenchOptions {
  /** SFT JSONL whose first user turns are the prompts (default: data/sample/sft.jsonl; synthetic prompts when absent). */
  sft?: string;
  layers: number;
  width: number;
  heads: number;
  context: number;
  prompts: number;
  samplesPerPrompt: number;
  maxTokens: number;
  temperature: number;
  epochs: number;
  minibatches: number;
  blocks: number;
  klEstimator: 'k1' | 'k3';
  /** Delay every reward call by this many ms (a reward service's round trip); default 0. */
  rewardLatencyMs?: number;
  backend?: BackendOptions;
  onProgress?: (line: string) => void;
}

export interface RlhfBenchBlock {
  plainTokensPerSecond: number;
  rolloutTokensPerSecond: number;
  /** The rollout phase with the reference streamed while the policy samples (`streamReference: true`). */
  streamedTokensPerSecond: number;
  updateTokensPerSecond: number;
  /** Seconds of the PPO rollout phase, by part. */
  samplingSeconds: number;
  scoringSeconds: number;
  experienceSeconds: number;
  updateSeconds: number;
}

export interface RlhfBenchReport {
  model: { layers: number; width: number; heads: number; context: number; params: number };
  backend: string;
  decoder: 'native' | 'tfjs';
  prompts: { source: string; count: number; meanTokens: number };
  samplesPerPrompt: number;
  rollouts: number;
  maxTokens: number;
  temperature: number;
  epochs: number;
  minibatches: number;
  klEstimator: 'k1' | 'k3';
  rewardLatencyMs: number;
  blocks: RlhfBenchBlock[];
  plainMedian: number;
  rolloutMedian: number;
  updateMedian: number;
  /** PPO rollout tokens/s ÷ plain sampling tokens/s (medians); target ≥ 0.8. */
  ratio: number;
  /** The median over the blocks of each block's rollout ÷ plain (the two sides of a block ran back to back). */
  blockRatioMedian: number;
  /** Rollout tokens/s with the reference streamed ÷ plain sampling (medians). */
  streamedRatio: number;
  /** Medians over the blocks of the share of the rollout phase in each part. */
  rolloutShares: { sampling: number; scoring: number; experience: number };
  /** The last round's logs (mean reward, KL, entropy, clip fraction), to show the round did train. */
  lastRound: Pick<PpoRoundResult, 'meanReward' | 'meanKl' | 'meanResponseLength' | 'entropy' | 'clipFraction' | 'policyLoss' | 'valueLoss'>;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const round = (x: number, digits = 1): number => Number(x.toFixed(digits));

/** First user turns of an SFT JSONL, or synthetic finance questions when it is missing. */
function readPrompts(path: string, count: number): { source: string; texts: string[] } {
  if (existsSync(path)) {
    const texts: string[] = [];
    for (const line of readFileSync(path, 'utf8').split('\n')) {
      if (texts.length >= count) break;
      if (!line.trim()) continue;
      const record = JSON.parse(line) as { messages?: { role: string; content: string }[] };
      const user = record.messages?.find((m) => m.role === 'user')?.content;
      if (user) texts.push(user);
    }
    if (texts.length > 0) return { source: path, texts };
  }
  const topics = ['bond yields', 'bank margins', 'coal demand', 'solar capacity', 'FX reserves', 'credit spreads', 'CPI', 'PMI'];
  return { source: 'synthetic', texts: Array.from({ length: count }, (_, i) => `What is the outlook for ${topics[i % topics.length]} (${i})?`) };
}

/** The cheap in-process reward: the share of ASCII digits in the response bytes. */
const digitShare: RewardFn = async (batch) => batch.map(({ response }) => response.filter((t) => t >= 48 && t <= 57).length / Math.max(1, response.length));

export async function runRlhfBench(options: RlhfBenchOptions): Promise<RlhfBenchReport> {
  const say = options.onProgress ?? (() => undefined);
  const info = await initBackend(options.backend);
  const tokenizer = new ByteTokenizer();
  const { source, texts } = readPrompts(options.sft ?? resolve(__dirname, '../../../../data/sample/sft.jsonl'), options.prompts);
  const room = options.context - options.maxTokens;
  if (room < 2) throw new Error(`--max-tokens ${options.maxTokens} leaves no room for a prompt in a context of ${options.context}`);
  // Prompts longer than the room keep their last tokens (the generation prompt stays).
  const prompts = texts.map((text) => tokenizer.encodeChat([{ role: 'user', content: text }], true).ids.slice(-room));
  while (prompts.length < options.prompts) prompts.push(prompts[prompts.length % texts.length]);
  const config = { vocabSize: tokenizer.vocabSize, contextLength: options.context, layers: options.layers, width: options.width, heads: options.heads, valueHead: true };
  const policy = initParams(config, 1);
  const reference = cloneModel(policy);
  const trainer = new Trainer(policy, { lr: 1e-4, warmupSteps: 0, totalSteps: 1_000_000, weightDecay: 0 }, 1);
  const latency = options.rewardLatencyMs ?? 0;
  const reward: RewardFn = latency > 0 ? async (batch, o) => (await delay(latency), digitShare(batch, o)) : digitShare;
  const sampling = { n: options.samplesPerPrompt, temperature: options.temperature, topP: 1, maxTokens: options.maxTokens };
  const ppo = { klCoef: 0.05, klEstimator: options.klEstimator, samplesPerPrompt: options.samplesPerPrompt, temperature: options.temperature, maxTokens: options.maxTokens, epochs: options.epochs, minibatches: options.minibatches };
  const plain = async (seed: number): Promise<number> => {
    const t0 = performance.now();
    const samples = await generateAsync(policy, prompts, { ...sampling, seed });
    return samples.reduce((a, s) => a + s.tokens.length, 0) / ((performance.now() - t0) / 1000);
  };
  try {
    say(`warm-up: ${prompts.length} prompts × ${options.samplesPerPrompt} samples × ${options.maxTokens} tokens, one plain sampling and one PPO round`);
    await plain(0);
    let last = await ppoRound(trainer, reference, prompts, reward, ppo);
    await ppoRound(trainer, reference, prompts, reward, ppo, { streamReference: true });
    const blocks: RlhfBenchBlock[] = [];
    for (let b = 0; b < options.blocks; b++) {
      const plainTokensPerSecond = await plain(b + 1);
      last = await ppoRound(trainer, reference, prompts, reward, ppo);
      const streamed = await ppoRound(trainer, reference, prompts, reward, ppo, { streamReference: true });
      const t = last.timings;
      const block = {
        plainTokensPerSecond,
        rolloutTokensPerSecond: last.responseTokens / t.rolloutSeconds,
        streamedTokensPerSecond: streamed.responseTokens / streamed.timings.rolloutSeconds,
        updateTokensPerSecond: (last.responseTokens * options.epochs) / t.updateSeconds,
        samplingSeconds: t.samplingSeconds,
        scoringSeconds: t.scoringSeconds,
        experienceSeconds: t.experienceSeconds,
        updateSeconds: t.updateSeconds,
      };
      blocks.push(block);
      say(
        `block ${b + 1}/${options.blocks}: plain ${Math.round(block.plainTokensPerSecond)} tok/s, PPO rollout ${Math.round(block.rolloutTokensPerSecond)} tok/s ` +
          `(${Math.round(block.streamedTokensPerSecond)} with the reference streamed), ` +
          `updates ${Math.round(block.updateTokensPerSecond)} tok/s`,
      );
    }
    const plainMedian = median(blocks.map((b) => b.plainTokensPerSecond));
    const rolloutMedian = median(blocks.map((b) => b.rolloutTokensPerSecond));
    const share = (key: 'samplingSeconds' | 'scoringSeconds' | 'experienceSeconds'): number =>
      round(median(blocks.map((b) => b[key] / (b.samplingSeconds + b.scoringSeconds + b.experienceSeconds))), 3);
    return {
      model: { layers: options.layers, width: options.width, heads: options.heads, context: options.context, params: countParams(policy.config).total },
      backend: `${info.backend}${info.matmul ? `, matmul ${info.matmul}` : ''}, ${info.threads} thread(s)${info.blasThreadTimeout ? `, OpenBLAS thread timeout 2^${info.blasThreadTimeout} cycles` : ''}`,
      decoder: fusedDecodingActive() ? 'native' : 'tfjs',
      prompts: { source, count: prompts.length, meanTokens: round(prompts.reduce((a, p) => a + p.length, 0) / prompts.length) },
      samplesPerPrompt: options.samplesPerPrompt,
      rollouts: prompts.length * options.samplesPerPrompt,
      maxTokens: options.maxTokens,
      temperature: options.temperature,
      epochs: options.epochs,
      minibatches: options.minibatches,
      klEstimator: options.klEstimator,
      rewardLatencyMs: latency,
      blocks: blocks.map((b) => ({
        plainTokensPerSecond: round(b.plainTokensPerSecond),
        rolloutTokensPerSecond: round(b.rolloutTokensPerSecond),
        streamedTokensPerSecond: round(b.streamedTokensPerSecond),
        updateTokensPerSecond: round(b.updateTokensPerSecond),
        samplingSeconds: round(b.samplingSeconds, 3),
        scoringSeconds: round(b.scoringSeconds, 4),
        experienceSeconds: round(b.experienceSeconds, 3),
        updateSeconds: round(b.updateSeconds, 3),
      })),
      plainMedian: round(plainMedian),
      rolloutMedian: round(rolloutMedian),
      updateMedian: round(median(blocks.map((b) => b.updateTokensPerSecond))),
      ratio: round(rolloutMedian / plainMedian, 3),
      blockRatioMedian: round(median(blocks.map((b) => b.rolloutTokensPerSecond / b.plainTokensPerSecond)), 3),
      streamedRatio: round(median(blocks.map((b) => b.streamedTokensPerSecond)) / plainMedian, 3),
      rolloutShares: { sampling: share('samplingSeconds'), scoring: share('scoringSeconds'), experience: share('experienceSeconds') },
      lastRound: {
        meanReward: round(last.meanReward, 4),
        meanKl: round(last.meanKl, 5),
        meanResponseLength: round(last.meanResponseLength, 2),
        entropy: round(last.entropy, 4),
        clipFraction: round(last.clipFraction, 4),
        policyLoss: round(last.policyLoss, 5),
        valueLoss: round(last.valueLoss, 5),
      },
    };
  } finally {
    trainer.dispose();
    disposeModel(policy);
    disposeModel(reference);
  }
}
