/** Identifies a window: `window` = floor(line / windowLines), `part` counts token-limit cuts within it. */
export interface WindowKey {
  window: number;
  part: number;
}

export interface CompletedWindow<T> {
  key: WindowKey;
  items: T[];
  tokens: number;
}

/**
 * Cuts the document stream into packing windows, the unit that bounds memory: a window holds
 * the accepted documents of lines [k*W, (k+1)*W) (W = `windowLines`) and is cut early, into
 * parts, as soon as its tokens reach `windowTokens`.
 *
 * Boundaries depend only on line numbers and document lengths, never on tokenizer batches,
 * shard plans or worker counts. A shard made of whole windows (its first line a multiple of
 * W) therefore sees exactly the windows a single pass over the file sees, which is what makes
 * sharded output byte-identical to unsharded output.
 */
export class Windowing<T> {
  private key: WindowKey = { window: -1, part: 0 };
  private items: T[] = [];
  private tokens = 0;
  private lastLine = -1;

  constructor(
    private readonly windowLines: number,
    private readonly windowTokens: number,
  ) {
    if (!Number.isInteger(windowLines) || windowLines < 1) throw new Error(`windowLines must be a positive integer, got ${windowLines}`);
    if (!Number.isInteger(windowTokens) || windowTokens < 1) throw new Error(`windowTokens must be a positive integer, got ${windowTokens}`);
  }

  /** Adds the document of 0-based `line` (increasing); returns the windows this completes. */
  push(line: number, length: number, item: T): CompletedWindow<T>[] {
    if (line <= this.lastLine) throw new Error(`lines must increase: ${line} after ${this.lastLine}`);
    this.lastLine = line;
    const completed: CompletedWindow<T>[] = [];
    const window = Math.floor(line / this.windowLines);
    if (window !== this.key.window) {
      if (this.items.length > 0) completed.push(this.take());
      this.key = { window, part: 0 };
    }
    this.items.push(item);
    this.tokens += length;
    if (this.tokens >= this.windowTokens) {
      completed.push(this.take());
      this.key = { window, part: this.key.part + 1 };
    }
    return completed;
  }

  /** The last, partly filled window, if any. */
  finish(): CompletedWindow<T>[] {
    return this.items.length > 0 ? [this.take()] : [];
  }

  private take(): CompletedWindow<T> {
    const done = { key: this.key, items: this.items, tokens: this.tokens };
    this.items = [];
    this.tokens = 0;
    return done;
  }
}
