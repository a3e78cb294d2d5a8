/**
 * The judge that works on one machine: which of two responses is closer to the reference answer
 * the sample carries, by character-bigram F1 (works for Chinese text, needs no model). It is
 * independent of the training reward model, so the PPO-gain axis of the PEI grid does not echo
 * UFRM. Shown the pair in both orders like an LLM judge (`combineOrders`); being symmetric it never
 * flips, so its inconsistencies are 0 by construction — the report names the judge.
 */

/** Multiset of the character bigrams of a text (whitespace collapsed; a one-character text is its own unigram). */
function bigrams(text: string): Map<string, number> {
  const chars = [...text.replace(/\s+/g, ' ').trim()];
  const out = new Map<string, number>();
  if (chars.length === 1) out.set(chars[0], 1);
  for (let i = 0; i + 1 < chars.length; i++) {
    const g = chars[i] + chars[i + 1];
    out.set(g, (out.get(g) ?? 0) + 1);
  }
  return out;
}

/** F1 of the character-bigram overlap of `response` with `reference` (0 when either is empty). */
export function bigramF1(response: string, reference: string): number {
  const a = bigrams(response);
  const b = bigrams(reference);
  let overlap = 0;
  let na = 0;
  let nb = 0;
  for (const n of a.values()) na += n;
  for (const n of b.values()) nb += n;
  for (const [g, n] of a) overlap += Math.min(n, b.get(g) ?? 0);
  if (na === 0 || nb === 0 || overlap === 0) return 0;
  const precision = overlap / na;
  const recall = overlap / nb;
  return (2 * precision * recall) / (precision + recall);
}

export type OrderVerdict = 'first' | 'second' | 'tie';

/** The verdict for the pair shown in this order: the response clearly closer to the reference, else a tie (|ΔF1| ≤ margin). */
export function referenceVerdict(first: string, second: string, reference: string, margin: number): OrderVerdict {
  const d = bigramF1(first, reference) - bigramF1(second, reference);
  return d > margin ? 'first' : d < -margin ? 'second' : 'tie';
}
