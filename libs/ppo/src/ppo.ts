/**
 * PPO with a KL penalty to a frozen reference policy. The policy is a model with an LM head and a
 * value head; the caller sets the KL coefficient β of every round.
 *
 * Shapes: R rollouts (prompts × n), padded length L, response positions masked by m `[R, L]`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { checkRewardScores, type BatchReward } from '@xyp/contracts';
import { forwardHidden, generateAsync, lmLogits, nativeScore, nativeScoreSharedPrompts, runStepLoop, StreamingScorer, tokenNll, valueHead, type GenerationStep, type LoopControl, type Model, type Sample, type Trainer } from '@xyp/engine';
import { nextSeed, shuffleInPlace } from '@xyp/random';
import { ppoAdvantages } from './advantages';
import { KL_ESTIMATORS } from './kl';
import { approxKlToOld, clippedPolicyTerms, clippedValueLoss, klTensor, maskedEntropy, maskedMean } from './losses';

export const PpoConfig = z.object({
  /** KL coefficient β of this round. */
  klCoef: z.number().nonnegative(),
  /** Per-token KL estimator of the reward penalty and the reported KL (`kl.ts`): k1 = log π − log π_ref, k3 = exp(d) − d − 1. */
  klEstimator: z.enum(KL_ESTIMATORS).default('k1'),
  gamma: z.number().min(0).max(1).default(1),
  lambda: z.number().min(0).max(1).default(0.95),
  clip: z.number().positive().default(0.2),
  valueClip: z.number().positive().default(0.2),
  valueCoef: z.number().nonnegative().default(0.5),
  epochs: z.number().int().positive().default(2),
  minibatches: z.number().int().positive().default(2),
  samplesPerPrompt: z.number().int().positive().default(4),
  temperature: z.number().positive().default(1),
  topP: z.number().positive().max(1).default(1),
  maxTokens: z.number().int().positive().default(16),
  eos: z.number().int().optional(),
});
export type PpoConfig = z.output<typeof PpoConfig>;
export type PpoConfigInput = z.input<typeof PpoConfig>;

/** A rollout to score: its prompt (index in the round's prompts, and tokens) and the sampled response tokens. */
export interface RolloutToScore {
  promptIndex: number;
  prompt: number[];
  response: number[];
}

/**
 * PPO's reward: asynchronous and batched (`BatchReward` of `@xyp/contracts`), one score per rollout of
 * a round, in order. A reward model in process (`textRewardScorer` of `@xyp/ufrm`) or behind
 * `RewardService.Score` (`rewardServiceScorer` of `@xyp/reward-serving`) scores texts; the caller that
 * holds the tokenizer turns rollouts into texts (`@xyp/local-engine` does).
 */
export type RewardFn = BatchReward<RolloutToScore>;

/** Cancel and reporting of a round: `signal` stops it within one decoding step or update. */
export type PpoRoundControl = Omit<LoopControl, 'stop'> & {
  /**
   * The KL bound, nats per response: when the rollouts' `meanKl` (the policy that sampled them
   * against the reference) is above it, the round makes no update and says so (`overKlBound`).
   */
  maxKl?: number;
  /**
   * Score the reference on a second thread while the policy samples (`StreamingScorer`, where the
   * addon has it) instead of in one pass after sampling (default). The same numbers to float rounding
   * either way (tested). Off by default: on the 2-vCPU machines this is built on it was ahead at the
   * bench's model size and behind at 4 layers of width 128, the worker slowing the sampling thread
   * (README, "PPO rollouts"); it is for machines with a core to spare while the policy samples on one.
   */
  streamReference?: boolean;
};

/** What one PPO update (one minibatch) measured, on the tensors of its loss (no second forward pass). */
export interface PpoUpdateLog {
  /** The update's index in the round, from 1. */
  update: number;
  /** The trainer's step after it. */
  step: number;
  policyLoss: number;
  valueLoss: number;
  /** Mean over the minibatch's response tokens of the KL estimate (`klEstimator`) between the current π and π_ref. */
  klMean: number;
  /** Mean over the response tokens of the current policy's token entropy (nats). */
  entropy: number;
  /** Share of response tokens on which the clipped policy term was taken (`clippedPolicyTerms`). */
  clipFraction: number;
  /** `mean_t (ρ_t − 1) − log ρ_t`: approximate KL(π_old ‖ π) over the response tokens. */
  approxKl: number;
  /** Gradient norm before clipping. */
  gradNorm: number;
}

