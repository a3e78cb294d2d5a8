/**
 * The normal form preference pairs are compared in: record ids, exact duplicates, near-duplicate
 * shingles and the train/test split all read the same normalized text, so two lines that differ
 * only in Unicode form, spacing or case are one pair everywhere.
 */
import { createHash } from 'node:crypto';
import type { ChatTurn } from '@xyp/contracts';

/** NFKC, every whitespace run to one space, trimmed, lower-cased. */
export function normalizeText(text: string): string {
  return text.normalize('NFKC').replace(/\s+/g, ' ').trim().toLowerCase();
}

/** The normalized prompt, every turn with its role (`user: …\nassistant: …`): the split key. */
export function promptKey(prompt: readonly ChatTurn[]): string {
  return prompt.map((turn) => `${turn.role}: ${normalizeText(turn.content)}`).join('\n');
}

/** The normalized concatenation of prompt, chosen and rejected: what duplicates are judged on. */
export function pairText(prompt: readonly ChatTurn[], chosen: string, rejected: string): string {
  return `${promptKey(prompt)}\nchosen: ${normalizeText(chosen)}\nrejected: ${normalizeText(rejected)}`;
}

/** sha256 (hex, first 16 characters) of a pair's normalized text: the derived record id and the exact-duplicate key. */
export function pairDigest(normalizedPairText: string): string {
  return createHash('sha256').update(normalizedPairText).digest('hex').slice(0, 16);
}
