/**
 * Megatron-LM indexed dataset, reader and writer: the byte layout of
 * megatron/core/datasets/indexed_dataset.py (`_IndexWriter`, `IndexedDatasetBuilder`,
 * `_IndexReader`), matched field for field.
 *
 * `<prefix>.bin`: the tokens of every sequence back to back, little-endian, in the dtype that
 * the `.idx` names. Nothing else (no header, no padding).
 *
 * `<prefix>.idx`, little-endian throughout:
 *
 *   offset     size       field
 *   0          9          magic b"MMIDIDX\x00\x00"
 *   9          8   <Q     version, always 1
 *   17         1   <B     dtype code: 1 uint8, 2 int8, 3 int16, 4 int32, 5 int64, 6 float64,
 *                         7 float32, 8 uint16 (tokens: uint16 when vocab < 65,500, else int32)
 *   18         8   <Q     S, the sequence count
 *   26         8   <Q     D, the length of document_indices, i.e. number of documents + 1
 *   34         4*S int32  sequence_lengths: tokens per sequence
 *   34+4S      8*S int64  sequence_pointers: byte offset of each sequence in .bin
 *   34+12S     8*D int64  document_indices: 0 first, then the exclusive end (a sequence index) of
 *                         each document; the last entry is S (upstream asserts
 *                         `sequence_lengths.shape[0] == document_indices[-1]`)
 *   (multimodal datasets append int8 sequence_modes; never written here)
 *
 * How the bucketing pipeline maps its data onto this layout:
 *
 * - Megatron *sequence* = one document piece: a whole input document (with its end-of-document
 *   token when enabled) or one cut of a document longer than the largest bucket.
 * - Megatron *document* = one packed training sequence of the file's bucket length L: document
 *   d is sequences [document_indices[d], document_indices[d+1]).
 * - Padding is not stored. A trainer builds each sample from one Megatron document, pads it to
 *   L, restarts position ids at every sequence start and masks attention across sequences (and
 *   to padding), so packed documents never attend to each other.
 */
import { endianness } from 'node:os';
import { open, type FileHandle } from 'node:fs/promises';
import { Growable, type TokenDtype } from '@xyp/packing';
import type { ArtifactSink, ArtifactSource, WrittenFile } from './sink';
import { HashingWriter } from './sink';

export const INDEX_MAGIC = Uint8Array.from([0x4d, 0x4d, 0x49, 0x44, 0x49, 0x44, 0x58, 0x00, 0x00]);
export const INDEX_VERSION = 1;
export const INDEX_HEADER_BYTES = 34;

/** Megatron `DType` codes. */
export const DTYPE_CODES = { uint8: 1, int8: 2, int16: 3, int32: 4, int64: 5, float64: 6, float32: 7, uint16: 8 } as const;
export type MegatronDtype = keyof typeof DTYPE_CODES;
const DTYPE_SIZES: Record<MegatronDtype, number> = { uint8: 1, int8: 1, int16: 2, int32: 4, int64: 8, float64: 8, float32: 4, uint16: 2 };

function dtypeOfCode(code: number): MegatronDtype {
  const entry = Object.entries(DTYPE_CODES).find(([, value]) => value === code);
  if (entry === undefined) throw new Error(`unknown Megatron dtype code ${code}`);
  return entry[0] as MegatronDtype;
}

function assertLittleEndian(): void {
  if (endianness() !== 'LE') throw new Error('the indexed dataset code assumes a little-endian host');
}

export function binName(prefix: string): string {
  return `${prefix}.bin`;
}
export function idxName(prefix: string): string {
  return `${prefix}.idx`;
}

/** The 34-byte `.idx` header. */
export function encodeIndexHeader(dtype: MegatronDtype, sequenceCount: number, documentIndexCount: number): Uint8Array {
  const header = new Uint8Array(INDEX_HEADER_BYTES);
  const view = new DataView(header.buffer);
  header.set(INDEX_MAGIC, 0);
  view.setBigUint64(9, BigInt(INDEX_VERSION), true);
  view.setUint8(17, DTYPE_CODES[dtype]);
  view.setBigUint64(18, BigInt(sequenceCount), true);
  view.setBigUint64(26, BigInt(documentIndexCount), true);
  return header;
}

export interface MegatronIndex {
  dtype: MegatronDtype;
  sequenceLengths: Int32Array;
  sequencePointers: BigInt64Array;
  /** `documentIndices[0] = 0`, `documentIndices[D-1] = S`. */
  documentIndices: BigInt64Array;
}

