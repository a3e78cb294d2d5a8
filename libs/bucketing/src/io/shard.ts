import { performance } from 'node:perf_hooks';
import {
  CATEGORY_SIDECAR_SUFFIX,
  ChunkedEncoder,
  Growable,
  LongDocuments,
  PIECE_SIDECAR_SUFFIX,
  type PackItem,
  type RejectReason,
  type RejectRecord,
  type ShardJob,
  ShardReport,
  type TokenEncoder,
  type WindowOutput,
  WindowPacker,
  Windowing,
  bucketPrefix,
  createStrategy,
  parseCorpusLine,
  shardPrefix,
} from '@xyp/packing';
import { IndexedDatasetWriter } from './indexed-dataset';
import type { ByteSource } from './byte-source';
import { readLines } from './jsonl';
import { StreamedDocument } from './long-document';
import { writeArtifact, type ArtifactSink, type ArtifactWriter } from './sink';

export interface ShardProgress {
  shard: number;
  lines: number;
  kept: number;
  rejected: number;
  tokens: number;
  /** While a streamed line (longer than `streamLineBytes`) is being read: its 1-based line, bytes read, tokens so far. */
  document?: { line: number; bytes: number; tokens: number };
}

export interface PackShardOptions {
  job: ShardJob;
  /** Where the shard's bytes are read from (only `[shard.startByte, shard.endByte)`); default: the file `job.input`. */
  source?: ByteSource;
  encoder: TokenEncoder;
  /** Receives `<scratchPrefix>/<index>/...`: per-length datasets, sidecars, rejects, report. */
  scratch: ArtifactSink;
  onProgress?: (progress: ShardProgress) => void;
  /** Stops the shard (within one input chunk or tokenizer batch) with the signal's reason; nothing of it is kept. */
  signal?: AbortSignal;
}

/** Whole largest-length pieces of a long document read back and written per write (16 x 16k tokens = 1 MiB). */
const WHOLE_PIECES_PER_WRITE = 16;

interface PendingDoc {
  line: number;
  id: string;
  category: string;
}

interface Batch {
  docs: PendingDoc[];
  texts: string[];
  chars: number;
}

function isBlank(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (b !== 0x20 && b !== 0x09 && b !== 0x0d) return false;
  }
  return true;
}

/** Buffers JSONL text and hands it to the sink in ~64 KiB writes. */
class JsonlWriter {
  private buffered: string[] = [];
  private size = 0;

  constructor(private readonly writer: ArtifactWriter) {}

  async append(value: unknown): Promise<void> {
    const line = `${JSON.stringify(value)}\n`;
    this.buffered.push(line);
    this.size += line.length;
    if (this.size >= 1 << 16) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.buffered.length === 0) return;
    const text = this.buffered.join('');
    this.buffered = [];
    this.size = 0;
    await this.writer.write(Buffer.from(text, 'utf8'));
  }

  async close(): Promise<void> {
    await this.flush();
    await this.writer.close();
  }

  abort(): Promise<void> {
    return this.writer.abort();
  }
}

/**
 * Packs one shard (a line range of the input) on its own: reads and validates lines, encodes
 * accepted documents in batches of about `batchChars` characters (the next batch encodes on
 * the tokenizer's threads while this one is packed and written), cuts windows, packs each
 * window with the configured strategy (`WindowPacker`: under-filled sequences wait one window)
 * and streams the tokens into one Megatron dataset per sequence length. Writes, under the shard's prefix: `bucket_<L>.bin/.idx`, the category
 * sidecars, `rejects.jsonl` and, last, `report.json`.
 *
 * Memory: two tokenizer batches, one window (`windowTokens` tokens, 4 bytes each, plus up to a
 * quarter of that carried, plus the plan), one output chunk per length, and the shard's index (about 4 bytes per piece and 10
 * per packed sequence), bounded by `shardLines`. No document adds to that however long it is: no
 * text longer than `chunkChars` reaches the tokenizer, a line over `streamLineBytes` is read in
 * pieces with its tokens spilled to a temporary file (`long-document.ts`), and the whole
 * largest-length pieces of a long document are written at once (`long-documents.ts` in `@xyp/packing`).
 */
