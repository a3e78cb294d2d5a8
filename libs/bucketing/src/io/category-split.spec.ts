import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CATEGORY_SIDECAR_SUFFIX, type BucketManifest, type TokenEncoder, decodeCategorySidecar, parsePackConfig, tokenDtypeFor } from '@xyp/packing';
import { createRng } from '@xyp/random';
import { CATEGORY_SPLIT_INDEX, CategorySplitIndex, categoryDatasetPrefix, categorySlug, splitBucketsByCategory } from './category-split';
import { IndexedDatasetReader, parseIndex } from './indexed-dataset';
import { bucketCorpus, inProcessRunner } from './pipeline';
import { DirectoryStore, MemoryStore, type ArtifactSink } from './sink';

/** Token id = code point (int32 datasets) or UTF-8 byte (uint16 datasets). */
function encoder(vocabSize: number): TokenEncoder & { vocabSize: number; eosId: number } {
  const eosId = vocabSize - 1;
  return {
    vocabSize,
    eosId,
    async encodeBatch(texts, options = {}) {
      return texts.map((text) => {
        const ids = vocabSize > 65500 ? Array.from(text, (ch) => ch.codePointAt(0)!) : Array.from(Buffer.from(text, 'utf8'));
        if (options.appendId !== undefined) ids.push(options.appendId);
        return Int32Array.from(ids);
      });
    },
  };
}

// One category name that is not a safe file name, to exercise the slug.
const CATEGORIES = ['news', 'finance-encyclopedia', '金融 Social', 'general'];
const WORDS = ['利率', 'bond', '📈', 'yield', '银行', 'risk'];

function corpus(seed: number, n: number): string {
  const rng = createRng(seed);
  const lines = Array.from({ length: n }, (_, i) =>
    JSON.stringify({
      id: i,
      text: Array.from({ length: 1 + rng.nextInt(rng.nextFloat() < 0.1 ? 40 : 8) }, () => WORDS[rng.nextInt(WORDS.length)]).join(' '),
      category: CATEGORIES[rng.nextInt(CATEGORIES.length)],
    }),
  );
  const input = join(mkdtempSync(join(tmpdir(), 'xyp-split-')), 'corpus.jsonl');
  writeFileSync(input, lines.map((line) => `${line}\n`).join(''));
  return input;
}

async function bucketRun<S extends ArtifactSink = MemoryStore>(input: string, vocab: number, sink?: S): Promise<{ manifest: BucketManifest; out: S }> {
  const out = (sink ?? new MemoryStore()) as S;
  const tokens = encoder(vocab);
  const scratch = new MemoryStore();
  const { manifest } = await bucketCorpus({
    input,
    config: parsePackConfig({ bucketLengths: [32, 64, 128], shardLines: 64, windowLines: 32, windowTokens: 512 }),
    tokenizer: { spec: 'test', name: 'test', vocabSize: vocab, eodId: tokens.eosId, dtype: tokenDtypeFor(vocab) },
    out,
    scratch,
    runShard: inProcessRunner(tokens, scratch),
  });
  return { manifest, out };
}

/** The raw `.bin` bytes of each Megatron document of a source dataset, and its pieces' lengths. */
async function documentsOf(store: MemoryStore, prefix: string): Promise<{ bytes: Uint8Array; lengths: number[] }[]> {
  const index = parseIndex(await store.readAll(`${prefix}.idx`));
  const bin = await store.readAll(`${prefix}.bin`);
  const size = index.dtype === 'int32' ? 4 : 2;
  const out: { bytes: Uint8Array; lengths: number[] }[] = [];
  for (let d = 0; d + 1 < index.documentIndices.length; d++) {
    const start = Number(index.documentIndices[d]);
    const end = Number(index.documentIndices[d + 1]);
    const lengths = Array.from(index.sequenceLengths.subarray(start, end));
    const from = Number(index.sequencePointers[start]);
    out.push({ bytes: bin.subarray(from, from + lengths.reduce((a, b) => a + b, 0) * size), lengths });
  }
  return out;
}

