/**
 * CPT rows from the corpus stage's packed shards (`corpus.bucket`: one Megatron-LM indexed dataset
 * `bucket_<L>.bin/.idx` per bucket length L, see `@xyp/bucketing`).
 *
 * In those datasets a Megatron *sequence* is one document piece (a whole document with its EOD, or
 * one cut of a longer one) and a Megatron *document* is one packed training sequence of at most L
 * tokens; padding is not stored. `readShardRows` turns packed sequences into the engine's
 * `PackedRows`:
 *
 * - Every piece gets its own document id (its Megatron sequence index, unique in the file), so
 *   `cptBatch` keeps attention and targets inside each piece and restarts positions at its start.
 * - Rows hold `R = min(L, C + 1)` tokens for a model context C (a row of R tokens is R − 1 inputs
 *   and R − 1 targets). A packed sequence of n ≤ R tokens is one row, padded to R. A longer one
 *   (only when C + 1 < L) is cut into `⌈(n − 1)/(R − 1)⌉` rows that start every R − 1 tokens, so
 *   consecutive rows share one token: the last token of row k is only a target there and only an
 *   input in row k + 1. Every next-token pair inside a piece is then trained exactly once, and a
 *   row never holds tokens of two packed sequences. A piece cut by a row boundary continues in the
 *   next row with positions restarting at 0, as a piece cut by the packer does.
 * - Padding: token `padId` (default 0) with document id `−1 − slot`, a one-token segment of its
 *   own per slot, so padding takes no loss and attends to nothing but itself.
 * - Order: packed sequences in file order, the rows of each in order; nothing is shuffled here
 *   (`trainCpt` draws rows with the trainer's seeded generator).
 * - Vocabulary: every token id must be below the model's vocabulary. The corpus stage packs with
 *   Llama-3 (vocabulary 128,256) unless told otherwise, so a model built for the byte tokenizer
 *   (260) cannot train on its shards; the error names the shards' tokenizer and the vocabulary
 *   needed.
 */
import { statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { BUCKET_STAGE, DirectoryStore, IndexedDatasetReader, StoreArtifacts, idxName, type ArtifactSource } from '@xyp/bucketing';
import { BucketManifest, bucketPrefix } from '@xyp/packing';
import { RunId, StageRefFormat, splitInstanceId } from '@xyp/contracts';
import type { PackedRows } from '@xyp/engine';
import type { ArtifactStore } from '@xyp/storage';

/** A directory of `xyp corpus bucket`, or a committed corpus.bucket stage (or instance, `corpus.bucket#byte`) of a run. */
export type ShardsRef = { kind: 'directory'; dir: string; id: string } | { kind: 'store'; runId: string; stage: string; id: string };

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Reads a shards reference: an existing directory (or a path starting with `/`, `./`, `../`) is the
 * output directory of `xyp corpus bucket`; otherwise it must be the run id of a committed
 * `corpus.bucket` stage (`<runId>` or `<runId>/corpus.bucket`), or of one of its instances
 * (`<runId>/corpus.bucket#byte`).
 */
export function parseShardsRef(text: string): ShardsRef {
  const value = text.trim();
  if (value === '') throw new Error('shards: empty; give a directory written by `xyp corpus bucket` or the run id of a corpus.bucket stage');
  if (/^(\/|\.\.?\/)/.test(value) || isDirectory(value)) return { kind: 'directory', dir: resolve(value), id: value };
  const [runId, stage, ...rest] = value.split('/');
  const instance = stage === undefined ? null : splitInstanceId(stage);
  if (rest.length > 0 || (instance && (instance.stage !== BUCKET_STAGE || !StageRefFormat.safeParse(stage).success))) {
    throw new Error(`shards "${value}": not an existing directory, and not <runId>, <runId>/${BUCKET_STAGE} or <runId>/${BUCKET_STAGE}#<instance>`);
  }
  const run = RunId.safeParse(runId);
  if (!run.success) throw new Error(`shards "${value}": not an existing directory, and "${runId}" is not a run id: ${run.error.issues[0]?.message}`);
  return { kind: 'store', runId, stage: stage ?? BUCKET_STAGE, id: stage && stage !== BUCKET_STAGE ? `${runId}/${stage}` : runId };
}

/** The files of one bucketing run, wherever they are. */
export interface BucketShards {
  /** The reference as given (directory or run id). */
  id: string;
  /** Where the files are, for messages: a directory, or `<runId>/corpus.bucket in <store>`. */
  location: string;
  source: ArtifactSource;
  /** The run's `manifest.json`; null for a directory of bare `.bin/.idx` files. */
  manifest: BucketManifest | null;
  /** Opens the indexed dataset `<prefix>.bin/.idx`. */
  openDataset(prefix: string): Promise<IndexedDatasetReader>;
}

async function readBucketManifest(source: ArtifactSource, location: string): Promise<BucketManifest | null> {
  if (!(await source.exists('manifest.json'))) return null;
  const text = Buffer.from(await source.readAll('manifest.json')).toString('utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(`${location}/manifest.json: not JSON: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  const parsed = BucketManifest.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`${location}/manifest.json: not a bucketing manifest: ${issue.path.map(String).join('.') || '(root)'}: ${issue.message}`);
  }
  return parsed.data;
}

/** Shards held by any `ArtifactSource` (an in-memory store in tests, an adapter elsewhere); datasets are read whole. */
export async function bucketShardsFromSource(source: ArtifactSource, id: string, location = id): Promise<BucketShards> {
  return { id, location, source, manifest: await readBucketManifest(source, location), openDataset: (prefix) => IndexedDatasetReader.fromSource(source, prefix) };
}

/**
 * Opens a bucketing run: a directory (datasets read on demand from their files) or the committed
 * `corpus.bucket` stage of a run in the ArtifactStore `store` (needed for a run id), whose manifest
 * lists the artifacts by name; a dataset in the store is fetched whole (the rows hold every token of
 * it anyway).
 */
export async function openBucketShards(ref: ShardsRef | string, store?: ArtifactStore): Promise<BucketShards> {
  const parsed = typeof ref === 'string' ? parseShardsRef(ref) : ref;
  if (parsed.kind === 'directory') {
    if (!isDirectory(parsed.dir)) throw new Error(`shards directory ${parsed.dir} does not exist`);
    const source = new DirectoryStore(parsed.dir);
    return {
      id: parsed.id,
      location: parsed.dir,
      source,
      manifest: await readBucketManifest(source, parsed.dir),
      openDataset: (prefix) => IndexedDatasetReader.openFiles(join(parsed.dir, prefix)),
    };
  }
  if (!store) throw new Error(`shards ${parsed.id}: the run id of a ${BUCKET_STAGE} stage, but no artifact store was given to read it from`);
  const target = store;
  const stage = await target.readManifest(parsed.runId, parsed.stage);
  const location = `${parsed.runId}/${parsed.stage} in ${target.describe()}`;
  if (!stage) throw new Error(`shards ${parsed.id}: no committed ${parsed.stage} stage for run ${parsed.runId} in ${target.describe()}`);
  const known = Object.fromEntries(stage.artifacts.map((a) => [a.name, a]));
  const source = new StoreArtifacts(target, parsed.runId, parsed.stage, known);
  return { id: parsed.id, location, source, manifest: await readBucketManifest(source, location), openDataset: (prefix) => IndexedDatasetReader.fromSource(source, prefix) };
}

/**
 * The bucket to read: `bucket` when given (it must be one of the run's), else the run's only
 * non-empty bucket. Without a manifest the length must be given.
 */
export async function chooseBucket(shards: BucketShards, bucket?: number): Promise<{ length: number; prefix: string }> {
  const { manifest } = shards;
  if (manifest) {
    const lengths = manifest.buckets.map((b) => b.length).join(', ') || 'none';
    if (bucket !== undefined) {
      const found = manifest.buckets.find((b) => b.length === bucket);
      if (!found) throw new Error(`shards ${shards.id}: no bucket of length ${bucket}; the run has buckets ${lengths}`);
      return { length: found.length, prefix: found.prefix };
    }
    const filled = manifest.buckets.filter((b) => b.megatronDocuments > 0);
    if (filled.length === 1) return { length: filled[0].length, prefix: filled[0].prefix };
    if (filled.length === 0) throw new Error(`shards ${shards.id}: every bucket is empty (buckets ${lengths})`);
    throw new Error(`shards ${shards.id}: choose a bucket length (bucket, --bucket): the run has non-empty buckets ${filled.map((b) => b.length).join(', ')}`);
  }
  if (bucket === undefined) throw new Error(`shards ${shards.id}: no manifest.json in ${shards.location}; give the bucket length (bucket, --bucket)`);
  const prefix = bucketPrefix(bucket);
  if (!(await shards.source.exists(idxName(prefix)))) throw new Error(`shards ${shards.id}: no ${idxName(prefix)} in ${shards.location}`);
  return { length: bucket, prefix };
}

/** Rows a packed sequence of n tokens takes in rows of R tokens: 1 when n ≤ R, else ⌈(n − 1)/(R − 1)⌉ (0 when empty). */
export function rowsForSequence(n: number, rowLength: number): number {
  if (n === 0) return 0;
  return n <= rowLength ? 1 : Math.ceil((n - 1) / (rowLength - 1));
}

/** `PackedRows` plus where each row came from. */
export interface OriginRows extends PackedRows {
  /** Packed sequence (Megatron document) of each row `[rows]`. */
  rowSequence: Int32Array;
  /** Offset of each row's first token in its packed sequence `[rows]`. */
  rowOffset: Int32Array;
}

/** Fills preallocated rows (the row count is known from the index before any token is read). */
class RowWriter {
  readonly tokens: Int32Array;
  readonly docIds: Int32Array;
  readonly rowSequence: Int32Array;
  readonly rowOffset: Int32Array;
  private row = 0;

  constructor(
    readonly rowLength: number,
    readonly rows: number,
    padId: number,
  ) {
    if (!Number.isInteger(rowLength) || rowLength < 2) throw new Error(`row length must be an integer of at least 2 (one input, one target), got ${rowLength}`);
    this.tokens = new Int32Array(rows * rowLength).fill(padId);
    this.docIds = new Int32Array(rows * rowLength);
    for (let i = 0; i < this.docIds.length; i++) this.docIds[i] = -1 - (i % rowLength);
    this.rowSequence = new Int32Array(rows);
    this.rowOffset = new Int32Array(rows);
  }

  /** Appends one packed sequence: piece p's tokens with document id `pieceIds[p]`. */
  add(pieces: Int32Array[], pieceIds: ArrayLike<number>, sequence: number): void {
    const R = this.rowLength;
    const n = pieces.reduce((sum, p) => sum + p.length, 0);
    const flat = new Int32Array(n);
    const ids = new Int32Array(n);
    let at = 0;
    pieces.forEach((piece, p) => {
      flat.set(piece, at);
      ids.fill(pieceIds[p], at, at + piece.length);
      at += piece.length;
    });
    const count = rowsForSequence(n, R);
    if (this.row + count > this.rows) throw new Error(`row plan exceeded: ${this.row + count} rows for ${this.rows} planned`);
    for (let k = 0; k < count; k++) {
      const start = k * (R - 1);
      const end = Math.min(n, start + R);
      const base = this.row * R;
      this.tokens.set(flat.subarray(start, end), base);
      this.docIds.set(ids.subarray(start, end), base);
      this.rowSequence[this.row] = sequence;
      this.rowOffset[this.row] = start;
      this.row += 1;
    }
  }

  finish(): OriginRows {
    if (this.row !== this.rows) throw new Error(`row plan not filled: ${this.row} of ${this.rows} rows`);
    return { rowLength: this.rowLength, tokens: this.tokens, docIds: this.docIds, rowSequence: this.rowSequence, rowOffset: this.rowOffset };
  }
}

/**
 * Rows of `rowLength` tokens from packed sequences given as their pieces (the rule in the module
 * comment); piece ids count from 0 across all sequences, in order.
 */
export function packedSequencesToRows(sequences: Int32Array[][], rowLength: number, padId = 0): OriginRows {
  const rows = sequences.reduce((sum, pieces) => sum + rowsForSequence(pieces.reduce((a, p) => a + p.length, 0), rowLength), 0);
  const writer = new RowWriter(rowLength, rows, padId);
  let nextId = 0;
  sequences.forEach((pieces, s) => {
    writer.add(
      pieces,
      pieces.map(() => nextId++),
      s,
    );
  });
  return writer.finish();
}

export interface ShardRowsOptions {
  /** Bucket length L to read; may be left out when the run has one non-empty bucket. */
  bucket?: number;
  /** Model context C: rows hold `min(L, C + 1)` tokens. */
  context: number;
  /** Model vocabulary: every token id must be below it. Unset: not checked (see `maxTokenId`). */
  vocabSize?: number;
  /** Read only the first N packed sequences of the bucket (file order). */
  maxSequences?: number;
  /** Token id of padding (masked out). Default 0. */
  padId?: number;
}

export interface ShardRows extends OriginRows {
  /** Bucket length L. */
  bucket: number;
  /** Dataset prefix (`bucket_<L>`). */
  prefix: string;
  /** Packed sequences read (Megatron documents). */
  packedSequences: number;
  /** Pieces read (Megatron sequences). */
  pieces: number;
  /** Tokens read, padding excluded. */
  tokenCount: number;
  maxTokenId: number;
  /** The tokenizer the run names in its manifest; null without one. */
  tokenizer: BucketManifest['tokenizer'] | null;
}

function tokenizerWords(shards: BucketShards): string {
  const t = shards.manifest?.tokenizer;
  return t ? `tokenizer ${t.name}, vocabulary ${t.vocabSize}` : 'no manifest.json, tokenizer unknown';
}

/** Reads one bucket of a bucketing run into CPT rows (see the module comment for the rules). */
export async function readShardRows(shards: BucketShards, options: ShardRowsOptions): Promise<ShardRows> {
  const { context, vocabSize, padId = 0 } = options;
  if (!Number.isInteger(context) || context < 1) throw new Error(`shards ${shards.id}: context must be a positive integer, got ${context}`);
  if (options.maxSequences !== undefined && !(Number.isInteger(options.maxSequences) && options.maxSequences > 0)) {
    throw new Error(`shards ${shards.id}: maxSequences must be a positive integer, got ${options.maxSequences}`);
  }
  if (vocabSize !== undefined && !(padId >= 0 && padId < vocabSize)) throw new Error(`shards ${shards.id}: pad id ${padId} is outside the model vocabulary of ${vocabSize}`);
  const declared = shards.manifest?.tokenizer;
  if (vocabSize !== undefined && declared && declared.vocabSize > vocabSize) {
    throw new Error(
      `shards ${shards.id} were packed with tokenizer ${declared.name} (vocabulary ${declared.vocabSize}); the model's vocabulary of ${vocabSize} is too small: use a model with vocabSize ≥ ${declared.vocabSize}`,
    );
  }
  const { length: L, prefix } = await chooseBucket(shards, options.bucket);
  const R = Math.min(L, context + 1);
  const reader = await shards.openDataset(prefix);
  try {
    const documents = Math.min(reader.documentCount, options.maxSequences ?? Number.POSITIVE_INFINITY);
    if (documents === 0) throw new Error(`shards ${shards.id}: ${prefix} holds no packed sequences`);
    const lengths = reader.index.sequenceLengths;
    let rows = 0;
    for (let d = 0; d < documents; d++) {
      const { start, end } = reader.documentRange(d);
      let n = 0;
      for (let i = start; i < end; i++) n += lengths[i];
      if (n > L) throw new Error(`shards ${shards.id}: ${prefix}: packed sequence ${d} holds ${n} tokens, more than its bucket length ${L}`);
      rows += rowsForSequence(n, R);
    }
    const writer = new RowWriter(R, rows, padId);
    let pieces = 0;
    let tokenCount = 0;
    let maxTokenId = -1;
    for (let d = 0; d < documents; d++) {
      const { start, end } = reader.documentRange(d);
      const read: Int32Array[] = [];
      const ids: number[] = [];
      for (let i = start; i < end; i++) {
        const piece = await reader.sequence(i);
        for (let t = 0; t < piece.length; t++) {
          const id = piece[t];
          if (id > maxTokenId) maxTokenId = id;
          if (id < 0 || (vocabSize !== undefined && id >= vocabSize)) {
            const where = `shards ${shards.id}: ${prefix}: token id ${id} (packed sequence ${d}, piece ${i}, token ${t})`;
            if (id < 0) throw new Error(`${where} is negative: the dataset is damaged`);
            throw new Error(`${where} is outside the model vocabulary of ${vocabSize} (${tokenizerWords(shards)})`);
          }
        }
        read.push(piece);
        ids.push(i);
        tokenCount += piece.length;
      }
      pieces += end - start;
      writer.add(read, ids, d);
    }
    return {
      ...writer.finish(),
      bucket: L,
      prefix,
      packedSequences: documents,
      pieces,
      tokenCount,
      maxTokenId,
      tokenizer: declared ?? null,
    };
  } finally {
    await reader.close();
  }
}
