/**
 * Why a preference line was not accepted. Every reject names the input, its 1-based line, a reason
 * code and a message that starts with the field at fault, so a rejects file can be grepped by
 * reason and fixed line by line.
 */
import { z } from 'zod';

export const REJECT_REASONS = [
  /** The line is not JSON. */
  'invalid-json',
  /** A required field (`chosen`, `rejected`, or `prompt` for plain-text responses) is absent. */
  'missing-field',
  /** A field has the wrong type: the line is not an object, `chosen` is a number, a message lacks `role`, … */
  'invalid-type',
  /** `chosen` or `rejected` is empty (or only whitespace). */
  'empty-response',
  /** `chosen` and `rejected` are the same text once normalized: the pair carries no preference. */
  'identical-responses',
  /** The prompt is empty, or the two dialogues (HH, implicit prompt) differ before their final turns. */
  'no-shared-prompt',
  /** A dialogue's final turn is not the assistant's, so there is no response to compare. */
  'final-turn-not-assistant',
  /** `set` is not `finance` or `general`. */
  'unknown-set',
  /** `phase` is not `pretrain` or `finetune`. */
  'unknown-phase',
  /** Same normalized prompt, chosen and rejected as an earlier accepted line. */
  'duplicate',
  /** Estimated Jaccard similarity (MinHash) with an earlier accepted line at or above the threshold. */
  'near-duplicate',
] as const;
export const RejectReason = z.enum(REJECT_REASONS);
export type RejectReason = z.infer<typeof RejectReason>;

/** The accepted line a duplicate repeats. */
export const DuplicateOf = z.object({ source: z.string(), line: z.number().int().positive(), id: z.string() });
export type DuplicateOf = z.infer<typeof DuplicateOf>;

/** One rejected line, as written to a rejects JSONL. */
export const PreferenceReject = z.object({
  /** The input's name (usually its path). */
  source: z.string(),
  /** 1-based line number in that input, blank lines counted. */
  line: z.number().int().positive(),
  reason: RejectReason,
  /** The field at fault (`chosen`, `prompt[2].role`, `set`, …); `(line)` for the whole line. */
  field: z.string(),
  /** `field: what is wrong`, e.g. `chosen: expected a string or a list of chat messages, got number`. */
  message: z.string(),
  /** For `duplicate` and `near-duplicate`: the accepted line it repeats. */
  duplicateOf: DuplicateOf.optional(),
  /** For `near-duplicate`: the estimated Jaccard similarity with `duplicateOf`. */
  similarity: z.number().optional(),
});
export type PreferenceReject = z.infer<typeof PreferenceReject>;

/** A reject count for every reason, all zero. */
export function emptyReasonCounts(): Record<RejectReason, number> {
  return Object.fromEntries(REJECT_REASONS.map((reason) => [reason, 0])) as Record<RejectReason, number>;
}