/** Copies `length` bytes at `offset` into a fresh, aligned buffer. */
function aligned(bytes: Uint8Array, offset: number, length: number): ArrayBuffer {
  const out = new Uint8Array(length);
  out.set(bytes.subarray(offset, offset + length));
  return out.buffer;
}

/** Parses and checks a whole `.idx` file. */
export function parseIndex(bytes: Uint8Array): MegatronIndex {
  assertLittleEndian();
  if (bytes.byteLength < INDEX_HEADER_BYTES) throw new Error(`index too short: ${bytes.byteLength} bytes`);
  for (let i = 0; i < INDEX_MAGIC.length; i++) if (bytes[i] !== INDEX_MAGIC[i]) throw new Error('bad index header (not MMIDIDX)');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getBigUint64(9, true);
  if (version !== BigInt(INDEX_VERSION)) throw new Error(`bad index version ${version}`);
  const dtype = dtypeOfCode(view.getUint8(17));
  const sequenceCount = Number(view.getBigUint64(18, true));
  const documentIndexCount = Number(view.getBigUint64(26, true));
  const expected = INDEX_HEADER_BYTES + 12 * sequenceCount + 8 * documentIndexCount;
  if (bytes.byteLength < expected) throw new Error(`index truncated: ${bytes.byteLength} bytes, header implies ${expected}`);
  let offset = INDEX_HEADER_BYTES;
  const sequenceLengths = new Int32Array(aligned(bytes, offset, 4 * sequenceCount));
  offset += 4 * sequenceCount;
  const sequencePointers = new BigInt64Array(aligned(bytes, offset, 8 * sequenceCount));
  offset += 8 * sequenceCount;
  const documentIndices = new BigInt64Array(aligned(bytes, offset, 8 * documentIndexCount));
  if (documentIndexCount < 1 || documentIndices[0] !== 0n || Number(documentIndices[documentIndexCount - 1]) !== sequenceCount) {
    throw new Error('document_indices must start at 0 and end at the sequence count');
  }
  return { dtype, sequenceLengths, sequencePointers, documentIndices };
}

/** Sequence pointers (byte offsets) from lengths, as `_IndexWriter._sequence_pointers` computes them. */
function pointersOf(lengths: Int32Array, itemSize: number, start: number): BigInt64Array {
  const pointers = new BigInt64Array(lengths.length);
  let pointer = start;
  for (let i = 0; i < lengths.length; i++) {
    pointers[i] = BigInt(pointer);
    pointer += lengths[i] * itemSize;
  }
  return pointers;
}

function asBytes(array: Int32Array | BigInt64Array | Uint16Array | Float64Array): Uint8Array {
  return new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
}

export interface IndexedDatasetSummary {
  prefix: string;
  sequences: number;
  documents: number;
  tokens: number;
  files: WrittenFile[];
}

/**
 * Streams one indexed dataset to a sink. Tokens are copied into fixed-size chunks of the token
 * dtype and handed to the sink as each chunk fills; `drain()` waits for those writes, so memory
 * is one chunk plus whatever the caller lets pile up between drains. The index (4 bytes per
 * sequence, 8 per document) stays in memory until `close()`; callers bound it by the size of
 * what one writer receives (one shard).
 */
export class IndexedDatasetWriter {
  private readonly lengths = new Growable((n) => new Int32Array(n));
  private readonly documentIndices = new Growable((n) => new Float64Array(n));
  private chunk: Int32Array | Uint16Array;
  private used = 0;
  private pending: Promise<void> = Promise.resolve();
  private tokenCount = 0;

  private constructor(
    readonly prefix: string,
    readonly dtype: TokenDtype,
    private readonly sink: ArtifactSink,
    private readonly bin: HashingWriter,
    private readonly chunkTokens: number,
    private readonly hash: boolean,
  ) {
    this.chunk = this.newChunk();
    this.documentIndices.push(0);
  }

  /** `chunkTokens`: tokens per write to the sink; `hash: false` skips SHA-256 (scratch output). */
  static async create(
    sink: ArtifactSink,
    prefix: string,
    dtype: TokenDtype,
    options: { chunkTokens?: number; hash?: boolean } = {},
  ): Promise<IndexedDatasetWriter> {
    assertLittleEndian();
    const hash = options.hash ?? true;
    return new IndexedDatasetWriter(prefix, dtype, sink, await HashingWriter.create(sink, binName(prefix), { hash }), options.chunkTokens ?? 1 << 18, hash);
  }

  get sequenceCount(): number {
    return this.lengths.length;
  }

  /** Megatron documents completed so far. */
  get documentCount(): number {
    return this.documentIndices.length - 1;
  }

