import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type { ShardSpec } from '@xyp/packing';
import { isGzipSource, peekGzip, toByteSource, type ByteSource } from './byte-source';
import { GzipShardSplitter, type GzipSplitTarget, type SplitObject } from './gzip-split';

/**
 * Streaming JSONL input: a `ByteSource` (a local file, an artifact-store object), optionally
 * gzip-compressed (detected by its magic bytes), read in fixed-size chunks and cut into lines
 * without ever holding more than one chunk plus one line (itself capped by `maxLineBytes`). Lines are numbered from 0 here; rejects report them
 * 1-based.
 */

/** One input line without its `\n` (and without a trailing `\r`); `bytes` is null when the line was too long. */
export interface RawLine {
  line: number;
  bytes: Uint8Array | null;
  /** The line's bytes went to the consumer `ReadLinesOptions.stream` opened for it (`bytes` is null). */
  streamed?: true;
}

/** Receives the bytes of one streamed line, in order (a trailing `\r` included). */
export interface LineConsumer {
  /** `bytes` is only valid until the returned promise settles. */
  write(bytes: Uint8Array): Promise<void>;
  /** The line turned out longer than `maxLineBytes`; it is yielded as too long. */
  abort(): Promise<void>;
}

/** Lines longer than `lineBytes` (up to `maxLineBytes`) are handed, as read, to the consumer `open` returns. */
export interface LineStreamOptions {
  lineBytes: number;
  open(line: number): Promise<LineConsumer>;
}

export interface InputPlan {
  bytes: number;
  /** SHA-256 of the input file as stored (compressed bytes for gzip). */
  sha256: string;
  gzip: boolean;
  lines: number;
  shards: ShardSpec[];
}

const CHUNK_BYTES = 1 << 20;

/** Chunks as Buffers (the line cutter uses `Buffer.concat` and `indexOf`), without copying. */
async function* asBuffers(chunks: AsyncIterable<Uint8Array>): AsyncGenerator<Buffer> {
  for await (const chunk of chunks) yield Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}

export async function isGzipFile(path: string): Promise<boolean> {
  const handle = await open(path, 'r');
  try {
    const magic = new Uint8Array(2);
    const { bytesRead } = await handle.read(magic, 0, 2, 0);
    return bytesRead === 2 && magic[0] === 0x1f && magic[1] === 0x8b;
  } finally {
    await handle.close();
  }
}

/**
 * Bytes `[startByte, endByte)` of the source, decompressed when gzip (then the range must start
 * at a gzip member: the start of the input or of a shard's own object).
 */
async function* openChunks(source: ByteSource, gzip: boolean, startByte: number, endByte?: number): AsyncIterable<Buffer> {
  if (!gzip) {
    yield* asBuffers(source.read(startByte, endByte));
    return;
  }
  const file = Readable.from(asBuffers(source.read(startByte, endByte)));
  const gunzip = createGunzip({ chunkSize: CHUNK_BYTES });
  file.on('error', (error) => gunzip.destroy(error));
  file.pipe(gunzip);
  try {
    yield* gunzip as AsyncIterable<Buffer>;
  } finally {
    file.destroy();
    gunzip.destroy();
  }
}

export interface PlanInputOptions {
  /**
   * Gzip input only: while planning, write each shard's lines into a gzip object of its own
   * (`shardInputName`), recorded as the shard's `object`, so a shard job reads only that object.
   * Without it a gzip shard has no byte range and its reader inflates the input from the start.
   */
  splitGzip?: GzipSplitTarget;
}

/**
 * Counts the lines of the input and cuts them into shards of `shardLines` lines, hashing the
 * input on the way. One sequential read of the source; plain input gets each shard's byte range
 * `[startByte, endByte)`, gzip input (with `splitGzip`) is split into one object per shard. A
 * last line without `\n` counts as a line.
 */
