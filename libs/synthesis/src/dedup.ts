/**
 * Exact and near-duplicate removal, for SelfQA's generated questions and for the final SFT items.
 *
 * - Exact: the normalized text (`normalizeText`: NFKC, whitespace runs to one space, lower case)
 *   hashed with FNV-1a 32 (`hashString` of `@xyp/random`; no node:crypto in a pure lib); a hash hit
 *   is confirmed by comparing the full normalized strings, so a hash collision never drops an item.
 * - Near: MinHash + LSH (`NearDuplicateIndex` of `@xyp/minhash`) over the same normalized text; an
 *   item whose estimated Jaccard similarity of character shingles to an earlier kept item is ≥
 *   `nearDuplicateThreshold` is a near duplicate of it.
 *
 * The first occurrence in input order is kept: callers that prefer the better of two duplicates
 * sort first (e.g. by reward score, descending).
 */
import type { ChatTurn } from '@xyp/contracts';
import { NearDuplicateIndex, minHasher } from '@xyp/minhash';
import { hashString } from '@xyp/random';
import { z } from 'zod';
import { SynthesisInputError, parseWith } from './errors';
import { normalizeText } from './text';

export const DuplicateConfig = z
  .object({
    /** Estimated Jaccard similarity at or above which two texts are near duplicates. */
    nearDuplicateThreshold: z.number().gt(0).max(1).default(0.8),
    /** MinHash hash functions k. */
    permutations: z.number().int().min(8).max(1024).default(128),
    /** Shingle length in characters (5 suits answers; SelfQA's short questions use 3). */
    shingleSize: z.number().int().min(1).max(32).default(5),
    /** Seed of the MinHash functions. */
    seed: z.number().int().default(0),
  })
  .strict();
export type DuplicateConfig = z.output<typeof DuplicateConfig>;
export type DuplicateConfigInput = z.input<typeof DuplicateConfig>;

export type DuplicateMatch = { kind: 'exact'; of: string } | { kind: 'near'; of: string; similarity: number };

/**
 * Remembers the texts it accepted. `check(id, text)` returns the earlier text `text` duplicates
 * (exact first, then near), or accepts it and returns undefined.
 */
export class DuplicateFilter {
  readonly config: DuplicateConfig;
  private readonly exact = new Map<number, { text: string; id: string }[]>();
  private readonly near: NearDuplicateIndex<string>;
  private readonly signatureOf: (text: string) => Uint32Array;

  constructor(config: DuplicateConfigInput = {}) {
    this.config = parseWith(DuplicateConfig, config, 'dedup');
    this.near = new NearDuplicateIndex<string>(this.config.permutations, this.config.nearDuplicateThreshold);
    this.signatureOf = minHasher({ permutations: this.config.permutations, shingleSize: this.config.shingleSize, seed: this.config.seed });
  }

  check(id: string, text: string): DuplicateMatch | undefined {
    const normalized = normalizeText(text);
    const key = hashString(normalized);
    const bucket = this.exact.get(key);
    const same = bucket?.find((entry) => entry.text === normalized);
    if (same) return { kind: 'exact', of: same.id };
    const match = this.near.findOrAdd(this.signatureOf(normalized), id);
    if (match) return { kind: 'near', of: match.ref, similarity: match.similarity };
    if (bucket) bucket.push({ text: normalized, id });
    else this.exact.set(key, [{ text: normalized, id }]);
    return undefined;
  }
}

/** What an SFT item is compared on: its user and assistant turns, `role: text`, one per line (system prompts are ignored). */
export function dialogueText(messages: readonly ChatTurn[]): string {
  return messages
    .filter((m) => m.role !== 'system')
    .map((m) => `${m.role}: ${m.content}`)
    .join('\n');
}

export interface DedupDrop {
  id: string;
  reason: 'exact-duplicate' | 'near-duplicate';
  /** The kept item it duplicates. */
  of: string;
  /** Estimated Jaccard similarity, for a near duplicate. */
  similarity?: number;
}

/** Removes exact and near duplicates of earlier items (see the module comment). Ids must be unique. */
export function dedupItems<T extends { id: string; messages: readonly ChatTurn[] }>(items: readonly T[], config: DuplicateConfigInput = {}): { kept: T[]; dropped: DedupDrop[] } {
  const filter = new DuplicateFilter(config);
  const kept: T[] = [];
  const dropped: DedupDrop[] = [];
  const seen = new Set<string>();
  for (const item of items) {
    if (seen.has(item.id)) throw new SynthesisInputError(`items: id ${item.id} appears twice`, 'items');
    seen.add(item.id);
    const match = filter.check(item.id, dialogueText(item.messages));
    if (!match) kept.push(item);
    else if (match.kind === 'exact') dropped.push({ id: item.id, reason: 'exact-duplicate', of: match.of });
    else dropped.push({ id: item.id, reason: 'near-duplicate', of: match.of, similarity: match.similarity });
  }
  return { kept, dropped };
}