  private newChunk(): Int32Array | Uint16Array {
    return this.dtype === 'int32' ? new Int32Array(this.chunkTokens) : new Uint16Array(this.chunkTokens);
  }

  private flushChunk(): void {
    if (this.used === 0) return;
    const bytes = asBytes(this.chunk.subarray(0, this.used));
    this.pending = this.pending.then(() => this.bin.write(bytes));
    // Marks a failed write as handled here; drain() and close() still reject with it.
    this.pending.catch(() => undefined);
    this.chunk = this.newChunk();
    this.used = 0;
  }

  /** Appends one Megatron sequence (a document piece). uint16 output keeps the low 16 bits of each id. */
  addSequence(tokens: Int32Array): void {
    this.lengths.push(tokens.length);
    this.tokenCount += tokens.length;
    let offset = 0;
    while (offset < tokens.length) {
      const take = Math.min(tokens.length - offset, this.chunkTokens - this.used);
      this.chunk.set(tokens.subarray(offset, offset + take), this.used);
      this.used += take;
      offset += take;
      if (this.used === this.chunkTokens) this.flushChunk();
    }
  }

  /** Ends the current Megatron document (a packed training sequence). */
  endDocument(): void {
    this.documentIndices.push(this.lengths.length);
  }

  /** Waits for the chunks handed to the sink so far. */
  drain(): Promise<void> {
    return this.pending;
  }

  /** Drops the dataset (on failure): nothing becomes visible under its names. */
  async abort(): Promise<void> {
    await this.pending.catch(() => undefined);
    await this.bin.abort();
  }

  async close(): Promise<IndexedDatasetSummary> {
    if (this.documentIndices.at(this.documentIndices.length - 1) !== this.lengths.length) {
      throw new Error(`${this.prefix}: sequences after the last endDocument()`);
    }
    this.flushChunk();
    await this.pending;
    const binFile = await this.bin.close();
    const lengths = this.lengths.view();
    const idx = await HashingWriter.create(this.sink, idxName(this.prefix), { hash: this.hash });
    await idx.write(encodeIndexHeader(this.dtype, lengths.length, this.documentIndices.length));
    await idx.write(asBytes(lengths));
    await idx.write(asBytes(pointersOf(lengths, DTYPE_SIZES[this.dtype], 0)));
    await idx.write(asBytes(BigInt64Array.from(this.documentIndices.view(), (v) => BigInt(v))));
    const idxFile = await idx.close();
    return { prefix: this.prefix, sequences: lengths.length, documents: this.documentCount, tokens: this.tokenCount, files: [binFile, idxFile] };
  }
}

/**
 * Writes the `.idx` of the concatenation of `parts` (in order), streaming section by section:
 * each part's index is read once per section, so memory is one part's index at a time. Same
 * result as Megatron's `IndexedDatasetBuilder.add_index` over the parts.
 */
export async function writeConcatenatedIndex(
  source: ArtifactSource,
  parts: readonly string[],
  sink: ArtifactSink,
  prefix: string,
  dtype: TokenDtype,
): Promise<{ file: WrittenFile; sequences: number; documents: number; tokens: number }> {
  const readIndex = async (part: string) => {
    const index = parseIndex(await source.readAll(idxName(part)));
    if (index.dtype !== dtype) throw new Error(`${part}: dtype ${index.dtype}, expected ${dtype}`);
    return index;
  };
  let sequences = 0;
  let documentIndexCount = 1;
  let tokens = 0;
  for (const part of parts) {
    const index = await readIndex(part);
    sequences += index.sequenceLengths.length;
    documentIndexCount += index.documentIndices.length - 1;
    for (const length of index.sequenceLengths) tokens += length;
  }
  const idx = await HashingWriter.create(sink, idxName(prefix));
  await idx.write(encodeIndexHeader(dtype, sequences, documentIndexCount));
  for (const part of parts) await idx.write(asBytes((await readIndex(part)).sequenceLengths));
  let pointer = 0;
  for (const part of parts) {
    const lengths = (await readIndex(part)).sequenceLengths;
    await idx.write(asBytes(pointersOf(lengths, DTYPE_SIZES[dtype], pointer)));
    for (const length of lengths) pointer += length * DTYPE_SIZES[dtype];
  }
  await idx.write(asBytes(new BigInt64Array([0n])));
  let offset = 0n;
  for (const part of parts) {
    const index = await readIndex(part);
    const shifted = index.documentIndices.slice(1);
    for (let i = 0; i < shifted.length; i++) shifted[i] += offset;
    await idx.write(asBytes(shifted));
    offset += BigInt(index.sequenceLengths.length);
  }
  return { file: await idx.close(), sequences, documents: documentIndexCount - 1, tokens };
}