/** Wall-clock seconds of the phases of a round (`performance.now()` around each). */
export interface PpoRoundTimings {
  /** Decoding the responses (`generateAsync`). */
  samplingSeconds: number;
  /**
   * The batched reward call, as far as the round waited for it: the call itself (an in-process
   * reward's synchronous part) and what was left of it once the reference pass, which runs while it
   * is pending, was done.
   */
  scoringSeconds: number;
  /** Packing, old/ref log-probabilities and values, rewards, GAE and whitening (the JS thread's own work). */
  experienceSeconds: number;
  /** The whole rollout phase: sampling + scoring + experience. */
  rolloutSeconds: number;
  /** The `epochs × minibatches` updates. */
  updateSeconds: number;
}

export interface PpoRoundResult {
  meanReward: number;
  /** Mean over rollouts of Σ_t KL_t (the configured estimator between π_old and π_ref), measured on the rollouts. */
  meanKl: number;
  /** Mean response length in tokens over the rollouts of the round. */
  meanResponseLength: number;
  /** Response tokens sampled in the round (Σ over rollouts). */
  responseTokens: number;
  /** Means over the updates of the per-update values in `steps`. */
  policyLoss: number;
  valueLoss: number;
  entropy: number;
  clipFraction: number;
  rollouts: number;
  steps: PpoUpdateLog[];
  timings: PpoRoundTimings;
  /** Set when `control.maxKl` was given and `meanKl` was above it: the round made no update (`steps` empty). */
  overKlBound?: true;
}

/** Packed rollouts: prompt·response rows of L tokens `[R·L]`. */
export interface PpoRollouts {
  ids: Int32Array;
  targets: Int32Array;
  /** 1 where the target is a response token `[R·L]`. */
  mask: Float32Array;
  batch: number;
  seq: number;
}

/** Sequences prompt·response, right-padded; position t predicts token t+1, counted when that token is part of the response. */
export function packRollouts(prompts: number[][], samples: { prompt: number; tokens: number[] }[]): PpoRollouts {
  const seqs = samples.map((s) => [...prompts[s.prompt], ...s.tokens]);
  const L = Math.max(...seqs.map((s) => s.length));
  const R = seqs.length;
  const ids = new Int32Array(R * L);
  const targets = new Int32Array(R * L);
  const mask = new Float32Array(R * L);
  seqs.forEach((s, b) => {
    const start = prompts[samples[b].prompt].length;
    for (let t = 0; t < L; t++) {
      ids[b * L + t] = t < s.length ? s[t] : 0;
      if (t + 1 < s.length) {
        targets[b * L + t] = s[t + 1];
        mask[b * L + t] = t + 1 >= start ? 1 : 0;
      }
    }
  });
  return { ids, targets, mask, batch: R, seq: L };
}

/**
 * Log-probabilities of the targets `[R·L]` and, with a value head, values `[R·L]` (value t from token
 * t's hidden state). Outside the gradient tape: on the native addon in one call (`nativeScore`) when it
 * serves this backend, else one TF.js forward pass.
 */
export function scoreRollouts(model: Model, r: PpoRollouts, withValues: boolean, only?: Float32Array): { logp: tf.Tensor1D; values?: tf.Tensor1D } {
  // With `only` (e.g. the response mask), the native pass skips the LM head elsewhere (target −1, logp 0).
  const targets = only ? r.targets.map((t, i) => (only[i] ? t : -1)) : r.targets;
  const native = nativeScore(model, { ids: r.ids, targets, batch: r.batch, seq: r.seq }, withValues);
  if (native) return { logp: tf.tensor1d(native.logp), values: native.values ? tf.tensor1d(native.values) : undefined };
  return scoreRolloutsTfjs(model, r, withValues);
}

