import { randomUUID } from 'node:crypto';
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { type RejectReason, StreamedJsonLine, type TokenEncoder, findCut } from '@xyp/packing';
import type { LineConsumer } from './jsonl';

/**
 * The token ids of one document in a temporary file, 4 bytes each, so that a document of any
 * length costs no memory while its line is still being read and checked. The file is created
 * under `dir` (default `os.tmpdir()`, i.e. `TMPDIR`) and unlinked at once where the platform
 * allows, so nothing is left behind even if the process dies.
 */
export class TokenSpill {
  /** Tokens appended so far. */
  length = 0;
  private unlinked = false;

  private constructor(
    private readonly handle: FileHandle,
    private readonly path: string,
  ) {}

  static async create(dir: string = tmpdir()): Promise<TokenSpill> {
    const path = join(dir, `xyp-tokens-${process.pid}-${randomUUID()}.i32`);
    const spill = new TokenSpill(await open(path, 'wx+', 0o600), path);
    spill.unlinked = await unlink(path).then(
      () => true,
      () => false,
    );
    return spill;
  }

  async append(ids: Int32Array): Promise<void> {
    const bytes = new Uint8Array(ids.buffer, ids.byteOffset, ids.byteLength);
    let done = 0;
    while (done < bytes.length) {
      const { bytesWritten } = await this.handle.write(bytes, done, bytes.length - done, this.length * 4 + done);
      done += bytesWritten;
    }
    this.length += ids.length;
  }

  /** Tokens `[start, start + count)`. */
  async read(start: number, count: number): Promise<Int32Array> {
    if (start < 0 || count < 0 || start + count > this.length) throw new Error(`tokens [${start}, ${start + count}) are not in a spill of ${this.length}`);
    const ids = new Int32Array(count);
    const bytes = new Uint8Array(ids.buffer);
    let done = 0;
    while (done < bytes.length) {
      const { bytesRead } = await this.handle.read(bytes, done, bytes.length - done, start * 4 + done);
      if (bytesRead === 0) throw new Error('token spill file ended early');
      done += bytesRead;
    }
    return ids;
  }

  async close(): Promise<void> {
    await this.handle.close().catch(() => undefined);
    if (!this.unlinked) await unlink(this.path).catch(() => undefined);
    this.unlinked = true;
  }
}

/** How far the reading of a streamed document has got. */
export interface StreamedDocumentProgress {
  /** Bytes of the line read. */
  bytes: number;
  /** Tokens encoded so far. */
  tokens: number;
}

/** `line 12 (streamed): 41.9 MB read, 10,123,456 tokens`, for progress messages (`ShardProgress.document`). */
export function describeDocumentProgress(document: { line: number; bytes: number; tokens: number }): string {
  return `line ${document.line} (streamed): ${(document.bytes / 1e6).toFixed(1)} MB read, ${document.tokens.toLocaleString('en-US')} tokens`;
}

export interface StreamedDocumentOptions {
  /** 0-based input line. */
  line: number;
  encoder: TokenEncoder;
  /** Appended once, after the last token of the text. */
  appendId?: number;
  /** Longest text handed to the encoder (`PackConfig.chunkChars`). */
  chunkChars: number;
  /** Characters per encoder call (`PackConfig.batchChars`). */
  batchChars: number;
  /** Budget of the line outside its text (see `StreamedJsonLine`); default 1 MiB. */
  restBytes?: number;
  /** Called after every encoder call. */
  onProgress?: (progress: StreamedDocumentProgress) => void;
  /** Directory of the token spill (default `os.tmpdir()`). */
  spillDir?: string;
}

export type StreamedDocumentResult =
  | { kind: 'blank' }
  | { kind: 'reject'; reason: RejectReason; detail: string; id?: string }
  /** Accepted: its `tokens` ids (with `appendId`) are in `spill`; the caller closes it. */
  | { kind: 'document'; id: string; category: string; tokens: number; spill: TokenSpill };

/**
 * One line too long to hold (`PackConfig.streamLineBytes`), read as `readLines` hands over its
 * bytes: `StreamedJsonLine` decodes the text as it comes and keeps the other fields; the text is
 * cut into chunks of at most `chunkChars` at safe places (`findCut`), encoded `batchChars` at a
 * time (the next call is started before the previous one's ids are stored) and the ids go to a
 * `TokenSpill`. Nothing is packed before the line has been read to its end and checked, since
 * `category` may come after `text` and the line may still be rejected.
 *
 * Memory: about one read chunk of bytes, `chunkChars` + one decoded read chunk of text, two
 * encoder calls of `batchChars` characters (text, the tokenizer's own work on them and their ids),
 * and the line outside its text (at most `restBytes`); none of it grows with the document.
 */