/** Concatenates indexed datasets into one: `.bin` files copied in order, `.idx` via `writeConcatenatedIndex`. */
export async function concatIndexedDatasets(
  source: ArtifactSource,
  parts: readonly string[],
  sink: ArtifactSink,
  prefix: string,
  dtype: TokenDtype,
): Promise<IndexedDatasetSummary> {
  const bin = await HashingWriter.create(sink, binName(prefix));
  for (const part of parts) for await (const chunk of source.read(binName(part))) await bin.write(chunk);
  const binFile = await bin.close();
  const index = await writeConcatenatedIndex(source, parts, sink, prefix, dtype);
  return { prefix, sequences: index.sequences, documents: index.documents, tokens: index.tokens, files: [binFile, index.file] };
}

/** Random access to the bytes of a `.bin`. */
export interface RandomAccess {
  read(offset: number, length: number): Promise<Uint8Array>;
  close(): Promise<void>;
}

class FileRandomAccess implements RandomAccess {
  constructor(private readonly handle: FileHandle) {}

  async read(offset: number, length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.handle.read(out, done, length - done, offset + done);
      if (bytesRead === 0) throw new Error(`unexpected end of .bin at byte ${offset + done}`);
      done += bytesRead;
    }
    return out;
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}

/**
 * Reads an indexed dataset: Megatron sequences (document pieces) by index, and Megatron
 * documents (packed training sequences) as the list of their pieces, the boundaries a trainer
 * needs for its cross-document attention mask.
 */
export class IndexedDatasetReader {
  private constructor(
    readonly index: MegatronIndex,
    private readonly bin: RandomAccess,
  ) {}

  /** Opens `<pathPrefix>.idx` (read whole) and `<pathPrefix>.bin` (read on demand). */
  static async openFiles(pathPrefix: string): Promise<IndexedDatasetReader> {
    const idxHandle = await open(idxName(pathPrefix), 'r');
    let index: MegatronIndex;
    try {
      index = parseIndex(await idxHandle.readFile());
    } finally {
      await idxHandle.close();
    }
    return new IndexedDatasetReader(index, new FileRandomAccess(await open(binName(pathPrefix), 'r')));
  }

  /** Reads both files of `prefix` whole from a source (small datasets, tests). */
  static async fromSource(source: ArtifactSource, prefix: string): Promise<IndexedDatasetReader> {
    const index = parseIndex(await source.readAll(idxName(prefix)));
    const bin = await source.readAll(binName(prefix));
    return new IndexedDatasetReader(index, {
      read: async (offset, length) => {
        if (offset + length > bin.byteLength) throw new Error(`unexpected end of .bin at byte ${bin.byteLength}`);
        return bin.subarray(offset, offset + length);
      },
      close: async () => undefined,
    });
  }

  get dtype(): MegatronDtype {
    return this.index.dtype;
  }

  get sequenceCount(): number {
    return this.index.sequenceLengths.length;
  }

  /** Megatron documents (packed sequences): `document_indices.length - 1`. */
  get documentCount(): number {
    return this.index.documentIndices.length - 1;
  }

  /** Sequence index range `[start, end)` of Megatron document `d`. */
  documentRange(d: number): { start: number; end: number } {
    if (d < 0 || d >= this.documentCount) throw new RangeError(`document ${d} out of range`);
    return { start: Number(this.index.documentIndices[d]), end: Number(this.index.documentIndices[d + 1]) };
  }

  /** Tokens of Megatron sequence `i` (one document piece), widened to Int32Array. */
  async sequence(i: number): Promise<Int32Array> {
    if (i < 0 || i >= this.sequenceCount) throw new RangeError(`sequence ${i} out of range`);
    const length = this.index.sequenceLengths[i];
    const size = DTYPE_SIZES[this.index.dtype];
    const bytes = await this.bin.read(Number(this.index.sequencePointers[i]), length * size);
    const buffer = aligned(bytes, 0, bytes.byteLength);
    switch (this.index.dtype) {
      case 'int32':
        return new Int32Array(buffer);
      case 'uint16':
        return Int32Array.from(new Uint16Array(buffer));
      default:
        throw new Error(`token dtype ${this.index.dtype} is not supported by this reader`);
    }
  }

  /** The pieces of Megatron document `d`, in order. */
  async document(d: number): Promise<Int32Array[]> {
    const { start, end } = this.documentRange(d);
    const pieces: Int32Array[] = [];
    for (let i = start; i < end; i++) pieces.push(await this.sequence(i));
    return pieces;
  }

  close(): Promise<void> {
    return this.bin.close();
  }
}
