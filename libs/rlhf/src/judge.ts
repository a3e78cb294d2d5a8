import { RlhfInputError, show } from './errors';

/**
 * Pairwise judging, MT-Bench style (Zheng et al., "Judging LLM-as-a-Judge with MT-Bench and
 * Chatbot Arena", NeurIPS 2023, §3.4 position bias and its "swap positions" remedy): every
 * prompt is judged twice, the candidate (policy) answer shown first (`ab`) and then second
 * (`ba`). From the candidate's side:
 *
 *   ab: 'first' → win, 'second' → loss, 'tie' → tie
 *   ba: 'second' → win, 'first' → loss, 'tie' → tie
 *
 *   win + win  → win          loss + loss → loss          tie + tie → tie
 *   win + loss → tie (the verdict flips with the order: position bias, not preference)
 *   win + tie, loss + tie → tie (MT-Bench: a verdict that is not the same in both orders counts as a
 *   tie — only a consistent preference is a win or a loss)
 *   any null (the judge's answer was unparsable after one retry) → skip, never a verdict.
 */

export type JudgeVerdict = 'first' | 'second' | 'tie';
export type PairOutcome = 'win' | 'tie' | 'loss' | 'skip';

export interface CombinedVerdict {
  outcome: PairOutcome;
  /** Both orders gave the same candidate-side verdict. False for skips. */
  consistent: boolean;
  reason: string;
}

const VERDICTS: readonly (JudgeVerdict | null)[] = ['first', 'second', 'tie', null];

function side(v: JudgeVerdict, candidateFirst: boolean): 'win' | 'loss' | 'tie' {
  if (v === 'tie') return 'tie';
  return (v === 'first') === candidateFirst ? 'win' : 'loss';
}

/** One candidate-vs-reference outcome from the two orders; see the module comment. */
export function combineOrders(ab: JudgeVerdict | null, ba: JudgeVerdict | null): CombinedVerdict {
  if (!VERDICTS.includes(ab)) throw new RlhfInputError(`ab: verdict must be 'first', 'second', 'tie' or null, got ${show(ab)}`, 'ab');
  if (!VERDICTS.includes(ba)) throw new RlhfInputError(`ba: verdict must be 'first', 'second', 'tie' or null, got ${show(ba)}`, 'ba');
  if (ab === null || ba === null) {
    const which = ab === null && ba === null ? 'both orders' : ab === null ? 'the candidate-first order (ab)' : 'the candidate-second order (ba)';
    return { outcome: 'skip', consistent: false, reason: `skip: the judge's answer for ${which} was unparsable after a retry` };
  }
  const first = side(ab, true);
  const second = side(ba, false);
  if (first === second) return { outcome: first, consistent: true, reason: `${first}: the same verdict in both orders (ab ${ab}, ba ${ba})` };
  return { outcome: 'tie', consistent: false, reason: `tie: the verdict changes with the order (candidate first: ${first}, candidate second: ${second}); inconsistent counts as a tie` };
}

export interface WinTieLoss {
  win: number;
  tie: number;
  loss: number;
  skip: number;
  /** Judged pairs: win + tie + loss (skips excluded). */
  n: number;
  /** (win − loss) / n; null when n = 0. */
  netWinRate: number | null;
}

export interface WinTieLossSummary {
  overall: WinTieLoss;
  bySubdomain: Record<string, WinTieLoss>;
}

export interface SubdomainOutcome {
  subdomain: string;
  outcome: PairOutcome;
}

function tally(outcomes: readonly PairOutcome[]): WinTieLoss {
  const c = { win: 0, tie: 0, loss: 0, skip: 0 };
  for (const o of outcomes) c[o] += 1;
  const n = c.win + c.tie + c.loss;
  return { ...c, n, netWinRate: n === 0 ? null : (c.win - c.loss) / n };
}

/** Win / tie / loss / skip counts and the net win rate, per subdomain and overall. */
export function winTieLoss(verdicts: readonly SubdomainOutcome[]): WinTieLossSummary {
  if (!Array.isArray(verdicts)) throw new RlhfInputError(`verdicts: must be an array, got ${show(verdicts)}`, 'verdicts');
  const groups = new Map<string, PairOutcome[]>();
  verdicts.forEach((v, i) => {
    if (!v || typeof v.subdomain !== 'string' || v.subdomain.length === 0) throw new RlhfInputError(`verdicts[${i}].subdomain: must be a non-empty string, got ${show(v?.subdomain)}`, `verdicts[${i}].subdomain`);
    if (!['win', 'tie', 'loss', 'skip'].includes(v.outcome)) throw new RlhfInputError(`verdicts[${i}].outcome: must be win, tie, loss or skip, got ${show(v.outcome)}`, `verdicts[${i}].outcome`);
    const g = groups.get(v.subdomain);
    if (g) g.push(v.outcome);
    else groups.set(v.subdomain, [v.outcome]);
  });
  const sorted = [...groups].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return { overall: tally(verdicts.map((v) => v.outcome)), bySubdomain: Object.fromEntries(sorted.map(([s, g]) => [s, tally(g)])) };
}

const TOKENS: Record<string, JudgeVerdict> = { '[[A]]': 'first', '[[B]]': 'second', '[[C]]': 'tie' };

/**
 * An LLM judge's verdict in MT-Bench's pairwise format: `[[A]]` (the first answer is better),
 * `[[B]]` (the second), `[[C]]` (a tie), matched exactly (upper case, no spaces inside). The text
 * must contain exactly one distinct token (it may repeat); none, or two different ones (e.g. a
 * judge that quotes the instructions), → null. MT-Bench itself takes the first of A, B, C that
 * occurs, which reads "[[A]] or [[B]]" as A; this is stricter.
 */
export function parseJudgeVerdict(text: string): JudgeVerdict | null {
  if (typeof text !== 'string') return null;
  const found = new Set<JudgeVerdict>();
  for (const m of text.matchAll(/\[\[[ABC]\]\]/g)) found.add(TOKENS[m[0]]);
  return found.size === 1 ? [...found][0] : null;
}
