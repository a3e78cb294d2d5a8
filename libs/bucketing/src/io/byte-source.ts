import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';

/**
 * Where the JSONL readers get their bytes: a local file here, an artifact-store object in
 * `src/stage` (`storeByteSource`, a ranged GET on S3). A reader asks for exactly the bytes it
 * needs, so a shard reads only `[startByte, endByte)` of its input, wherever the input lives.
 */
export interface ByteSource {
  /** What the bytes are (a path, a store key), for messages and the manifest's input name. */
  readonly name: string;
  size(): Promise<number>;
  /**
   * Streams bytes `[start, end)`; `end` defaults to the end of the source. Fails when the
   * range is not within the source. A consumer that stops early releases the read.
   */
  read(start: number, end?: number): AsyncIterable<Uint8Array>;
}

const CHUNK_BYTES = 1 << 20;

/** A local file; `read` seeks with a file offset. */
export function fileByteSource(path: string): ByteSource {
  return {
    name: path,
    size: async () => (await stat(path)).size,
    async *read(start: number, end?: number): AsyncIterable<Uint8Array> {
      if (!Number.isSafeInteger(start) || start < 0 || (end !== undefined && (!Number.isSafeInteger(end) || end < start))) {
        throw new Error(`${path}: invalid byte range [${start}, ${end ?? 'end'})`);
      }
      const size = (await stat(path)).size;
      if ((end ?? size) > size || start > size) throw new Error(`${path}: byte range [${start}, ${end ?? 'end'}) is past the end of the file (${size} bytes)`);
      if (start === (end ?? size)) return;
      // createReadStream's `end` is inclusive.
      yield* createReadStream(path, { start, end: end === undefined ? undefined : end - 1, highWaterMark: CHUNK_BYTES }) as AsyncIterable<Buffer>;
    },
  };
}

/** Bytes in memory (tests, small inputs). */
export function bufferByteSource(bytes: Uint8Array, name = 'buffer'): ByteSource {
  return {
    name,
    size: async () => bytes.byteLength,
    async *read(start: number, end?: number): AsyncIterable<Uint8Array> {
      if (!Number.isSafeInteger(start) || start < 0 || (end ?? bytes.byteLength) > bytes.byteLength || (end !== undefined && end < start)) {
        throw new Error(`${name}: invalid byte range [${start}, ${end ?? 'end'}) of ${bytes.byteLength} bytes`);
      }
      for (let from = start, to = end ?? bytes.byteLength; from < to; from += CHUNK_BYTES) yield bytes.subarray(from, Math.min(to, from + CHUNK_BYTES));
    },
  };
}

/** A path is a local file. */
export function toByteSource(input: ByteSource | string): ByteSource {
  return typeof input === 'string' ? fileByteSource(input) : input;
}

/** Whether the source starts with gzip's magic bytes (reads at most two bytes). */
export async function isGzipSource(source: ByteSource): Promise<boolean> {
  const size = await source.size();
  if (size < 2) return false;
  const magic: number[] = [];
  for await (const chunk of source.read(0, 2)) magic.push(...chunk);
  return hasGzipMagic(Uint8Array.from(magic));
}

function hasGzipMagic(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/**
 * Looks at the first bytes of a stream for gzip's magic and hands back the whole stream, so a
 * single read serves both (no extra request for the magic bytes).
 */
export async function peekGzip(stream: AsyncIterable<Uint8Array>): Promise<{ gzip: boolean; chunks: AsyncIterable<Uint8Array> }> {
  const iterator = stream[Symbol.asyncIterator]();
  const head: Uint8Array[] = [];
  let headBytes = 0;
  let ended = false;
  try {
    while (headBytes < 2) {
      const next = await iterator.next();
      if (next.done) {
        ended = true;
        break;
      }
      head.push(next.value);
      headBytes += next.value.length;
    }
  } catch (error) {
    await iterator.return?.();
    throw error;
  }
  const first = head.length === 1 ? head[0] : Buffer.concat(head, headBytes);
  async function* chunks(): AsyncGenerator<Uint8Array> {
    try {
      if (first.length > 0) yield first;
      while (!ended) {
        const next = await iterator.next();
        if (next.done) return;
        yield next.value;
      }
    } finally {
      await iterator.return?.();
    }
  }
  return { gzip: hasGzipMagic(first), chunks: chunks() };
}
