/**
 * The reward function interface: asynchronous and batched. A batch of items goes in, a promise of one
 * finite score per item, in order, comes out. The same shape is implemented in process (a reward model
 * scoring on the engine, `@xyp/ufrm`'s `textRewardScorer`) and over gRPC (`RewardService.Score`,
 * `@xyp/reward-serving`'s `rewardServiceScorer`), and PPO (`@xyp/ppo`'s `ppoRound`) takes one whose
 * items are its rollouts' tokens.
 */

export interface RewardCallOptions {
  /** Aborts the call: the promise rejects with the signal's reason, and a remote call is cancelled. */
  signal?: AbortSignal;
}

/** `(batch) => Promise<number[]>`: one score per item, in order. */
export type BatchReward<Item> = (batch: readonly Item[], options?: RewardCallOptions) => Promise<number[]>;

/** What `RewardService.Score` scores: a prompt and a response as text (the proto's `ScoreItem`). */
export interface TextRewardItem {
  prompt: string;
  response: string;
  /** Subdomain of the prompt (e.g. `finance-compliance`), for per-category metrics; not scored. */
  category?: string;
}

/** A reward function over texts, in process or behind `RewardService.Score`. */
export type TextReward = BatchReward<TextRewardItem>;

/**
 * The scores of a batch of `count` items, checked: one finite number per item. A reward function
 * that returns fewer, more or non-finite scores fails here with a message naming `who`.
 */
export function checkRewardScores(scores: unknown, count: number, who: string): number[] {
  if (!Array.isArray(scores)) throw new Error(`${who}: expected an array of ${count} scores, got ${typeof scores}`);
  if (scores.length !== count) throw new Error(`${who}: returned ${scores.length} scores for a batch of ${count}`);
  scores.forEach((s, i) => {
    if (typeof s !== 'number' || !Number.isFinite(s)) throw new Error(`${who}: score ${i} is not a finite number (${String(s)})`);
  });
  return scores as number[];
}