/** Checks the split against the source: every packed sequence in its sidecar category's file, bytes and boundaries kept. */
async function expectExactSplit(source: MemoryStore, manifest: BucketManifest, out: MemoryStore, index: CategorySplitIndex) {
  expect(Object.keys(index).sort()).toEqual([...manifest.categories].sort());
  for (const bucket of manifest.buckets.filter((b) => b.megatronDocuments > 0)) {
    const docs = await documentsOf(source, bucket.prefix);
    const codes = decodeCategorySidecar(await source.readAll(`${bucket.prefix}${CATEGORY_SIDECAR_SUFFIX}`));
    let documents = 0;
    let sequences = 0;
    let tokens = 0;
    for (const [code, category] of manifest.categories.entries()) {
      const mine = docs.filter((_, d) => codes[d] === code);
      const entry = index[category].buckets[String(bucket.length)];
      const prefix = categoryDatasetPrefix(bucket.prefix, category);
      if (mine.length === 0) {
        expect(entry, `${category} has no sequence in ${bucket.prefix}`).toBeUndefined();
        expect(await out.exists(`${prefix}.bin`)).toBe(false);
        continue;
      }
      expect(entry.prefix).toBe(prefix);
      // Byte-identical tokens: the category's .bin is its documents' bytes in file order.
      expect(Buffer.from(await out.readAll(`${prefix}.bin`))).toEqual(Buffer.concat(mine.map((doc) => doc.bytes)));
      const written = parseIndex(await out.readAll(`${prefix}.idx`));
      expect(written.dtype).toBe(manifest.tokenizer.dtype);
      expect(Array.from(written.sequenceLengths)).toEqual(mine.flatMap((doc) => doc.lengths));
      // Document boundaries kept: the same pieces per packed sequence.
      const reader = await IndexedDatasetReader.fromSource(out, prefix);
      expect(reader.documentCount).toBe(mine.length);
      mine.forEach((doc, d) => {
        const { start, end } = reader.documentRange(d);
        expect(Array.from(written.sequenceLengths.subarray(start, end))).toEqual(doc.lengths);
      });
      const t = mine.reduce((sum, doc) => sum + doc.lengths.reduce((a, b) => a + b, 0), 0);
      expect(entry).toEqual({ prefix, documents: mine.length, sequences: mine.reduce((n, doc) => n + doc.lengths.length, 0), tokens: t });
      documents += entry.documents;
      sequences += entry.sequences;
      tokens += entry.tokens;
    }
    // Every packed sequence landed in exactly one category file.
    expect({ documents, sequences, tokens }).toEqual({ documents: bucket.megatronDocuments, sequences: bucket.megatronSequences, tokens: bucket.tokens });
  }
  const total = Object.values(index).reduce((sum, c) => sum + Object.values(c.buckets).reduce((s, e) => s + e.tokens, 0), 0);
  expect(total).toBe(manifest.totals.tokens);
  expect(CategorySplitIndex.parse(JSON.parse(Buffer.from(await out.readAll(CATEGORY_SPLIT_INDEX)).toString('utf8')))).toEqual(index);
}