export async function packShard(options: PackShardOptions): Promise<ShardReport> {
  const started = performance.now();
  const { job, scratch } = options;
  const { config, shard } = job;
  // No text longer than `chunkChars` reaches the tokenizer (`text-chunks.ts` in `@xyp/packing`).
  const encoder = new ChunkedEncoder(options.encoder, { chunkChars: config.chunkChars, batchChars: config.batchChars });
  const prefix = shardPrefix(job.scratchPrefix, shard.index);
  const strategy = createStrategy(config.strategy, config.bucketLengths);
  const appendId = config.appendEod && job.tokenizer.eodId !== null ? job.tokenizer.eodId : undefined;

  const writers = await Promise.all(
    strategy.lengths.map((length) => IndexedDatasetWriter.create(scratch, `${prefix}/${bucketPrefix(length)}`, job.tokenizer.dtype, { hash: false })),
  );
  const sidecars = strategy.lengths.map(() => new Growable((n) => new Uint16Array(n)));
  const provenance = strategy.lengths.map(() => new Growable((n) => new Float64Array(n)));
  const rejectsName = `${prefix}/rejects.jsonl`;
  const rejects = new JsonlWriter(await scratch.create(rejectsName));
  const categoryCodes = new Map<string, number>();
  const packer = new WindowPacker(strategy, {
    seed: config.seed,
    paddingThreshold: config.paddingThreshold,
    categoryMixing: config.categoryMixing,
    maxCarryTokens: Math.floor(config.windowTokens / 4),
  });
  const windowing = new Windowing<PackItem>(config.windowLines, config.windowTokens);
  const counts = { lines: 0, blankLines: 0, kept: 0, rejected: 0, tokens: 0 };
  const rejectsByReason: Record<string, number> = {};
  let tokenizerWaitMs = 0;

  const reject = async (line: number, reason: RejectReason, detail: string, id?: string) => {
    counts.rejected++;
    rejectsByReason[reason] = (rejectsByReason[reason] ?? 0) + 1;
    const record: RejectRecord = id === undefined ? { line: line + 1, reason, detail } : { line: line + 1, reason, detail, id };
    await rejects.append(record);
  };

  const codeOf = (category: string): number => {
    let code = categoryCodes.get(category);
    if (code === undefined) {
      code = categoryCodes.size;
      if (code > 0xffff) throw new Error('more than 65,536 categories in one shard');
      categoryCodes.set(category, code);
    }
    return code;
  };

  const write = async (output: WindowOutput | null) => {
    if (output === null) return;
    output.sequences.forEach((list, slot) => {
      const writer = writers[slot];
      const sidecar = sidecars[slot];
      const origins = provenance[slot];
      for (const sequence of list) {
        for (const { item, start, length } of sequence.pieces) {
          if (item.tokens === undefined) throw new Error(`line ${item.line + 1}: tokens missing from the window`);
          writer.addSequence(item.tokens.subarray(start, start + length));
          origins.push(item.line + 1);
          origins.push(item.offset + start);
        }
        writer.endDocument();
        sidecar.push(codeOf(sequence.category));
      }
    });
    await Promise.all(writers.map((writer) => writer.drain()));
  };

  const long = new LongDocuments(strategy);
  /**
   * An accepted document of `length` tokens (`tokens(start, count)` gives them): the whole
   * largest-length pieces of a long one are written at once, the rest goes into the window
   * (`long-documents.ts` in `@xyp/packing`).
   */
  const addDocument = async (line: number, category: string, length: number, tokens: (start: number, count: number) => Int32Array | Promise<Int32Array>) => {
    counts.kept++;
    counts.tokens += length;
    const whole = long.wholePieces(length);
    for (let first = 0; first < whole; first += WHOLE_PIECES_PER_WRITE) {
      const n = Math.min(WHOLE_PIECES_PER_WRITE, whole - first);
      await write(packer.direct(long.sequences(line, category, length, first, await tokens(first * long.max, n * long.max))));
    }
    const offset = whole * long.max;
    const item: PackItem = { line, category, length: length - offset, offset, docLength: length, tokens: await tokens(offset, length - offset) };
    // The window counts the whole document, so its boundaries do not depend on the split.
    for (const window of windowing.push(line, length, item)) await write(packer.pack(window.key, window.items));
  };

  /** Encodes a batch; if the tokenizer fails on it, retries text by text so one bad text only rejects itself. */
  const encode = async (batch: Batch): Promise<(Int32Array | Error)[]> => {
    try {
      return await encoder.encodeBatch(batch.texts, { appendId });
    } catch {
      const results: (Int32Array | Error)[] = [];
      for (const text of batch.texts) {
        results.push(await encoder.encodeBatch([text], { appendId }).then(([ids]) => ids, (error: unknown) => (error instanceof Error ? error : new Error(String(error)))));
      }
      return results;
    }
  };

  const consume = async (batch: Batch, encoding: Promise<(Int32Array | Error)[]>) => {
    options.signal?.throwIfAborted();
    const waitStart = performance.now();
    const encoded = await encoding;
    tokenizerWaitMs += performance.now() - waitStart;
    for (let i = 0; i < batch.docs.length; i++) {
      const doc = batch.docs[i];
      const ids = encoded[i];
      if (ids instanceof Error || ids.length === 0) {
        await reject(doc.line, 'tokenizer-error', ids instanceof Error ? ids.message.split('\n')[0] : 'text encodes to no tokens', doc.id);
        continue;
      }
      await addDocument(doc.line, doc.category, ids.length, (start, count) => (start === 0 && count === ids.length ? ids : ids.slice(start, start + count)));
    }
    options.onProgress?.({ shard: shard.index, lines: counts.lines, kept: counts.kept, rejected: counts.rejected, tokens: counts.tokens });
  };

  let batch: Batch = { docs: [], texts: [], chars: 0 };
  let inflight: { batch: Batch; encoding: Promise<(Int32Array | Error)[]> } | null = null;
  const dispatch = async () => {
    const previous = inflight;
    // Start the next batch before packing the previous one, so the tokenizer never idles.
    inflight = batch.docs.length > 0 ? { batch, encoding: encode(batch) } : null;
    batch = { docs: [], texts: [], chars: 0 };
    if (previous !== null) await consume(previous.batch, previous.encoding);
  };

  /** A line over `streamLineBytes`: read by `StreamedDocument` (tokens spilled), packed once it is known to be good. */
  const streamed: { current: StreamedDocument | null } = { current: null };
  const openStreamed = async (line: number) => {
    const progress = (document: { bytes: number; tokens: number }) =>
      options.onProgress?.({ shard: shard.index, lines: counts.lines, kept: counts.kept, rejected: counts.rejected, tokens: counts.tokens, document: { line: line + 1, ...document } });
    streamed.current = await StreamedDocument.open({ line, encoder: options.encoder, appendId, chunkChars: config.chunkChars, batchChars: config.batchChars, onProgress: progress });
    return streamed.current;
  };
  const addStreamed = async (line: number) => {
    const document = streamed.current;
    if (document === null) throw new Error(`line ${line + 1}: streamed, but no reader was opened for it`);
    const result = await document.end();
    streamed.current = null;
    tokenizerWaitMs += document.waitMs;
    encoder.hardCuts += document.hardCuts;
    // Every line before this one first, so the output does not depend on tokenizer batches.
    await dispatch();
    await dispatch();
    if (result.kind === 'blank') counts.blankLines++;
    else if (result.kind === 'reject') await reject(line, result.reason, result.detail, result.id);
    else {
      try {
        await addDocument(line, result.category, result.tokens, (start, count) => result.spill.read(start, count));
      } finally {
        await result.spill.close();
      }
    }
    options.onProgress?.({ shard: shard.index, lines: counts.lines, kept: counts.kept, rejected: counts.rejected, tokens: counts.tokens });
  };

  try {
    const lines = readLines(options.source ?? job.input, {
      startLine: shard.startLine,
      endLine: shard.endLine,
      startByte: shard.startByte,
      endByte: shard.endByte,
      maxLineBytes: config.maxLineBytes,
      gzip: job.gzip,
      stream: { lineBytes: config.streamLineBytes, open: openStreamed },
    });
    for await (const { line, bytes, streamed: isStreamed } of lines) {
      options.signal?.throwIfAborted();
      counts.lines++;
      if (isStreamed) {
        await addStreamed(line);
        continue;
      }
      if (bytes === null) {
        await reject(line, 'line-too-long', `line longer than ${config.maxLineBytes} bytes`);
        continue;
      }
      if (isBlank(bytes)) {
        counts.blankLines++;
        continue;
      }
      const parsed = parseCorpusLine(bytes);
      if (!parsed.ok) {
        await reject(line, parsed.reason, parsed.detail, parsed.id);
        continue;
      }
      batch.docs.push({ line, id: parsed.doc.id, category: parsed.doc.category });
      batch.texts.push(parsed.doc.text);
      batch.chars += parsed.doc.text.length;
      if (batch.chars >= config.batchChars) await dispatch();
    }
    const expected = shard.endLine - shard.startLine;
    if (counts.lines !== expected) throw new Error(`shard ${shard.index}: read ${counts.lines} lines, expected ${expected} (input changed since planning?)`);
    await dispatch();
    await dispatch();
    for (const window of windowing.finish()) await write(packer.pack(window.key, window.items));
    await write(packer.finish());

    const outputs = [];
    for (let slot = 0; slot < writers.length; slot++) {
      const summary = await writers[slot].close();
      const sidecar = sidecars[slot].view();
      await writeArtifact(scratch, `${summary.prefix}${CATEGORY_SIDECAR_SUFFIX}`, new Uint8Array(sidecar.buffer, sidecar.byteOffset, sidecar.byteLength));
      const origins = BigInt64Array.from(provenance[slot].view(), (value) => BigInt(value));
      await writeArtifact(scratch, `${summary.prefix}${PIECE_SIDECAR_SUFFIX}`, new Uint8Array(origins.buffer));
      outputs.push({ length: strategy.lengths[slot], prefix: summary.prefix, sequences: summary.sequences, documents: summary.documents, tokens: summary.tokens });
    }
    await rejects.close();
    const report: ShardReport = {
      shard,
      lines: counts.lines,
      blankLines: counts.blankLines,
      kept: counts.kept,
      rejected: counts.rejected,
      rejectsByReason,
      categories: [...categoryCodes.keys()],
      stats: packer.stats,
      outputs,
      rejectsName,
      timings: { totalMs: performance.now() - started, tokenizerWaitMs },
    };
    await writeArtifact(scratch, `${prefix}/report.json`, Buffer.from(JSON.stringify(report)));
    return report;
  } catch (error) {
    // Nothing of a failed shard becomes visible; a retry starts from scratch.
    if (inflight !== null) await (inflight as { encoding: Promise<unknown> }).encoding.catch(() => undefined);
    await streamed.current?.abort();
    await Promise.all([...writers.map((writer) => writer.abort()), rejects.abort()]).catch(() => undefined);
    throw error;
  }
}
