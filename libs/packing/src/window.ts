import { emptyCounts, emptyStats, type CompositionStats } from './metrics';
import { createRng, deriveSeed, shuffleInPlace } from '@xyp/random';
import type { CategoryMixing } from '@xyp/contracts';
import type { PackingStrategy } from './strategy';
import type { WindowKey } from './windowing';

/** A document, or the part of one still to be packed, as the window packer sees it. */
export interface PackItem {
  /** 0-based input line of the document. */
  line: number;
  category: string;
  /** Tokens in this item. */
  length: number;
  /** Offset of this item's first token in the document (non-zero for a carried remainder). */
  offset: number;
  /** Tokens of the whole document. */
  docLength: number;
  /** The item's tokens; absent when only lengths are simulated. */
  tokens?: Int32Array;
}

export interface EmittedPiece {
  item: PackItem;
  /** Offset within the item. */
  start: number;
  length: number;
}

/** A packed sequence of a single category, ready to be written. */
export interface EmittedSequence {
  capacity: number;
  category: string;
  used: number;
  pieces: EmittedPiece[];
}

/** A window's sequences per output length (same order as `strategy.lengths`), in write order. */
export interface WindowOutput {
  lengths: readonly number[];
  sequences: EmittedSequence[][];
}

export interface WindowPackerOptions {
  /** Seeds the per-window shuffle (with the window key). */
  seed: number;
  /**
   * A sequence padded by more than this share of its capacity is not emitted: its pieces are
   * carried into the next window of the shard, where more documents can fill the gap (the
   * padding threshold P and document pool of arXiv 2407.07495, Algorithm 1); pieces can be
   * carried again until the shard ends. 1 disables it.
   */
  paddingThreshold: number;
  /** Upper bound on the tokens carried from one window to the next (the memory bound of carrying). */
  maxCarryTokens: number;
  /** Which sequences may mix categories (see `PackConfig.categoryMixing`). */
  categoryMixing: CategoryMixing;
}

/** Plain code-unit order: locale-independent, so every machine sorts the same way. */
export function compareCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Packs items with a strategy, one category group at a time (groups in code-unit order of
 * the category), so that every sequence holds a single category and a sampler can draw
 * sequences by category; with `acrossCategories`, all items as one group, each sequence
 * labelled with its majority category. Returns sequences per output length, in plan order.
 */
export function planGroups(items: readonly PackItem[], strategy: PackingStrategy, acrossCategories = false): EmittedSequence[][] {
  const groups = new Map<string, PackItem[]>();
  for (const item of items) {
    const key = acrossCategories ? '' : item.category;
    let group = groups.get(key);
    if (group === undefined) groups.set(key, (group = []));
    group.push(item);
  }
  const slotOf = new Map(strategy.lengths.map((length, slot) => [length, slot]));
  const sequences: EmittedSequence[][] = strategy.lengths.map(() => []);
  for (const [, members] of [...groups.entries()].sort(([a], [b]) => compareCodeUnits(a, b))) {
    for (const packed of strategy.pack(members.map((item) => item.length))) {
      const slot = slotOf.get(packed.capacity);
      if (slot === undefined) throw new Error(`strategy ${strategy.name} emitted an unknown length ${packed.capacity}`);
      const pieces = packed.pieces.map((piece) => ({ item: members[piece.doc], start: piece.start, length: piece.length }));
      sequences[slot].push({ capacity: packed.capacity, category: majorityCategory(pieces), used: packed.used, pieces });
    }
  }
  return sequences;
}

/**
 * Packs the windows of one shard in order and keeps the composition counts (see `metrics.ts`).
 * For a pooled strategy (`bucket`, `bfd`, `fixed`), under-filled sequences are carried into
 * the next window (see `paddingThreshold`), at most `maxCarryTokens` tokens at a time;
 * `finish()` at the end of the shard emits everything, the under-filled rest packed across
 * categories when `mixCategoryTails` is on. `bfd-buckets` writes each window as planned. Each
 * window's sequences are shuffled per length with a generator seeded by (seed, window, part),
 * so a trainer reading a bucket in order does not see all long documents first.
 *
 * A document is counted when its last token is emitted, as truncated if it took more than one
 * piece.
 */
export class WindowPacker {
  readonly stats: CompositionStats;
  private carry: PackItem[] = [];
  private lastKey: WindowKey = { window: 0, part: -1 };
  private readonly partial = new Map<number, { emitted: number; pieces: number }>();

  constructor(
    private readonly strategy: PackingStrategy,
    private readonly options: WindowPackerOptions,
  ) {
    this.stats = emptyStats(strategy.lengths);
  }

  /** Tokens carried into the next window. */
  get carriedTokens(): number {
    return this.carry.reduce((sum, item) => sum + item.length, 0);
  }

  /** Packs the carried items plus the window's `items` (in line order). */
  pack(key: WindowKey, items: readonly PackItem[]): WindowOutput {
    this.lastKey = key;
    return this.packAll(key, items, false);
  }

  /** Emits what is still carried (the end of a shard), as the part after the last window; null if nothing is. */
  finish(): WindowOutput | null {
    if (this.carry.length === 0) return null;
    return this.packAll({ window: this.lastKey.window, part: this.lastKey.part + 1 }, [], true);
  }