describe('splitBucketsByCategory', () => {
  it.each([
    ['int32', 0x110001],
    ['uint16', 300],
  ])('writes each %s packed sequence, byte for byte, into the dataset of its sidecar category', async (_dtype, vocab) => {
    const { manifest, out: source } = await bucketRun(corpus(7, 240), vocab);
    expect(manifest.buckets.filter((b) => b.megatronDocuments > 0).length).toBeGreaterThan(1);
    const out = new MemoryStore();
    const result = await splitBucketsByCategory(source, out, { chunkTokens: 16 });
    expect(result.dtype).toBe(manifest.tokenizer.dtype);
    await expectExactSplit(source, manifest, out, result.index);
    expect(result.files.at(-1)!.name).toBe(CATEGORY_SPLIT_INDEX);
    expect(result.files.filter((f) => f.name.endsWith('.bin')).length).toBe(Object.values(result.index).reduce((n, c) => n + Object.keys(c.buckets).length, 0));
  });

  it('follows the sidecar, not the documents: relabelling a packed sequence moves it to the other category', async () => {
    const { manifest, out: source } = await bucketRun(corpus(3, 160), 0x110001);
    const bucket = manifest.buckets.find((b) => b.megatronDocuments > 1)!;
    const name = `${bucket.prefix}${CATEGORY_SIDECAR_SUFFIX}`;
    const codes = decodeCategorySidecar(await source.readAll(name));
    const target = (codes[0] + 1) % manifest.categories.length;
    codes[0] = target;
    source.objects.set(name, new Uint8Array(codes.buffer));
    const before = (await splitBucketsByCategory((await bucketRun(corpus(3, 160), 0x110001)).out, new MemoryStore())).index;
    const out = new MemoryStore();
    const { index } = await splitBucketsByCategory(source, out);
    await expectExactSplit(source, manifest, out, index);
    const category = manifest.categories[target];
    expect(index[category].buckets[String(bucket.length)].documents).toBe((before[category].buckets[String(bucket.length)]?.documents ?? 0) + 1);
    // The relabelled sequence comes first in its new file.
    const first = (await documentsOf(source, bucket.prefix))[0];
    expect(Buffer.from((await out.readAll(`${categoryDatasetPrefix(bucket.prefix, category)}.bin`)).subarray(0, first.bytes.byteLength))).toEqual(Buffer.from(first.bytes));
  });

  it('refuses a sidecar code outside the manifest, a sidecar of the wrong length and a run without a manifest', async () => {
    const { manifest, out: source } = await bucketRun(corpus(4, 80), 0x110001);
    const bucket = manifest.buckets.find((b) => b.megatronDocuments > 0)!;
    const name = `${bucket.prefix}${CATEGORY_SIDECAR_SUFFIX}`;
    const codes = decodeCategorySidecar(await source.readAll(name));
    const bad = codes.slice();
    bad[1] = 40;
    source.objects.set(name, new Uint8Array(bad.buffer));
    await expect(splitBucketsByCategory(source, new MemoryStore())).rejects.toThrow(`${name}: packed sequence 1 has category code 40; the manifest lists ${manifest.categories.length} categories`);
    source.objects.set(name, new Uint8Array(codes.slice(1).buffer));
    await expect(splitBucketsByCategory(source, new MemoryStore())).rejects.toThrow(`${name}: ${codes.length - 1} entries for ${codes.length} packed sequences`);
    await expect(splitBucketsByCategory(new MemoryStore(), new MemoryStore())).rejects.toThrow('shards: no manifest.json');
  });

  it('names files by a stable slug that is safe in a path', () => {
    expect(categorySlug('finance-encyclopedia')).toBe('finance-encyclopedia');
    expect(categorySlug('金融 Social')).toBe('social-8b8b9715');
    expect(categorySlug('金融')).toBe('x-a42315e4');
    expect(categorySlug('News')).not.toBe(categorySlug('news'));
    expect(categorySlug('../etc')).toBe('etc-f7f9121f');
    expect(categoryDatasetPrefix('bucket_2048', 'news')).toBe('bucket_2048.cat-news');
  });

  const hasNumpy = spawnSync('python3', ['-c', 'import numpy'], { encoding: 'utf8' }).status === 0;
  it.skipIf(!hasNumpy)('writes directories that an independent Megatron-layout reader opens', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xyp-split-dir-'));
    const { manifest } = await bucketRun(corpus(9, 120), 0x110001, new DirectoryStore(join(dir, 'run')));
    const { index } = await splitBucketsByCategory(join(dir, 'run'), join(dir, 'by-category'));
    const result = spawnSync('python3', [resolve(__dirname, '../../../../tools/scripts/read_megatron_dataset.py'), join(dir, 'by-category')], { encoding: 'utf8' });
    expect(result.status, result.stderr).toBe(0);
    const read = result.stdout.trim().split('\n').map((line) => JSON.parse(line) as { prefix: string; documents: number; sequences: number; tokens: number });
    const entries = Object.values(index).flatMap((c) => Object.values(c.buckets));
    expect(read.map((r) => r.prefix).sort()).toEqual(entries.map((e) => e.prefix).sort());
    for (const r of read) expect(entries.find((e) => e.prefix === r.prefix)).toMatchObject({ documents: r.documents, sequences: r.sequences, tokens: r.tokens });
    expect(read.reduce((sum, r) => sum + r.tokens, 0)).toBe(manifest.totals.tokens);
    const reader = await IndexedDatasetReader.openFiles(join(dir, 'by-category', entries[0].prefix));
    expect(reader.documentCount).toBe(entries[0].documents);
    await reader.close();
  });
});
