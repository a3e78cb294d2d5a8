/**
 * Per-category Megatron datasets from one bucketing run, for trainers that blend datasets by
 * weight (Megatron-LM `--data-path w1 prefix1 w2 prefix2 …`) rather than reading the category
 * sidecar.
 *
 * For every bucket `bucket_<L>` of the run and every category that has packed sequences in it,
 * `<prefix>.cat-<slug>.bin/.idx` holds exactly the Megatron documents (packed sequences) whose
 * `bucket_<L>.categories.u16` entry names that category: the same token bytes in the same dtype,
 * the same pieces (Megatron sequences) and the same document boundaries, in file order. Empty
 * datasets are not written (Megatron cannot map an empty `.bin`). `categories.json`, written last,
 * indexes them: `{category: {buckets: {L: {prefix, documents, sequences, tokens}}}}`, one entry per
 * category of the run's manifest (`buckets: {}` for a category with no sequence of its own, which
 * `categoryMixing: tails` can leave), `prefix` relative to the output directory.
 *
 * Memory: one input dataset at a time and never its tokens — the `.idx` and sidecar are read whole
 * (12 bytes per piece, 10 per packed sequence), the `.bin` is streamed in the source's chunks, and
 * each category's writer holds one output chunk plus its own index.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { BucketManifest, CATEGORY_SIDECAR_SUFFIX, decodeCategorySidecar, type TokenDtype } from '@xyp/packing';
import { IndexedDatasetWriter, binName, idxName, parseIndex, type IndexedDatasetSummary } from './indexed-dataset';
import { DirectoryStore, writeArtifact, type ArtifactSink, type ArtifactSource, type WrittenFile } from './sink';

/** Name of the index file of a split. */
export const CATEGORY_SPLIT_INDEX = 'categories.json';

/** One category's dataset in one bucket. `prefix` is relative to the split's directory. */
export const CategoryBucketEntry = z.strictObject({
  prefix: z.string().min(1),
  documents: z.number().int().nonnegative(),
  sequences: z.number().int().nonnegative(),
  tokens: z.number().int().nonnegative(),
});
export type CategoryBucketEntry = z.infer<typeof CategoryBucketEntry>;

/** `categories.json`: category → bucket length (decimal string) → its dataset. */
export const CategorySplitIndex = z.record(
  z.string().min(1),
  z.strictObject({ buckets: z.record(z.string().regex(/^[1-9][0-9]*$/, 'a bucket length'), CategoryBucketEntry) }),
);
export type CategorySplitIndex = z.infer<typeof CategorySplitIndex>;

const SAFE_SLUG = /^[a-z0-9][a-z0-9_-]{0,63}$/;

/**
 * File-name part of a category: the name itself when it is already lower-case ASCII letters,
 * digits, `-` and `_` (at most 64, starting with a letter or digit); otherwise its safe characters
 * (lower-cased, others turned into `-`, at most 40) followed by `-` and the first 8 hex digits of
 * the SHA-256 of its UTF-8 name (`金融` → `x-<hash>`, `News Wire` → `news-wire-<hash>`). Depends on the
 * name only, so it is the same in every run.
 */
export function categorySlug(category: string): string {
  if (category.length === 0) throw new Error('category slug: empty category name');
  if (SAFE_SLUG.test(category)) return category;
  const base = category
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, '-')
    .replace(/^[-_]+|[-_]+$/g, '')
    .slice(0, 40)
    .replace(/[-_]+$/, '');
  const hash = createHash('sha256').update(category, 'utf8').digest('hex').slice(0, 8);
  return `${base === '' ? 'x' : base}-${hash}`;
}

/** Dataset prefix of one category in one bucket: `bucket_2048.cat-news`. */
export function categoryDatasetPrefix(bucketPrefix: string, category: string): string {
  return `${bucketPrefix}.cat-${categorySlug(category)}`;
}

export interface CategorySplitOptions {
  /** Tokens per write of each output dataset (default 65,536: 256 KiB of int32 per open category). */
  chunkTokens?: number;
  /** Called after each bucket. */
  progress?: (line: string) => void;
}