/**
 * The log-probabilities of `scoreRollouts(model, r, false, only)`, scored in groups of rows of about the
 * same length, each group cut to its own longest row: packed rows are right-padded to the longest of the
 * whole batch, and a teacher-forced pass over the padding is work thrown away (rows of short prompts can
 * be mostly padding). Causal attention and positions counted from each row's start make a row's real
 * positions independent of what follows them, so the result is the same. `lengths[b]`: row b's real
 * tokens (prompt + response). A group takes rows, longest first, while each is at least `fill` of the
 * group's longest.
 */
export function scoreRolloutsByLength(model: Model, r: PpoRollouts, lengths: readonly number[], only?: Float32Array, fill = 0.9): Float32Array {
  const { batch: R, seq: L } = r;
  if (lengths.length !== R) throw new Error(`scoreRolloutsByLength: ${lengths.length} lengths for ${R} rows`);
  const out = new Float32Array(R * L);
  const order = Array.from({ length: R }, (_, b) => b).sort((a, b) => lengths[b] - lengths[a] || a - b);
  for (let start = 0; start < R; ) {
    const top = Math.max(1, lengths[order[start]]);
    let end = start + 1;
    while (end < R && lengths[order[end]] >= fill * top) end++;
    const rows = order.slice(start, end);
    const cut = (src: Int32Array | Float32Array, make: (n: number) => Int32Array | Float32Array) => {
      const dst = make(rows.length * top);
      rows.forEach((row, j) => dst.set(src.subarray(row * L, row * L + top), j * top));
      return dst;
    };
    const group: PpoRollouts = {
      ids: cut(r.ids, (n) => new Int32Array(n)) as Int32Array,
      targets: cut(r.targets, (n) => new Int32Array(n)) as Int32Array,
      mask: cut(r.mask, (n) => new Float32Array(n)) as Float32Array,
      batch: rows.length,
      seq: top,
    };
    const groupOnly = only ? (cut(only, (n) => new Float32Array(n)) as Float32Array) : undefined;
    const logp = tf.tidy(() => scoreRollouts(model, group, false, groupOnly).logp.dataSync() as Float32Array);
    rows.forEach((row, j) => out.set(logp.subarray(j * top, (j + 1) * top), row * L));
    start = end;
  }
  return out;
}

/**
 * The frozen reference's log-probabilities of the response tokens in the packed layout `[R·L]` of
 * `packRollouts(prompts, samples)` (position t of row b holds that of token t + 1; 0 outside the
 * response), as `ppoRound` uses them. On the native addon each prompt is computed once for its n
 * samples (`nativeScoreSharedPrompts`: one prefill per distinct prompt, its KV cache copied into the
 * rows of its samples, which score only their own tokens); without it, `scoreRolloutsByLength`. The
 * same numbers either way, to float rounding (tested).
 */
export function referenceLogProbs(model: Model, prompts: number[][], samples: readonly { prompt: number; tokens: number[] }[], r: PpoRollouts): Float32Array {
  const shared = nativeScoreSharedPrompts(model, prompts, samples);
  if (!shared) return scoreRolloutsByLength(model, r, samples.map((s) => prompts[s.prompt].length + s.tokens.length), r.mask);
  const out = new Float32Array(r.batch * r.seq);
  // Response token j sits at prompt length + j and is predicted at the position before it.
  shared.forEach((logp, b) => out.set(logp, b * r.seq + prompts[samples[b].prompt].length - 1));
  return out;
}

/**
 * The streamed reference log-probabilities (`StreamingScorer.finish`, one array per sampler row) in
 * the packed layout of `referenceLogProbs`, for the rows kept (`kept[b]`: sample b's sampler row).
 */
export function packReference(rows: readonly Float32Array[], kept: readonly number[], prompts: number[][], samples: readonly { prompt: number; tokens: number[] }[], r: PpoRollouts): Float32Array {
  const out = new Float32Array(r.batch * r.seq);
  samples.forEach((s, b) => {
    const logp = rows[kept[b]];
    if (logp?.length !== s.tokens.length) throw new Error(`the reference scored ${logp?.length ?? 0} tokens of rollout ${b}, which has ${s.tokens.length}`);
    out.set(logp, b * r.seq + prompts[s.prompt].length - 1);
  });
  return out;
}

