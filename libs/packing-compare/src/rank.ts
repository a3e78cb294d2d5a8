import type { ResultOf } from '@xyp/contracts';

export type PackingCriterion = ResultOf<'corpus.compare'>['criterion'];

/** One packing of the corpus: the instance that made it and its committed corpus.bucket result. */
export interface Packing {
  instance: string;
  result: Pick<ResultOf<'corpus.bucket'>, 'strategy' | 'tokens' | 'paddingRatio' | 'truncationRatio' | 'concatRatio'>;
}

/**
 * Ranks packings of one corpus by what they waste (arXiv 2407.07495's metrics): `waste` is the
 * padding ratio plus the truncation ratio (tokens spent on nothing plus documents cut), or either
 * alone. Ties go to the lower concatenation ratio (fewer documents sharing a sequence), then to
 * the order given. Pure: the same packings give the same ranking.
 */
export function rankPackings(packings: readonly Packing[], criterion: PackingCriterion): ResultOf<'corpus.compare'> {
  const score = (p: Packing) =>
    criterion === 'padding' ? p.result.paddingRatio : criterion === 'truncation' ? p.result.truncationRatio : p.result.paddingRatio + p.result.truncationRatio;
  const ranking = packings
    .map((p, order) => ({ p, order, score: score(p) }))
    .sort((a, b) => a.score - b.score || a.p.result.concatRatio - b.p.result.concatRatio || a.order - b.order)
    .map(({ p, score: s }) => ({
      instance: p.instance,
      strategy: p.result.strategy,
      tokens: p.result.tokens,
      paddingRatio: p.result.paddingRatio,
      truncationRatio: p.result.truncationRatio,
      concatRatio: p.result.concatRatio,
      score: s,
    }));
  return { criterion, best: ranking[0]?.instance ?? '', ranking };
}
