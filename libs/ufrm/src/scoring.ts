/**
 * Scoring with a trained reward model, in process, behind the batched reward interface of
 * `@xyp/contracts` (`TextReward`: texts of a batch in, a promise of scores out). `RewardService.Score`
 * (`@xyp/reward-serving`) serves the same function over gRPC.
 */
import * as tf from '@tensorflow/tfjs-core';
import { checkRewardScores, type ChatTurn, type PreferenceRecord, type RewardCallOptions, type TextReward } from '@xyp/contracts';
import { yieldToEventLoop, type ByteTokenizer, type Model } from '@xyp/engine';
import { rewardForward, type PreferencePair } from './reward-model';

/**
 * The tokens a reward model scores for a prompt and a response given as text: the prompt as one user
 * turn of the chat template with the generation prompt, then the response ended by `<eot>` — the
 * form of the preference pairs it was trained on (`readPreferencePairs` of `@xyp/training-data`), so
 * the reward is read at the `<eot>` token, as in training.
 */
export function rewardSequence(tokenizer: ByteTokenizer, prompt: string, response: string): number[] {
  return [...tokenizer.encodeChat([{ role: 'user', content: prompt }], true).ids, ...tokenizer.encode(response), tokenizer.eosId];
}

/** `rewardSequence` for a prompt given as a conversation (its turns in the chat template, then the generation prompt). */
export function conversationRewardSequence(tokenizer: ByteTokenizer, prompt: readonly ChatTurn[], response: string): number[] {
  return [...tokenizer.encodeChat([...prompt], true).ids, ...tokenizer.encode(response), tokenizer.eosId];
}

/** A preference record as token ids, in the form `rewardSequence` scores (responses ended by `<eot>`), with its label margin. */
export function tokenizeRecord(tokenizer: ByteTokenizer, record: Pick<PreferenceRecord, 'prompt' | 'chosen' | 'rejected' | 'margin'>): PreferencePair {
  return {
    prompt: tokenizer.encodeChat([...record.prompt], true).ids,
    chosen: [...tokenizer.encode(record.chosen[0].content), tokenizer.eosId],
    rejected: [...tokenizer.encode(record.rejected[0].content), tokenizer.eosId],
    ...(record.margin !== undefined ? { margin: record.margin } : {}),
  };
}

export interface ScoreOptions extends RewardCallOptions {
  /** Sequences per forward pass (default 16). */
  batchSize?: number;
}

/**
 * Rewards r of token sequences (no dropout), `batchSize` sequences per forward pass, the event loop
 * served and `signal` checked between passes. A sequence longer than the model's context keeps its
 * last `contextLength` tokens.
 */
export async function scoreSequences(model: Model, sequences: readonly number[][], options: ScoreOptions = {}): Promise<number[]> {
  if (!model.params.value_w) throw new Error('scoreSequences: the model has no value head (not a reward model)');
  const size = Math.max(1, options.batchSize ?? 16);
  const context = model.config.contextLength;
  const scores: number[] = [];
  for (let start = 0; start < sequences.length; start += size) {
    options.signal?.throwIfAborted();
    const chunk = sequences.slice(start, start + size).map((s, i) => {
      if (s.length === 0) throw new Error(`scoreSequences: sequence ${start + i} is empty`);
      return s.length > context ? s.slice(-context) : s;
    });
    const r = tf.tidy(() => Array.from(rewardForward(model, chunk).r.dataSync()));
    scores.push(...r);
    if (start + size < sequences.length) await yieldToEventLoop();
  }
  return scores;
}

/**
 * The in-process reward function of a reward model: each item's prompt and response become
 * `rewardSequence`, scored `batchSize` at a time. `category` is not scored. A sequence longer than
 * the model's context keeps its last tokens, as `fitPair` does in training (the prompt loses its start).
 */
export function textRewardScorer(model: Model, tokenizer: ByteTokenizer, options: { batchSize?: number } = {}): TextReward {
  const limit = model.config.contextLength;
  return async (batch, call = {}) => {
    const sequences = batch.map((item) => rewardSequence(tokenizer, item.prompt, item.response)).map((ids) => (ids.length > limit ? ids.slice(ids.length - limit) : ids));
    return checkRewardScores(await scoreSequences(model, sequences, { ...options, signal: call.signal }), batch.length, 'reward model');
  };
}