export interface CategorySplitResult {
  index: CategorySplitIndex;
  dtype: TokenDtype;
  /** Every file written, `categories.json` last. */
  files: WrittenFile[];
  /** Per bucket length: documents, sequences and tokens read. */
  buckets: Record<string, { prefix: string; documents: number; sequences: number; tokens: number }>;
}

/** Reads exactly `n` bytes at a time off a chunk stream. */
class ExactReader {
  private chunk: Uint8Array = new Uint8Array(0);
  private at = 0;
  private readonly iterator: AsyncIterator<Uint8Array>;

  constructor(
    chunks: AsyncIterable<Uint8Array>,
    private readonly name: string,
  ) {
    this.iterator = chunks[Symbol.asyncIterator]();
  }

  /** `n` bytes, in a fresh buffer (aligned for typed-array views). */
  async take(n: number): Promise<Uint8Array> {
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      if (this.at === this.chunk.byteLength) {
        const next = await this.iterator.next();
        if (next.done) throw new Error(`${this.name}: ends after ${filled} of ${n} bytes of a sequence (truncated .bin)`);
        this.chunk = next.value;
        this.at = 0;
        continue;
      }
      const take = Math.min(n - filled, this.chunk.byteLength - this.at);
      out.set(this.chunk.subarray(this.at, this.at + take), filled);
      this.at += take;
      filled += take;
    }
    return out;
  }

  /** Fails when bytes are left after the last sequence. */
  async end(): Promise<void> {
    if (this.at < this.chunk.byteLength) throw new Error(`${this.name}: bytes left after the last sequence`);
    for (;;) {
      const next = await this.iterator.next();
      if (next.done) return;
      if (next.value.byteLength > 0) throw new Error(`${this.name}: bytes left after the last sequence`);
    }
  }

  async close(): Promise<void> {
    await this.iterator.return?.();
  }
}