  /**
   * Accounts sequences planned outside the windows — the whole largest-length pieces of a
   * document longer than the largest length (`long-documents.ts`) — and returns them to be
   * written as they are: in the order given, not shuffled, never carried.
   */
  direct(sequences: readonly EmittedSequence[]): WindowOutput {
    const out: EmittedSequence[][] = this.strategy.lengths.map(() => []);
    for (const sequence of sequences) {
      const slot = this.strategy.lengths.indexOf(sequence.capacity);
      if (slot < 0) throw new Error(`no sequence length ${sequence.capacity} in strategy ${this.strategy.name}`);
      out[slot].push(sequence);
      this.account(sequence, sequence.capacity);
    }
    return { lengths: this.strategy.lengths, sequences: out };
  }

  private packAll(key: WindowKey, items: readonly PackItem[], final: boolean): WindowOutput {
    const all = this.carry.length > 0 ? [...this.carry, ...items] : items;
    this.carry = [];
    const planned = planGroups(all, this.strategy, this.options.categoryMixing === 'all');
    const sequences: EmittedSequence[][] = planned.map(() => []);
    const underfilled = (sequence: EmittedSequence) => sequence.capacity - sequence.used > this.options.paddingThreshold * sequence.capacity;
    let carried = 0;
    const leftovers: EmittedSequence[] = [];
    planned.forEach((list, slot) => {
      for (const sequence of list) {
        if (!this.strategy.pooled || !underfilled(sequence)) {
          sequences[slot].push(sequence);
        } else if (final) {
          leftovers.push(sequence);
        } else if (carried + sequence.used <= this.options.maxCarryTokens) {
          carried += sequence.used;
          for (const piece of sequence.pieces) this.carry.push(carryOver(piece));
        } else {
          sequences[slot].push(sequence);
        }
      }
    });
    this.carry.sort((a, b) => a.line - b.line || a.offset - b.offset);
    for (const sequence of this.options.categoryMixing === 'tails' ? this.mixTails(leftovers) : leftovers) {
      sequences[this.strategy.lengths.indexOf(sequence.capacity)].push(sequence);
    }
    const rng = createRng(deriveSeed(this.options.seed, key.window, key.part));
    for (const list of sequences) shuffleInPlace(list, rng);
    sequences.forEach((list, slot) => {
      for (const sequence of list) this.account(sequence, this.strategy.lengths[slot]);
    });
    return { lengths: this.strategy.lengths, sequences };
  }

  /**
   * The shard's last under-filled sequences, one or a few per category, packed again as one
   * pool across categories. Each sequence is labelled with the category that holds most of
   * its tokens (ties: code-unit order). Kept only when it needs fewer token slots than the
   * per-category sequences, so it never adds padding.
   */
  private mixTails(leftovers: EmittedSequence[]): EmittedSequence[] {
    if (new Set(leftovers.map((sequence) => sequence.category)).size < 2) return leftovers;
    const pool = leftovers.flatMap((sequence) => sequence.pieces.map(carryOver)).sort((a, b) => a.line - b.line || a.offset - b.offset);
    const mixed = planGroups(pool, this.strategy, true).flat();
    const slots = (list: EmittedSequence[]) => list.reduce((sum, sequence) => sum + sequence.capacity, 0);
    return slots(mixed) < slots(leftovers) ? mixed : leftovers;
  }

  /**
   * Sequences, padding and mixed sequences count for the sequence's (label) category; pieces,
   * tokens and documents for the category of their own document.
   */
  private account(sequence: EmittedSequence, length: number): void {
    const stats = this.stats;
    const bucket = (stats.byLength[String(length)] ??= emptyCounts());
    const label = (stats.byCategory[sequence.category] ??= emptyCounts());
    const mixed = sequence.pieces.some((piece) => piece.item.category !== sequence.category) ? 1 : 0;
    for (const counts of [bucket, label, stats.total]) {
      counts.sequences++;
      counts.paddingTokens += sequence.capacity - sequence.used;
      counts.mixedSequences += mixed;
    }
    for (const { item, start, length: pieceLength } of sequence.pieces) {
      const category = (stats.byCategory[item.category] ??= emptyCounts());
      for (const counts of [bucket, category, stats.total]) {
        counts.pieces++;
        counts.tokens += pieceLength;
      }
      const whole = item.offset + start === 0 && pieceLength === item.docLength;
      bucket.documents++;
      if (!whole) bucket.truncatedDocuments++;
      let pieces = 1;
      if (!whole) {
        const state = this.partial.get(item.line) ?? { emitted: 0, pieces: 0 };
        state.emitted += pieceLength;
        state.pieces++;
        if (state.emitted < item.docLength) {
          this.partial.set(item.line, state);
          continue;
        }
        this.partial.delete(item.line);
        pieces = state.pieces;
      }
      category.documents++;
      stats.total.documents++;
      if (pieces > 1) {
        category.truncatedDocuments++;
        stats.total.truncatedDocuments++;
      }
    }
  }
}

/** The category with the most tokens among the pieces; ties go to the first in code-unit order. */
function majorityCategory(pieces: EmittedPiece[]): string {
  const tokens = new Map<string, number>();
  for (const piece of pieces) tokens.set(piece.item.category, (tokens.get(piece.item.category) ?? 0) + piece.length);
  let best = '';
  let most = -1;
  for (const [category, count] of tokens) {
    if (count > most || (count === most && compareCodeUnits(category, best) < 0)) {
      best = category;
      most = count;
    }
  }
  return best;
}

function carryOver(piece: EmittedPiece): PackItem {
  const { item, start, length } = piece;
  return {
    line: item.line,
    category: item.category,
    length,
    offset: item.offset + start,
    docLength: item.docLength,
    tokens: item.tokens?.subarray(start, start + length),
  };
}