/** `scoreRollouts` on TF.js kernels (the fallback, and the reference the native path is tested against). */
export function scoreRolloutsTfjs(model: Model, r: PpoRollouts, withValues: boolean): { logp: tf.Tensor1D; values?: tf.Tensor1D } {
  const hidden = forwardHidden(model, { ids: r.ids, batch: r.batch, seq: r.seq });
  const logp = tf.neg(tokenNll(lmLogits(model, hidden), tf.tensor1d(r.targets, 'int32')));
  return { logp, values: withValues ? valueHead(model, hidden) : undefined };
}

/**
 * The old policy's log-probabilities and values in the packed layout `[R·L]` (position t of row b holds
 * those of the token at t + 1), from what the sampler returned with each token (`logprobs`, `values`);
 * 0 outside the response.
 */
export function sampledExperience(prompts: number[][], samples: Sample[], r: PpoRollouts): { oldLogp: Float32Array; oldValues: Float32Array } {
  const oldLogp = new Float32Array(r.batch * r.seq);
  const oldValues = new Float32Array(r.batch * r.seq);
  samples.forEach((s, b) => {
    const n = s.tokens.length;
    if (s.logprobs?.length !== n || s.values?.length !== n) throw new Error(`rollout ${b} came without a log-probability and a value per token`);
    const at = b * r.seq + prompts[s.prompt].length - 1;
    oldLogp.set(s.logprobs, at);
    oldValues.set(s.values, at);
  });
  return { oldLogp, oldValues };
}

/** A minibatch of rollouts with what the rollout pass measured at the old policy, all `[R·L]`. */
export interface PpoMinibatch extends PpoRollouts {
  oldLogp: Float32Array;
  /** Log-probabilities of the frozen reference (for the per-update KL; the loss does not read it). */
  refLogp: Float32Array;
  oldValues: Float32Array;
  advantages: Float32Array;
  returns: Float32Array;
}

/** The terms and statistics of `ppoLoss`. */
export interface PpoLossTerms {
  loss: tf.Scalar;
  policyLoss: tf.Scalar;
  valueLoss: tf.Scalar;
  /** Mean token entropy over the response tokens (not part of the loss). */
  entropy: tf.Scalar;
  clipFraction: tf.Scalar;
  /** Approximate KL(π_old ‖ π), `approxKlToOld`. */
  approxKl: tf.Scalar;
  /** Mean per-token KL estimate between the current π and π_ref. */
  klMean: tf.Scalar;
}

/**
 * The PPO objective of one minibatch at the current policy (formulas in `losses.ts`):
 * `loss = policyLoss + c_v · valueLoss`, both means over the response tokens. The statistics
 * (entropy, clip fraction, approximate KL to π_old, KL to π_ref) are read off the same forward pass:
 * the logits, log-probabilities and ratios of the loss.
 */
export function ppoLoss(policy: Model, mb: PpoMinibatch, c: Pick<PpoConfig, 'clip' | 'valueClip' | 'valueCoef'> & { klEstimator?: PpoConfig['klEstimator'] }): PpoLossTerms {
  const hidden = forwardHidden(policy, { ids: mb.ids, batch: mb.batch, seq: mb.seq });
  const logits = lmLogits(policy, hidden);
  const logp = tf.neg(tokenNll(logits, tf.tensor1d(mb.targets, 'int32'))) as tf.Tensor1D;
  const values = valueHead(policy, hidden);
  const pg = clippedPolicyTerms(logp, mb.oldLogp, mb.advantages, mb.mask, c.clip);
  const vLoss = clippedValueLoss(values, mb.oldValues, mb.returns, mb.mask, c.valueClip);
  return {
    loss: tf.add(pg.loss, tf.mul(vLoss, c.valueCoef)) as tf.Scalar,
    policyLoss: pg.loss,
    valueLoss: vLoss,
    entropy: maskedEntropy(logits, mb.mask),
    clipFraction: pg.clipFraction,
    approxKl: approxKlToOld(pg.ratio, pg.logRatio, mb.mask),
    klMean: maskedMean(klTensor(c.klEstimator ?? 'k1', logp, mb.refLogp), mb.mask),
  };
}