async function readManifest(source: ArtifactSource, where: string): Promise<BucketManifest> {
  if (!(await source.exists('manifest.json'))) throw new Error(`${where}: no manifest.json (not the output of a bucketing run, or the run did not finish)`);
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(await source.readAll('manifest.json')).toString('utf8'));
  } catch (error) {
    throw new Error(`${where}/manifest.json: not JSON: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  const parsed = BucketManifest.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`${where}/manifest.json: not a bucketing manifest: ${issue.path.map(String).join('.') || '(root)'}: ${issue.message}`);
  }
  return parsed.data;
}

/** Splits one bucket's dataset; returns the per-category summaries. */
async function splitBucket(
  source: ArtifactSource,
  sink: ArtifactSink,
  prefix: string,
  categories: readonly string[],
  dtype: TokenDtype,
  chunkTokens: number,
): Promise<{ summaries: Map<string, IndexedDatasetSummary>; documents: number; sequences: number; tokens: number }> {
  const index = parseIndex(await source.readAll(idxName(prefix)));
  if (index.dtype !== dtype) throw new Error(`${idxName(prefix)}: dtype ${index.dtype}, the manifest says ${dtype}`);
  const sidecarName = `${prefix}${CATEGORY_SIDECAR_SUFFIX}`;
  const codes = decodeCategorySidecar(await source.readAll(sidecarName));
  const documents = index.documentIndices.length - 1;
  if (codes.length !== documents) throw new Error(`${sidecarName}: ${codes.length} entries for ${documents} packed sequences in ${idxName(prefix)}`);
  const itemSize = dtype === 'int32' ? 4 : 2;
  const writers = new Map<number, IndexedDatasetWriter>();
  const reader = new ExactReader(source.read(binName(prefix)), binName(prefix));
  let pointer = 0;
  let tokens = 0;
  try {
    for (let d = 0; d < documents; d++) {
      const code = codes[d];
      if (code >= categories.length) throw new Error(`${sidecarName}: packed sequence ${d} has category code ${code}; the manifest lists ${categories.length} categories`);
      let writer = writers.get(code);
      if (writer === undefined) {
        writer = await IndexedDatasetWriter.create(sink, categoryDatasetPrefix(prefix, categories[code]), dtype, { chunkTokens });
        writers.set(code, writer);
      }
      const end = Number(index.documentIndices[d + 1]);
      for (let s = Number(index.documentIndices[d]); s < end; s++) {
        if (Number(index.sequencePointers[s]) !== pointer) throw new Error(`${idxName(prefix)}: sequence ${s} starts at byte ${index.sequencePointers[s]}, expected ${pointer} (not a contiguous .bin)`);
        const length = index.sequenceLengths[s];
        const bytes = await reader.take(length * itemSize);
        pointer += bytes.byteLength;
        tokens += length;
        writer.addSequence(dtype === 'int32' ? new Int32Array(bytes.buffer) : Int32Array.from(new Uint16Array(bytes.buffer)));
      }
      writer.endDocument();
      // Bounds what waits in memory: each writer's full chunks are written before reading on.
      await writer.drain();
    }
    await reader.end();
    const summaries = new Map<string, IndexedDatasetSummary>();
    for (const [code, writer] of [...writers].sort((a, b) => a[0] - b[0])) summaries.set(categories[code], await writer.close());
    return { summaries, documents, sequences: index.sequenceLengths.length, tokens };
  } catch (error) {
    await Promise.all([...writers.values()].map((writer) => writer.abort().catch(() => undefined)));
    throw error;
  } finally {
    await reader.close();
  }
}

/**
 * Writes one Megatron dataset per (bucket, category) of a bucketing run and `categories.json`
 * (see the top of this file). `source`: the run's output directory or an `ArtifactSource` holding
 * it; `out`: a directory (created) or an `ArtifactSink`. Categories are the manifest's
 * `categories`, indexed by the sidecar codes.
 */
export async function splitBucketsByCategory(
  source: string | ArtifactSource,
  out: string | ArtifactSink,
  options: CategorySplitOptions = {},
): Promise<CategorySplitResult> {
  const input = typeof source === 'string' ? new DirectoryStore(source) : source;
  const where = typeof source === 'string' ? source : 'shards';
  const sink = typeof out === 'string' ? new DirectoryStore(out) : out;
  const manifest = await readManifest(input, where);
  const { categories } = manifest;
  const slugs = new Map<string, string>();
  for (const category of categories) {
    const slug = categorySlug(category);
    const other = slugs.get(slug);
    if (other !== undefined) throw new Error(`categories ${JSON.stringify(other)} and ${JSON.stringify(category)} have the same file name slug ${slug}`);
    slugs.set(slug, category);
  }
  const dtype = manifest.tokenizer.dtype;
  const index: CategorySplitIndex = Object.fromEntries(categories.map((category) => [category, { buckets: {} }]));
  const files: WrittenFile[] = [];
  const buckets: CategorySplitResult['buckets'] = {};
  for (const bucket of manifest.buckets) {
    if (bucket.megatronDocuments === 0) continue;
    const split = await splitBucket(input, sink, bucket.prefix, categories, dtype, options.chunkTokens ?? 1 << 16);
    if (split.documents !== bucket.megatronDocuments || split.sequences !== bucket.megatronSequences || split.tokens !== bucket.tokens) {
      throw new Error(
        `${bucket.prefix}: read ${split.documents} packed sequences, ${split.sequences} pieces, ${split.tokens} tokens; the manifest says ${bucket.megatronDocuments}, ${bucket.megatronSequences}, ${bucket.tokens}`,
      );
    }
    buckets[String(bucket.length)] = { prefix: bucket.prefix, documents: split.documents, sequences: split.sequences, tokens: split.tokens };
    for (const [category, summary] of split.summaries) {
      index[category].buckets[String(bucket.length)] = { prefix: summary.prefix, documents: summary.documents, sequences: summary.sequences, tokens: summary.tokens };
      files.push(...summary.files);
    }
    options.progress?.(`${bucket.prefix}: ${split.documents} packed sequences into ${split.summaries.size} categories`);
  }
  const json = new TextEncoder().encode(`${JSON.stringify(index, null, 2)}\n`);
  await writeArtifact(sink, CATEGORY_SPLIT_INDEX, json);
  files.push({ name: CATEGORY_SPLIT_INDEX, bytes: json.byteLength, sha256: createHash('sha256').update(json).digest('hex') });
  return { index, dtype, files, buckets };
}
