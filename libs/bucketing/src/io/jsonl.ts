import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type { ShardSpec } from '../core/jobs';

/**
 * Streaming JSONL input: a file, optionally gzip-compressed (detected by its magic bytes), read
 * in fixed-size chunks and cut into lines without ever holding more than one chunk plus one
 * line (itself capped by `maxLineBytes`). Lines are numbered from 0 here; rejects report them
 * 1-based.
 */

/** One input line without its `\n` (and without a trailing `\r`); `bytes` is null when the line was too long. */
export interface RawLine {
  line: number;
  bytes: Uint8Array | null;
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

/** Raw file bytes from `startByte`, or the decompressed stream when gzip (then `startByte` must be 0). */
async function* openChunks(path: string, gzip: boolean, startByte: number): AsyncIterable<Buffer> {
  const file = createReadStream(path, { start: startByte, highWaterMark: CHUNK_BYTES });
  if (!gzip) {
    yield* file as AsyncIterable<Buffer>;
    return;
  }
  if (startByte !== 0) throw new Error('gzip input cannot be read from a byte offset');
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

/**
 * Counts the lines of the input and cuts them into shards of `shardLines` lines, hashing the
 * file on the way. One sequential pass; for plain files each shard also gets the byte offset of
 * its first line. A last line without `\n` counts as a line.
 */
export async function planInput(path: string, shardLines: number): Promise<InputPlan> {
  if (!Number.isInteger(shardLines) || shardLines < 1) throw new Error(`shardLines must be a positive integer, got ${shardLines}`);
  const gzip = await isGzipFile(path);
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
  const piping = pipeline([createReadStream(path, { highWaterMark: CHUNK_BYTES }), ...stages]);
  // A read error surfaces in the loop below; this only keeps it from also counting as unhandled.
  piping.catch(() => undefined);
  const starts: number[] = [0];
  let lines = 0;
  let position = 0;
  let lastByte = 0x0a;
  for await (const chunk of output) {
    for (let i = chunk.indexOf(0x0a); i !== -1; i = chunk.indexOf(0x0a, i + 1)) {
      lines++;
      if (lines % shardLines === 0) starts.push(position + i + 1);
    }
    position += chunk.length;
    if (chunk.length > 0) lastByte = chunk[chunk.length - 1];
  }
  await piping;
  if (lastByte !== 0x0a) lines++;
  const shards: ShardSpec[] = [];
  for (let index = 0, startLine = 0; startLine < lines; index++, startLine += shardLines) {
    shards.push({ index, startLine, endLine: Math.min(lines, startLine + shardLines), startByte: gzip ? null : starts[index] });
  }
  return { bytes, sha256: hash.digest('hex'), gzip, lines, shards };
}

export interface ReadLinesOptions {
  startLine?: number;
  /** Exclusive; default: to the end of the input. */
  endLine?: number;
  /** Byte offset of `startLine` (plain files only): seek there instead of scanning from the start. */
  startByte?: number | null;
  maxLineBytes: number;
  gzip?: boolean;
}

function trimCr(bytes: Uint8Array): Uint8Array {
  return bytes.length > 0 && bytes[bytes.length - 1] === 0x0d ? bytes.subarray(0, bytes.length - 1) : bytes;
}

/**
 * Yields the lines `[startLine, endLine)` of a JSONL file. A line longer than `maxLineBytes`
 * is yielded with `bytes: null` and is never buffered whole.
 */
export async function* readLines(path: string, options: ReadLinesOptions): AsyncGenerator<RawLine> {
  const gzip = options.gzip ?? (await isGzipFile(path));
  const startLine = options.startLine ?? 0;
  const endLine = options.endLine ?? Number.POSITIVE_INFINITY;
  const startByte = !gzip && options.startByte !== undefined && options.startByte !== null ? options.startByte : null;
  let line = startByte !== null ? startLine : 0;
  if (line >= endLine) return;
  let parts: Buffer[] = [];
  let partBytes = 0;
  let tooLong = false;
  const max = options.maxLineBytes;
  for await (const chunk of openChunks(path, gzip, startByte ?? 0)) {
    let from = 0;
    for (;;) {
      const newline = chunk.indexOf(0x0a, from);
      const end = newline === -1 ? chunk.length : newline;
      if (line >= startLine && !tooLong) {
        if (partBytes + (end - from) > max) {
          tooLong = true;
          parts = [];
          partBytes = 0;
        } else if (end > from) {
          parts.push(chunk.subarray(from, end));
          partBytes += end - from;
        }
      }
      if (newline === -1) break;
      if (line >= startLine) {
        yield { line, bytes: tooLong ? null : trimCr(parts.length === 1 ? parts[0] : Buffer.concat(parts, partBytes)) };
      }
      line++;
      parts = [];
      partBytes = 0;
      tooLong = false;
      if (line >= endLine) return;
      from = newline + 1;
    }
  }
  if ((partBytes > 0 || tooLong) && line >= startLine) yield { line, bytes: tooLong ? null : trimCr(parts.length === 1 ? parts[0] : Buffer.concat(parts, partBytes)) };
}
