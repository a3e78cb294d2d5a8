/**
 * When a mixture has settled: the stop rule of a loop of mixture stages (CPT stages, SFT epochs).
 * The largest move of any category's weight in one decision is compared with a threshold ε: below
 * it, another stage would change the mixture by less than ε, so the loop may stop.
 */

/** One category's weight before and after a decision (`oldWeight` null: the category is new). */
export interface WeightMove {
  category: string;
  oldWeight: number | null;
  newWeight: number;
}

export interface SettleVerdict {
  /** max |new − old| over the categories (a new category moves by its whole weight). */
  maxChange: number;
  /** The category that moved most; empty when there are none. */
  category: string;
  continue: boolean;
  reason: string;
}

/**
 * Continue while some weight moved by `stopBelow` or more; stop once every move is smaller.
 * Without `stopBelow` there is no stop rule: always continue (the loop's round limit ends it).
 */
export function mixtureSettled(moves: readonly WeightMove[], stopBelow?: number): SettleVerdict {
  let maxChange = 0;
  let category = '';
  for (const move of moves) {
    const change = Math.abs(move.newWeight - (move.oldWeight ?? 0));
    if (change > maxChange || category === '') {
      maxChange = change;
      category = move.category;
    }
  }
  const moved = category ? `largest weight change ${maxChange.toFixed(4)} (${category})` : 'no categories';
  if (stopBelow === undefined) return { maxChange, category, continue: true, reason: `${moved}; no stop rule (stop_below not set)` };
  return maxChange < stopBelow
    ? { maxChange, category, continue: false, reason: `${moved} < ${stopBelow}: the mixture has settled` }
    : { maxChange, category, continue: true, reason: `${moved} >= ${stopBelow}: the mixture still moves` };
}
