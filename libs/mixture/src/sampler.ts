import { MixtureInputError } from './errors';
import { parseWeights, validateDocumentIndex } from './parse';
import { createRng, deriveSeed, shuffleInPlace } from '@xyp/random';
import type { IndexedDocument, Weights } from './schemas';

/**
 * Splits an integer token budget T by weights with the largest-remainder (Hamilton)
 * method: quota q_c = T · w_c / Σw, every category gets ⌊q_c⌋, and the T − Σ⌊q_c⌋ tokens
 * left go one each to the largest fractional parts q_c − ⌊q_c⌋ (ties: larger weight, then
 * category name). The budgets are integers that sum to exactly T.
 * @throws MixtureInputError on bad weights or a T that is not a non-negative safe integer.
 */
export function allocateTokens(weights: Weights, totalTokens: number): Record<string, number> {
  if (!Number.isSafeInteger(totalTokens) || totalTokens < 0) {
    throw new MixtureInputError(`totalTokens must be a non-negative safe integer, got ${totalTokens}`);
  }
  const valid = parseWeights(weights);
  const categories = Object.keys(valid);
  const sum = categories.reduce((a, c) => a + valid[c], 0);
  const rows = categories.map((category) => {
    const quota = (valid[category] / sum) * totalTokens;
    const base = Math.min(Math.floor(quota), totalTokens);
    return { category, weight: valid[category], base, fraction: quota - base };
  });
  let left = totalTokens - rows.reduce((a, r) => a + r.base, 0);
  const byRemainder = [...rows].sort(
    (a, b) => b.fraction - a.fraction || b.weight - a.weight || (a.category < b.category ? -1 : a.category > b.category ? 1 : 0),
  );
  // left > 0 normally; rounding of the quotas can make it slightly negative, taken back from the smallest remainders.
  for (let i = 0; left > 0; i = (i + 1) % byRemainder.length, left -= 1) byRemainder[i].base += 1;
  for (let i = byRemainder.length - 1; left < 0; i = (i - 1 + byRemainder.length) % byRemainder.length) {
    if (byRemainder[i].base > 0) {
      byRemainder[i].base -= 1;
      left += 1;
    }
  }
  return Object.fromEntries(rows.map((r) => [r.category, r.base]));
}

/** One draw of the plan, in training order. */
export interface PlanEntry {
  bucket: number;
  docIndex: number;
  category: string;
  /** Tokens this draw contributes (less than the document's when it was truncated). */
  tokens: number;
  /** Pass over the category's documents this draw belongs to: 0 = first, ≥ 1 = repeat. */
  epoch: number;
  /** Only the first `tokens` tokens of the document are used (`truncateLast`). */
  truncated?: true;
}

export interface CategoryPlan {
  weight: number;
  budget: number;
  achieved: number;
  /** achieved − budget (≥ 0; 0 with `truncateLast`). */
  overshoot: number;
  draws: number;
  availableDocuments: number;
  availableTokens: number;
  /** Passes over the category's documents started (1 = no repeats). */
  passes: number;
  /** The budget exceeded the available tokens: documents repeat. */
  upsampled: boolean;
}

export interface SamplingPlan {
  seed: number;
  totalTokens: number;
  achievedTokens: number;
  order: PlanEntry[];
  categories: Record<string, CategoryPlan>;
  /** Categories whose documents repeat (passes > 1), sorted. */
  upsampled: string[];
}

export interface SamplingOptions {
  /** Token budget of the whole plan. */
  totalTokens: number;
  /** Any safe integer; the same seed gives the same plan. */
  seed: number;
  /** Cut the last document of a category so its achieved tokens equal its budget exactly. */
  truncateLast?: boolean;
}

/**
 * Turns weights and a token budget into an ordered document plan.
 *
 * 1. Budgets per category by {@link allocateTokens} (they sum to totalTokens exactly).
 * 2. Each category draws from its documents (sorted by bucket, docIndex, so the order of
 *    the index does not matter) in a Fisher–Yates order seeded by (seed, category): without
 *    replacement until its budget is met (achieved ≥ budget), and when its documents run
 *    out, a fresh shuffled pass — documents repeat, the category is flagged `upsampled`.
 *    A category's draws depend only on the seed, its own documents and its own budget.
 * 3. All draws are interleaved by one more seeded shuffle, so categories and buckets mix.
 *
 * @throws MixtureInputError on a bad index entry, a duplicate (bucket, docIndex), or a
 *   category with a positive budget and no documents.
 */
export function planSampling(index: readonly IndexedDocument[], weights: Weights, options: SamplingOptions): SamplingPlan {
  const { totalTokens, seed, truncateLast = false } = options;
  if (!Number.isSafeInteger(seed)) throw new MixtureInputError(`seed must be a safe integer, got ${seed}`);
  const documents = validateDocumentIndex(index);
  const valid = parseWeights(weights);
  const sum = Object.values(valid).reduce((a, b) => a + b, 0);
  const budgets = allocateTokens(valid, totalTokens);

  const byCategory = new Map<string, IndexedDocument[]>();
  const seen = new Set<string>();
  documents.forEach((doc, i) => {
    const key = `${doc.bucket}:${doc.docIndex}`;
    if (seen.has(key)) {
      throw new MixtureInputError(`index:entry ${i + 1}: duplicate document (bucket ${doc.bucket}, docIndex ${doc.docIndex})`, 'index', i + 1, doc.category);
    }
    seen.add(key);
    const group = byCategory.get(doc.category);
    if (group) group.push(doc);
    else byCategory.set(doc.category, [doc]);
  });

  const draws: PlanEntry[] = [];
  const categories: Record<string, CategoryPlan> = {};
  for (const [category, budget] of Object.entries(budgets)) {
    const docs = [...(byCategory.get(category) ?? [])].sort((a, b) => a.bucket - b.bucket || a.docIndex - b.docIndex);
    const availableTokens = docs.reduce((a, d) => a + d.tokens, 0);
    if (budget > 0 && docs.length === 0) {
      throw new MixtureInputError(`category "${category}" has a budget of ${budget} tokens but no documents in the index`, 'index', undefined, category);
    }
    const rng = createRng(deriveSeed(seed, `category:${category}`));
    let achieved = 0;
    let count = 0;
    let passes = 0;
    while (achieved < budget) {
      const pass = shuffleInPlace([...docs], rng);
      passes += 1;
      for (const doc of pass) {
        if (achieved >= budget) break;
        const remaining = budget - achieved;
        const cut = truncateLast && doc.tokens > remaining;
        const tokens = cut ? remaining : doc.tokens;
        const entry: PlanEntry = { bucket: doc.bucket, docIndex: doc.docIndex, category, tokens, epoch: passes - 1 };
        if (cut) entry.truncated = true;
        draws.push(entry);
        achieved += tokens;
        count += 1;
      }
    }
    categories[category] = {
      weight: valid[category] / sum,
      budget,
      achieved,
      overshoot: achieved - budget,
      draws: count,
      availableDocuments: docs.length,
      availableTokens,
      passes,
      upsampled: passes > 1,
    };
  }
  const order = shuffleInPlace(draws, createRng(deriveSeed(seed, 'interleave')));
  return {
    seed,
    totalTokens,
    achievedTokens: Object.values(categories).reduce((a, c) => a + c.achieved, 0),
    order,
    categories,
    upsampled: Object.keys(categories)
      .filter((c) => categories[c].upsampled)
      .sort(),
  };
}
