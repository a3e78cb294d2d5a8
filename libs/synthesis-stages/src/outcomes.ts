/**
 * What a generator says about each input: exactly one outcome per input id, one JSONL line each
 * in `outcomes.jsonl`:
 *
 *   {"id": "doc-1", "category": "funds.knowledge", "status": "kept", "itemIds": ["doc-1/qa-1", …]}
 *   {"id": "q-7", "category": …, "status": "dropped", "reason": "unresolved", "detail": …, "scores": [0.1, null]}
 *   {"id": "line-3-…", "category": "(none)", "status": "failed", "reason": "malformed-json", "detail": "in.jsonl:3: …", "line": 3}
 *
 * `reason` is a short code that the summary counts (`droppedByReason`, `failedByReason`); `detail`
 * is the one line a person reads. The shapes are those `summarizeAccounting` of `@xyp/synthesis`
 * checks, with the extra fields above.
 */
import { z } from 'zod';
import type { AccountingSummary, CategoryCounts } from '@xyp/synthesis';

export const SynthesisOutcome = z.discriminatedUnion('status', [
  z.object({ id: z.string().min(1), category: z.string().min(1), status: z.literal('kept'), itemIds: z.array(z.string().min(1)).min(1) }).strict(),
  z
    .object({
      id: z.string().min(1),
      category: z.string().min(1),
      status: z.literal('dropped'),
      reason: z.string().min(1),
      detail: z.string().optional(),
      /** Ensemble: every candidate's score (null: not a finite number, or the call failed). */
      scores: z.array(z.number().nullable()).optional(),
    })
    .strict(),
  z.object({ id: z.string().min(1), category: z.string().min(1), status: z.literal('failed'), reason: z.string().min(1), detail: z.string().optional(), line: z.number().int().positive().optional() }).strict(),
]);
export type SynthesisOutcome = z.infer<typeof SynthesisOutcome>;

/** An empty accounting summary. */
export function emptyAccounting(): AccountingSummary {
  return { inputs: 0, kept: 0, dropped: 0, failed: 0, byCategory: {}, droppedByReason: {}, failedByReason: {} };
}

function addCounts(into: Record<string, number>, from: Readonly<Record<string, number>>): void {
  for (const [key, n] of Object.entries(from)) into[key] = (into[key] ?? 0) + n;
}

/** `total` plus `part`, in place (categories and reasons summed). */
export function addAccounting(total: AccountingSummary, part: AccountingSummary): AccountingSummary {
  total.inputs += part.inputs;
  total.kept += part.kept;
  total.dropped += part.dropped;
  total.failed += part.failed;
  for (const [category, counts] of Object.entries(part.byCategory)) {
    const into: CategoryCounts = (total.byCategory[category] ??= { inputs: 0, kept: 0, dropped: 0, failed: 0 });
    into.inputs += counts.inputs;
    into.kept += counts.kept;
    into.dropped += counts.dropped;
    into.failed += counts.failed;
  }
  addCounts(total.droppedByReason, part.droppedByReason);
  addCounts(total.failedByReason, part.failedByReason);
  return total;
}

/** Flat counters (a generator's step counts), summed in place. */
export function addStats(total: Record<string, number>, part: Readonly<Record<string, number>>): Record<string, number> {
  addCounts(total, part);
  return total;
}

/** The object with its keys sorted (so that summaries read, and compare, the same run to run). */
export function sortedKeys<T>(record: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