export async function planInput(input: ByteSource | string, shardLines: number, options: PlanInputOptions = {}): Promise<InputPlan> {
  if (!Number.isInteger(shardLines) || shardLines < 1) throw new Error(`shardLines must be a positive integer, got ${shardLines}`);
  const { gzip, chunks } = await peekGzip(toByteSource(input).read(0));
  const hash = createHash('sha256');
  let bytes = 0;
  const hashing = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  const stages: NodeJS.ReadWriteStream[] = gzip ? [hashing, createGunzip({ chunkSize: CHUNK_BYTES })] : [hashing];
  const output = stages[stages.length - 1] as unknown as AsyncIterable<Buffer>;
  const piping = pipeline([Readable.from(chunks), ...stages]);
  // A read error surfaces in the loop below; this only keeps it from also counting as unhandled.
  piping.catch(() => undefined);
  const splitter = gzip && options.splitGzip !== undefined ? new GzipShardSplitter(options.splitGzip) : null;
  const starts: number[] = [0];
  let lines = 0;
  let position = 0;
  let lastByte = 0x0a;
  let objects: SplitObject[] = [];
  try {
    for await (const chunk of output) {
      let from = 0;
      for (let i = chunk.indexOf(0x0a); i !== -1; i = chunk.indexOf(0x0a, i + 1)) {
        lines++;
        if (lines % shardLines === 0) {
          starts.push(position + i + 1);
          if (splitter !== null) {
            await splitter.write(chunk.subarray(from, i + 1));
            await splitter.cut();
            from = i + 1;
          }
        }
      }
      if (splitter !== null) await splitter.write(chunk.subarray(from));
      position += chunk.length;
      if (chunk.length > 0) lastByte = chunk[chunk.length - 1];
    }
    await piping;
    if (splitter !== null) objects = await splitter.finish();
  } catch (error) {
    await splitter?.abort();
    throw error;
  }
  if (lastByte !== 0x0a) lines++;
  const shards: ShardSpec[] = [];
  for (let index = 0, startLine = 0; startLine < lines; index++, startLine += shardLines) {
    const endLine = Math.min(lines, startLine + shardLines);
    if (!gzip) {
      shards.push({ index, startLine, endLine, startByte: starts[index], endByte: index + 1 < starts.length ? starts[index + 1] : bytes, object: null });
      continue;
    }
    const object = objects[index];
    shards.push(object === undefined ? { index, startLine, endLine, startByte: null, endByte: null, object: null } : { index, startLine, endLine, startByte: 0, endByte: object.bytes, object: object.name });
  }
  return { bytes, sha256: hash.digest('hex'), gzip, lines, shards };
}

export interface ReadLinesOptions {
  startLine?: number;
  /** Exclusive; default: to the end of the input. */
  endLine?: number;
  /**
   * Byte offset of `startLine` in the source: read from there instead of scanning from the start
   * (gzip: where a gzip member starts, i.e. 0 of a shard's own object). Null: from the start.
   */
  startByte?: number | null;
  /** Exclusive end of the bytes to read (the end of line `endLine - 1`); default: the source's end. */
  endByte?: number | null;
  maxLineBytes: number;
  gzip?: boolean;
  /** Stream long lines instead of buffering them (see `LineStreamOptions`). */
  stream?: LineStreamOptions;
}

function trimCr(bytes: Uint8Array): Uint8Array {
  return bytes.length > 0 && bytes[bytes.length - 1] === 0x0d ? bytes.subarray(0, bytes.length - 1) : bytes;
}

/**
 * Yields the lines `[startLine, endLine)` of a JSONL source (a path is a local file), reading
 * only `[startByte, endByte)` when given. A line longer than `maxLineBytes` is yielded with
 * `bytes: null` and is never buffered whole.
 */
export async function* readLines(input: ByteSource | string, options: ReadLinesOptions): AsyncGenerator<RawLine> {
  const source = toByteSource(input);
  const gzip = options.gzip ?? (await isGzipSource(source));
  const startLine = options.startLine ?? 0;
  const endLine = options.endLine ?? Number.POSITIVE_INFINITY;
  const startByte = options.startByte ?? null;
  let line = startByte !== null ? startLine : 0;
  if (line >= endLine) return;
  let parts: Buffer[] = [];
  let partBytes = 0;
  let tooLong = false;
  let streaming: LineConsumer | null = null;
  const max = options.maxLineBytes;
  for await (const chunk of openChunks(source, gzip, startByte ?? 0, options.endByte ?? undefined)) {
    let from = 0;
    for (;;) {
      const newline = chunk.indexOf(0x0a, from);
      const end = newline === -1 ? chunk.length : newline;
      if (line >= startLine && !tooLong) {
        if (partBytes + (end - from) > max) {
          tooLong = true;
          parts = [];
          partBytes = 0;
          await streaming?.abort();
          streaming = null;
        } else if (end > from) {
          parts.push(chunk.subarray(from, end));
          partBytes += end - from;
          if (options.stream !== undefined && partBytes > options.stream.lineBytes) {
            streaming ??= await options.stream.open(line);
            for (const part of parts) await streaming.write(part);
            parts = [];
          }
        }
      }
      if (newline === -1) break;
      if (line >= startLine) {
        yield streaming !== null ? { line, bytes: null, streamed: true } : { line, bytes: tooLong ? null : trimCr(parts.length === 1 ? parts[0] : Buffer.concat(parts, partBytes)) };
      }
      line++;
      parts = [];
      partBytes = 0;
      tooLong = false;
      streaming = null;
      if (line >= endLine) return;
      from = newline + 1;
    }
  }
  if (streaming !== null) yield { line, bytes: null, streamed: true };
  else if ((partBytes > 0 || tooLong) && line >= startLine) yield { line, bytes: tooLong ? null : trimCr(parts.length === 1 ? parts[0] : Buffer.concat(parts, partBytes)) };
}