/**
 * One PPO round:
 *  1. sample `samplesPerPrompt` responses per prompt (temperature, top-p) and score them with `reward`,
 *     one batched call for the round;
 *  2. per-token reward `r_t = −β·KL_t` (`klEstimator`: k1 = log π_old − log π_ref, or k3 = exp(d) − d − 1
 *     with d = log π_ref − log π_old), plus the score on the last token;
 *  3. GAE: `δ_t = r_t + γV_{t+1} − V_t`, `A_t = δ_t + γλA_{t+1}`, returns `G_t = A_t + V_t`; A whitened
 *     (steps 2-3: `ppoAdvantages`);
 *     With `control.maxKl`, a round whose rollouts' mean KL per response is above it stops here
 *     (no update; `overKlBound` in the result);
 *  4. `epochs` passes over `minibatches` minibatches of (`ppoLoss`)
 *     `L = mean_t max(−A_t ρ_t, −A_t clip(ρ_t, 1±ε)) + c_v · ½ mean_t max((V_t − G_t)², (V_old,t + clip(V_t − V_old,t, ±ε_v) − G_t)²)`
 *     with `ρ_t = exp(log π(y_t) − log π_old(y_t))`, means over response tokens.
 *
 * Asynchronous and step-wise: sampling serves the event loop after every decoding step, the reward is
 * awaited, and the updates run on `runStepLoop` (progress after every update). An aborted `signal`
 * stops the round within one decoding step, the reward call, or one update, rejecting with its reason.
 *
 * The result carries one `PpoUpdateLog` per update (`steps`), round means, and the wall-clock
 * seconds of each phase (`timings`).
 */