export class StreamedDocument implements LineConsumer {
  /** Cuts without a safe place (see `text-chunks.ts`). */
  hardCuts = 0;
  /** Time spent waiting for the encoder. */
  waitMs = 0;
  /** The longest text handed to the encoder in one piece (at most `chunkChars`). */
  longestChunk = 0;

  private readonly scanner: StreamedJsonLine;
  private pending = '';
  private group: string[] = [];
  private groupChars = 0;
  private inflight: Promise<Int32Array[]> | null = null;
  private encodeError: Error | null = null;

  private constructor(
    private readonly options: StreamedDocumentOptions,
    private readonly spill: TokenSpill,
  ) {
    this.scanner = new StreamedJsonLine(options.restBytes);
  }

  static async open(options: StreamedDocumentOptions): Promise<StreamedDocument> {
    return new StreamedDocument(options, await TokenSpill.create(options.spillDir));
  }

  private get stopped(): boolean {
    return this.scanner.doomed || this.encodeError !== null;
  }

  async write(bytes: Uint8Array): Promise<void> {
    const text = this.scanner.write(bytes);
    if (this.stopped) {
      this.pending = '';
      this.group = [];
      return;
    }
    if (text.length > 0) this.pending = this.pending.length === 0 ? text : this.pending + text;
    // A cut needs the character after it, so only cut while more than a chunk is waiting.
    while (this.pending.length > this.options.chunkChars && !this.stopped) {
      const cut = findCut(this.pending, 0, this.options.chunkChars);
      if (cut.rule === 'hard') this.hardCuts++;
      await this.add(this.pending.slice(0, cut.end));
      this.pending = this.pending.slice(cut.end);
    }
  }

  /** Drops everything (the line was longer than `maxLineBytes`, or the shard failed). */
  async abort(): Promise<void> {
    this.pending = '';
    this.group = [];
    await this.inflight?.catch(() => undefined);
    this.inflight = null;
    await this.spill.close();
  }

  /** Finishes the document once the whole line has been written. */
  async end(): Promise<StreamedDocumentResult> {
    try {
      const verdict = this.scanner.end();
      if (verdict.kind !== 'document') {
        await this.abort();
        return verdict;
      }
      while (this.pending.length > 0 && !this.stopped) {
        const cut = findCut(this.pending, 0, this.options.chunkChars);
        if (cut.rule === 'hard') this.hardCuts++;
        await this.add(this.pending.slice(0, cut.end));
        this.pending = this.pending.slice(cut.end);
      }
      await this.submit();
      await this.submit();
      if (this.encodeError !== null) {
        await this.spill.close();
        return { kind: 'reject', reason: 'tokenizer-error', detail: this.encodeError.message.split('\n')[0], id: verdict.id };
      }
      if (this.options.appendId !== undefined) await this.spill.append(Int32Array.of(this.options.appendId));
      if (this.spill.length === 0) {
        await this.spill.close();
        return { kind: 'reject', reason: 'tokenizer-error', detail: 'text encodes to no tokens', id: verdict.id };
      }
      return { kind: 'document', id: verdict.id, category: verdict.category, tokens: this.spill.length, spill: this.spill };
    } catch (error) {
      await this.spill.close();
      throw error;
    }
  }

  private async add(chunk: string): Promise<void> {
    this.group.push(chunk);
    this.groupChars += chunk.length;
    if (this.groupChars >= this.options.batchChars) await this.submit();
  }

  /** Starts encoding the chunks gathered so far, then stores the ids of the call before. */
  private async submit(): Promise<void> {
    const previous = this.inflight;
    this.inflight = null;
    if (this.group.length > 0 && !this.stopped) {
      for (const chunk of this.group) if (chunk.length > this.longestChunk) this.longestChunk = chunk.length;
      const encoding = this.options.encoder.encodeBatch(this.group);
      encoding.catch(() => undefined);
      this.inflight = encoding;
    }
    this.group = [];
    this.groupChars = 0;
    if (previous === null) return;
    const waitStart = performance.now();
    let encoded: Int32Array[];
    try {
      encoded = await previous;
    } catch (error) {
      this.encodeError ??= error instanceof Error ? error : new Error(String(error));
      return;
    } finally {
      this.waitMs += performance.now() - waitStart;
    }
    if (this.stopped) return;
    let total = 0;
    for (const ids of encoded) total += ids.length;
    const joined = encoded.length === 1 ? encoded[0] : new Int32Array(total);
    if (encoded.length > 1) {
      let at = 0;
      for (const ids of encoded) {
        joined.set(ids, at);
        at += ids.length;
      }
    }
    await this.spill.append(joined);
    this.options.onProgress?.({ bytes: this.scanner.bytes, tokens: this.spill.length });
  }
}