export async function ppoRound(
  trainer: Trainer,
  reference: Model,
  prompts: number[][],
  reward: RewardFn,
  configInput: PpoConfigInput,
  control: PpoRoundControl = {},
): Promise<PpoRoundResult> {
  const c = PpoConfig.parse(configInput);
  const policy = trainer.model;
  const { signal } = control;
  const t0 = performance.now();
  // The sampler hands back the old policy's log-probabilities and values of the tokens it samples (its
  // forward passes compute them). With `streamReference` the reference scores them on another thread
  // while they are sampled; else in one pass after sampling.
  const rowPrompts = prompts.flatMap((_, i) => Array.from({ length: c.samplesPerPrompt }, () => i));
  const longestPrompt = Math.max(...prompts.map((p) => p.length));
  const streaming = control.streamReference !== true ? undefined : StreamingScorer.open(reference, prompts, rowPrompts, Math.max(0, Math.min(c.maxTokens, reference.config.contextLength - longestPrompt)));
  let sampled: Sample[];
  try {
    sampled = await generateAsync(policy, prompts, {
      n: c.samplesPerPrompt,
      temperature: c.temperature,
      topP: c.topP,
      maxTokens: c.maxTokens,
      eos: c.eos,
      seed: nextSeed(trainer.rng),
      logprobs: true,
      values: true,
      signal,
      ...(streaming ? { onStep: (step: GenerationStep) => streaming.push(step) } : {}),
    });
  } catch (error) {
    streaming?.abandon();
    throw error;
  }
  const kept = sampled.flatMap((s, row) => (s.tokens.length > 0 ? [row] : []));
  const samples = kept.map((row) => sampled[row]);
  if (samples.length === 0) {
    streaming?.abandon();
    throw new Error('every rollout was empty');
  }
  const t1 = performance.now();
  const toScore = samples.map((s) => ({ promptIndex: s.prompt, prompt: prompts[s.prompt], response: s.tokens }));
  // The reward call goes out first and the reference pass (which needs no reward) runs while it is
  // pending: behind a reward service's latency it costs nothing. One turn of the event loop lets
  // the request leave before the pass holds the thread.
  const pendingScores = reward(toScore, { signal });
  pendingScores.catch(() => undefined);
  await new Promise<void>((resolve) => setImmediate(resolve));
  const t1b = performance.now();
  const r = packRollouts(prompts, samples);
  const { batch: R, seq: L, mask } = r;
  const { oldLogp, oldValues } = sampledExperience(prompts, samples, r);
  // Only the response positions are read (the KL is masked), so the reference's LM head runs only there;
  // each prompt's positions are computed once for its samples (natively; else each row over its own length).
  const refLogp = streaming ? packReference(await streaming.finish(), kept, prompts, samples, r) : referenceLogProbs(reference, prompts, samples, r);
  const t2 = performance.now();
  const scores = checkRewardScores(await pendingScores, toScore.length, 'PPO reward');
  signal?.throwIfAborted();
  const t2b = performance.now();
  const { advantages, returns, klSum } = ppoAdvantages({ oldLogp, refLogp, oldValues, mask, scores, batch: R, seq: L }, c);
  const t3 = performance.now();
  const overKlBound = control.maxKl !== undefined && klSum / R > control.maxKl;

  const steps: PpoUpdateLog[] = [];
  const order = Array.from({ length: R }, (_, i) => i);
  const size = Math.ceil(R / c.minibatches);
  const perEpoch = Math.ceil(R / size);
  // Every update of the round reports the mean reward of the rollouts it learns from.
  const meanReward = scores.reduce((a, b) => a + b, 0) / scores.length;
  const onProgress = control.onProgress;
  const reporting: PpoRoundControl = onProgress ? { ...control, onProgress: (p) => onProgress({ ...p, meanReward }) } : control;
  const updates = await runStepLoop(overKlBound ? 0 : c.epochs * perEpoch, reporting, trainer.step, (index) => {
    if (index % perEpoch === 0) shuffleInPlace(order, trainer.rng);
    const start = (index % perEpoch) * size;
    const rows = order.slice(start, start + size);
    const take = <T extends Float32Array | Int32Array>(src: T, make: (n: number) => T): T => {
      const out = make(rows.length * L);
      rows.forEach((row, i) => out.set(src.subarray(row * L, (row + 1) * L), i * L));
      return out;
    };
    const mb: PpoMinibatch = {
      ids: take(r.ids, (n) => new Int32Array(n)),
      targets: take(r.targets, (n) => new Int32Array(n)),
      mask: take(mask, (n) => new Float32Array(n)),
      batch: rows.length,
      seq: L,
      oldLogp: take(oldLogp, (n) => new Float32Array(n)),
      refLogp: take(refLogp, (n) => new Float32Array(n)),
      oldValues: take(oldValues, (n) => new Float32Array(n)),
      advantages: take(advantages, (n) => new Float32Array(n)),
      returns: take(returns, (n) => new Float32Array(n)),
    };
    let stats: Float32Array | undefined;
    const result = trainer.trainStep(() => {
      const terms = ppoLoss(policy, mb, c);
      // One read for every statistic of the update.
      stats = tf.stack([terms.policyLoss, terms.valueLoss, terms.klMean, terms.entropy, terms.clipFraction, terms.approxKl]).dataSync() as Float32Array;
      return terms.loss;
    });
    const [policyLoss, valueLoss, klMean, entropy, clipFraction, approxKl] = stats as Float32Array;
    steps.push({ update: index + 1, step: result.step, policyLoss, valueLoss, klMean, entropy, clipFraction, approxKl, gradNorm: result.gradNorm });
    return { result, tokens: rows.length * L };
  });
  const t4 = performance.now();
  const mean = (key: keyof PpoUpdateLog): number => steps.reduce((a, s) => a + s[key], 0) / Math.max(1, updates.length);
  const responseTokens = samples.reduce((a, s) => a + s.tokens.length, 0);
  return {
    meanReward,
    meanKl: klSum / R,
    meanResponseLength: responseTokens / R,
    responseTokens,
    policyLoss: mean('policyLoss'),
    valueLoss: mean('valueLoss'),
    entropy: mean('entropy'),
    clipFraction: mean('clipFraction'),
    rollouts: R,
    steps,
    timings: {
      samplingSeconds: (t1 - t0) / 1000,
      scoringSeconds: (t1b - t1 + (t2b - t2)) / 1000,
      experienceSeconds: (t2 - t1b + (t3 - t2b)) / 1000,
      rolloutSeconds: (t3 - t0) / 1000,
      updateSeconds: (t4 - t3) / 1000,
    },
    ...(overKlBound ? { overKlBound: true as const } : {}),
  };
}
