import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  BucketManifest,
  CATEGORY_SIDECAR_SUFFIX,
  PIECE_SIDECAR_SUFFIX,
  type PackConfigInput,
  type ShardReport,
  type TokenEncoder,
  bucketPrefix,
  createStrategy,
  decodeCategorySidecar,
  decodePieceSidecar,
  parsePackConfig,
  simulatePacking,
  tokenDtypeFor,
} from '@xyp/packing';
import { createRng } from '@xyp/random';
import { IndexedDatasetReader } from './indexed-dataset';
import { planInput } from './jsonl';
import { RejectRateExceededError, mergeShards } from './merge';
import { bucketCorpus, inProcessRunner } from './pipeline';
import { packShard } from './shard';
import { MemoryStore } from './sink';

/** One token per Unicode code point: a stand-in tokenizer whose output is easy to predict. */
const codePoints: TokenEncoder & { vocabSize: number; eosId: number } = {
  vocabSize: 0x110001,
  eosId: 0x110000,
  async encodeBatch(texts, options = {}) {
    return texts.map((text) => {
      const ids = Array.from(text, (ch) => ch.codePointAt(0)!);
      if (options.appendId !== undefined) ids.push(options.appendId);
      return Int32Array.from(ids);
    });
  },
};

/** One token per UTF-8 byte (vocabulary 257): exercises the uint16 dataset dtype. */
const utf8Bytes: TokenEncoder & { vocabSize: number; eosId: number } = {
  vocabSize: 257,
  eosId: 256,
  async encodeBatch(texts, options = {}) {
    return texts.map((text) => {
      const bytes = Array.from(Buffer.from(text, 'utf8'));
      if (options.appendId !== undefined) bytes.push(options.appendId);
      return Int32Array.from(bytes);
    });
  },
};

const WORDS = ['利率', '债券', 'market', 'yield', '银行', 'equity', '波动', 'risk', '📈', 'fund'];
const CATEGORIES = ['finance-encyclopedia', 'news', 'social-media', 'professional', 'general'];

interface Doc {
  id: string;
  text: string;
  category: string;
}

/** Seeded documents: mostly short, some long, a few longer than the largest test bucket (64). */
function makeDocs(seed: number, n: number): Doc[] {
  const rng = createRng(seed);
  return Array.from({ length: n }, (_, i) => {
    const u = rng.nextFloat();
    const words = u < 0.6 ? 1 + rng.nextInt(6) : u < 0.95 ? 4 + rng.nextInt(20) : 30 + rng.nextInt(40);
    const text = Array.from({ length: words }, () => WORDS[rng.nextInt(WORDS.length)]).join(' ');
    return { id: `d${i}`, text, category: CATEGORIES[rng.nextInt(CATEGORIES.length)] };
  });
}

function writeInput(lines: (string | Buffer)[], name = 'corpus.jsonl', gzip = false): string {
  const path = join(mkdtempSync(join(tmpdir(), 'xyp-bucket-')), name);
  const body = Buffer.concat(lines.map((line) => Buffer.concat([typeof line === 'string' ? Buffer.from(line) : line, Buffer.from('\n')])));
  writeFileSync(path, gzip ? gzipSync(body) : body);
  return path;
}

const SMALL: PackConfigInput = { bucketLengths: [16, 32, 64], windowLines: 32, windowTokens: 256, shardLines: 64, batchChars: 200 };

async function run(input: string, config: PackConfigInput, options: { encoder?: typeof codePoints; concurrency?: number } = {}) {
  const encoder = options.encoder ?? codePoints;
  const store = new MemoryStore();
  const parsed = parsePackConfig(config);
  const result = await bucketCorpus({
    input,
    config: parsed,
    tokenizer: { spec: 'test', name: 'test', vocabSize: encoder.vocabSize, eodId: encoder.eosId, dtype: tokenDtypeFor(encoder.vocabSize) },
    out: store,
    scratch: store,
    runShard: inProcessRunner(encoder, store),
    concurrency: options.concurrency,
  });
  return { store, manifest: result.manifest, config: parsed };
}

/** Reads every bucket back and reassembles documents by input line from the piece sidecar. */
async function readBack(store: MemoryStore, manifest: BucketManifest) {
  const documents = new Map<number, { start: number; tokens: number[] }[]>();
  /** Per packed sequence: its category label and the input lines of its pieces. */
  const packed: { label: string; lines: number[] }[] = [];
  for (const bucket of manifest.buckets) {
    if (bucket.megatronDocuments === 0) {
      expect(await store.exists(`${bucket.prefix}.bin`), `${bucket.prefix}: an empty bucket has no files`).toBe(false);
      continue;
    }
    const reader = await IndexedDatasetReader.fromSource(store, bucket.prefix);
    const origins = decodePieceSidecar(await store.readAll(`${bucket.prefix}${PIECE_SIDECAR_SUFFIX}`));
    const categories = decodeCategorySidecar(await store.readAll(`${bucket.prefix}${CATEGORY_SIDECAR_SUFFIX}`));
    expect(origins.length).toBe(reader.sequenceCount);
    expect(categories.length).toBe(reader.documentCount);
    for (let d = 0; d < reader.documentCount; d++) {
      const { start, end } = reader.documentRange(d);
      const sequence = { label: manifest.categories[categories[d]], lines: [] as number[] };
      packed.push(sequence);
      let used = 0;
      for (let s = start; s < end; s++) {
        const tokens = Array.from(await reader.sequence(s));
        used += tokens.length;
        const origin = origins[s];
        (documents.get(origin.line) ?? documents.set(origin.line, []).get(origin.line)!).push({ start: origin.start, tokens });
        sequence.lines.push(origin.line);
      }
      expect(used).toBeLessThanOrEqual(bucket.length);
    }
  }
  const byLine = new Map<number, number[]>();
  for (const [line, pieces] of documents) byLine.set(line, pieces.sort((a, b) => a.start - b.start).flatMap((piece) => piece.tokens));
  return { byLine, packed };
}

describe('bucketCorpus end to end (stand-in tokenizer)', () => {
  it('gives every kept token back, in order, with its category, and no sequence over its bucket length', async () => {
    const docs = makeDocs(1, 300);
    const input = writeInput(docs.map((doc) => JSON.stringify(doc)));
    const { store, manifest } = await run(input, SMALL);
    const { byLine, packed } = await readBack(store, manifest);
    expect(byLine.size).toBe(docs.length);
    docs.forEach((doc, i) => {
      expect(byLine.get(i + 1)).toEqual([...Array.from(doc.text, (ch) => ch.codePointAt(0)!), codePoints.eosId]);
    });
    // Every sequence holds its label's documents, except the shard-end leftovers packed across
    // categories (categoryMixing "tails"), which the manifest counts; the label holds most tokens.
    const categoryOf = (line: number) => docs[line - 1].category;
    const mixed = packed.filter((sequence) => sequence.lines.some((line) => categoryOf(line) !== sequence.label));
    expect(mixed.length).toBe(manifest.totals.mixedSequences);
    expect(mixed.length).toBeGreaterThan(0);
    expect(mixed.length).toBeLessThanOrEqual(manifest.input.shards * CATEGORIES.length);
    const pure = await run(input, { ...SMALL, categoryMixing: 'none' });
    const purePacked = (await readBack(pure.store, pure.manifest)).packed;
    expect(purePacked.filter((sequence) => sequence.lines.some((line) => categoryOf(line) !== sequence.label))).toEqual([]);
    expect(pure.manifest.totals.mixedSequences).toBe(0);
    expect(manifest.totals.paddingTokens).toBeLessThan(pure.manifest.totals.paddingTokens);
    expect(manifest.input).toMatchObject({ documentsIn: 300, kept: 300, rejected: 0, shards: 5 });
    expect(manifest.totals.tokens).toBe(docs.reduce((sum, doc) => sum + Array.from(doc.text).length + 1, 0));
    // Only documents longer than the largest bucket are cut.
    expect(manifest.totals.truncatedDocuments).toBe(docs.filter((doc) => Array.from(doc.text).length + 1 > 64).length);
    expect(manifest.categories).toEqual([...CATEGORIES].sort());
    expect(BucketManifest.parse(JSON.parse(Buffer.from(await store.readAll('manifest.json')).toString()))).toEqual(manifest);
  });

  it('reports the same metrics as simulatePacking on the same lengths', async () => {
    const docs = makeDocs(2, 200);
    const { manifest, config } = await run(writeInput(docs.map((doc) => JSON.stringify(doc))), SMALL);
    const records = docs.map((doc, line) => ({ line, length: Array.from(doc.text).length + 1, category: doc.category }));
    const simulated = simulatePacking(records, createStrategy(config.strategy, config.bucketLengths), config);
    const { paddingRatio: _p, truncationRatio: _t, concatRatio: _c, ...totals } = manifest.totals;
    expect(totals).toEqual(simulated.total);
  });

  it('merges shards into the same bytes whatever order they finish in', async () => {
    const input = writeInput(makeDocs(8, 300).map((doc) => JSON.stringify(doc)));
    const config = parsePackConfig(SMALL);
    const tokenizer = { spec: 'test', name: 'test', vocabSize: codePoints.vocabSize, eodId: codePoints.eosId, dtype: 'int32' as const };
    const plan = await planInput(input, config.shardLines);
    const scratch = new MemoryStore();
    const reports: ShardReport[] = [];
    for (const shard of plan.shards) {
      reports.push(await packShard({ job: { input, gzip: false, shard, config, tokenizer, scratchPrefix: '.shards' }, encoder: codePoints, scratch }));
    }
    const merge = async (order: typeof reports) => {
      const out = new MemoryStore();
      await mergeShards({ reports: order, input: { ...plan, path: input }, config, tokenizer, scratch, out });
      return out.objects;
    };
    const inOrder = await merge(reports);
    const reversed = await merge([...reports].reverse());
    expect(reports.length).toBeGreaterThan(2);
    expect([...reversed.keys()].sort()).toEqual([...inOrder.keys()].sort());
    for (const [name, bytes] of inOrder) expect(reversed.get(name), name).toEqual(bytes);
  });

  it('writes byte-identical output for 1 and 2 concurrent shard workers with the same seed', async () => {
    const input = writeInput(makeDocs(3, 400).map((doc) => JSON.stringify(doc)));
    const one = await run(input, SMALL, { concurrency: 1 });
    const two = await run(input, SMALL, { concurrency: 2 });
    expect(one.manifest.input.shards).toBeGreaterThan(2);
    expect([...two.store.objects.keys()].sort()).toEqual([...one.store.objects.keys()].sort());
    for (const [name, bytes] of one.store.objects) expect(two.store.objects.get(name), name).toEqual(bytes);
  });

  it('does not depend on tokenizer batch size, and a different seed reorders sequences without changing the data', async () => {
    const input = writeInput(makeDocs(4, 200).map((doc) => JSON.stringify(doc)));
    const base = await run(input, SMALL);
    const batched = await run(input, { ...SMALL, batchChars: 5000 });
    for (const [name, bytes] of base.store.objects) expect(batched.store.objects.get(name), name).toEqual(bytes);
    const reseeded = await run(input, { ...SMALL, seed: 99 });
    expect(reseeded.store.objects.get('bucket_16.bin')).not.toEqual(base.store.objects.get('bucket_16.bin'));
    expect((await readBack(reseeded.store, reseeded.manifest)).byLine).toEqual((await readBack(base.store, base.manifest)).byLine);
  });

  it('reads gzip input like the plain file', async () => {
    const lines = makeDocs(5, 120).map((doc) => JSON.stringify(doc));
    const plain = await run(writeInput(lines), SMALL);
    const gzip = await run(writeInput(lines, 'corpus.jsonl.gz', true), SMALL);
    expect(gzip.manifest.input.gzip).toBe(true);
    for (const length of [16, 32, 64]) {
      expect(gzip.store.objects.get(`${bucketPrefix(length)}.bin`)).toEqual(plain.store.objects.get(`${bucketPrefix(length)}.bin`));
      expect(gzip.store.objects.get(`${bucketPrefix(length)}.idx`)).toEqual(plain.store.objects.get(`${bucketPrefix(length)}.idx`));
    }
  });

  it('writes uint16 tokens when the vocabulary is small', async () => {
    const docs = makeDocs(6, 80);
    const { store, manifest } = await run(writeInput(docs.map((doc) => JSON.stringify(doc))), SMALL, { encoder: utf8Bytes });
    expect(manifest.tokenizer.dtype).toBe('uint16');
    const { byLine } = await readBack(store, manifest);
    docs.forEach((doc, i) => expect(byLine.get(i + 1)).toEqual([...Buffer.from(doc.text, 'utf8'), 256]));
  });

  it.each(['bfd', 'fixed'] as const)('runs the %s baseline through the same pipeline without losing tokens', async (strategy) => {
    const docs = makeDocs(7, 150);
    const { store, manifest } = await run(writeInput(docs.map((doc) => JSON.stringify(doc))), { ...SMALL, strategy, bucketLengths: [32] });
    const { byLine } = await readBack(store, manifest);
    docs.forEach((doc, i) => expect(byLine.get(i + 1)).toEqual([...Array.from(doc.text, (ch) => ch.codePointAt(0)!), codePoints.eosId]));
  });
});

describe('bad input', () => {
  const good = (i: number) => JSON.stringify({ id: `g${i}`, text: `good document ${i}`, category: 'news' });
  const lines: (string | Buffer)[] = [
    good(1),
    '{"id":"m1","text":"unterminated',
    good(2),
    Buffer.concat([Buffer.from('{"id":"u1","text":"'), Buffer.from([0xc3, 0x28]), Buffer.from('","category":"news"}')]),
    '{"id":"t1","category":"news"}',
    '   ',
    '{"id":"w1","text":["not","a","string"],"category":"news"}',
    '{"id":"e1","text":"","category":"news"}',
    good(3),
    JSON.stringify({ id: 'long', text: 'x'.repeat(500), category: 'news' }),
    good(4),
  ];

  it('counts each reason, writes rejects.jsonl with 1-based line numbers and keeps packing the rest', async () => {
    const { store, manifest } = await run(writeInput(lines), { ...SMALL, maxRejectRate: 1, maxLineBytes: 300 });
    expect(manifest.input).toMatchObject({ lines: 11, blankLines: 1, documentsIn: 10, kept: 4, rejected: 6 });
    expect(manifest.input.documentsIn).toBe(manifest.input.kept + manifest.input.rejected);
    expect(manifest.input.rejectsByReason).toEqual({ 'empty-text': 1, 'invalid-utf8': 1, 'line-too-long': 1, 'malformed-json': 1, 'missing-text': 1, 'wrong-type': 1 });
    const rejects = Buffer.from(await store.readAll('rejects.jsonl')).toString().trim().split('\n').map((line) => JSON.parse(line) as { line: number; reason: string; id?: string });
    expect(rejects.map((r) => [r.line, r.reason])).toEqual([
      [2, 'malformed-json'],
      [4, 'invalid-utf8'],
      [5, 'missing-text'],
      [7, 'wrong-type'],
      [8, 'empty-text'],
      [10, 'line-too-long'],
    ]);
    expect(rejects[2].id).toBe('t1');
    expect(manifest.totals.documents).toBe(4);
  });

  it('rejects only the texts the tokenizer fails on, as tokenizer-error', async () => {
    const failing: typeof codePoints = {
      ...codePoints,
      async encodeBatch(texts, options) {
        if (texts.some((text) => text.includes('BOOM'))) throw new Error('tokenizer exploded\nstack');
        return codePoints.encodeBatch(texts, options);
      },
    };
    const input = writeInput([good(1), JSON.stringify({ id: 'b', text: 'BOOM here', category: 'news' }), good(2)]);
    const { store, manifest } = await run(input, { ...SMALL, maxRejectRate: 1 }, { encoder: failing });
    expect(manifest.input).toMatchObject({ kept: 2, rejected: 1, rejectsByReason: { 'tokenizer-error': 1 } });
    expect(JSON.parse(Buffer.from(await store.readAll('rejects.jsonl')).toString())).toEqual({ line: 2, reason: 'tokenizer-error', detail: 'tokenizer exploded', id: 'b' });
  });

  it('fails with one clear message when the reject rate exceeds the limit, after writing rejects.jsonl', async () => {
    const attempt = run(writeInput(lines), { ...SMALL, maxRejectRate: 0.05, maxLineBytes: 300 });
    await expect(attempt).rejects.toBeInstanceOf(RejectRateExceededError);
    await expect(attempt).rejects.toThrow('reject rate 60.00% (6 of 10 documents) exceeds the limit of 5.00%; see rejects.jsonl');
  });

  it('leaves rejects.jsonl but no dataset and no manifest behind when the reject rate is over the limit', async () => {
    const store = new MemoryStore();
    const encoder = codePoints;
    await expect(
      bucketCorpus({
        input: writeInput(lines),
        config: parsePackConfig({ ...SMALL, maxRejectRate: 0.05, maxLineBytes: 300 }),
        tokenizer: { spec: 'test', name: 'test', vocabSize: encoder.vocabSize, eodId: encoder.eosId, dtype: 'int32' },
        out: store,
        scratch: store,
        runShard: inProcessRunner(encoder, store),
      }),
    ).rejects.toThrow('exceeds the limit');
    expect([...store.objects.keys()]).toEqual(['rejects.jsonl']);
  });

  it('fails clearly on a missing input file and on an invalid configuration', async () => {
    await expect(run('/nonexistent/corpus.jsonl', SMALL)).rejects.toThrow('input file not found: /nonexistent/corpus.jsonl');
    expect(() => parsePackConfig({ ...SMALL, shardLines: 50 })).toThrow('shardLines must be a multiple of windowLines (32)');
    expect(() => parsePackConfig({ strategy: 'fixed', bucketLengths: [2048, 4096] })).toThrow('exactly one length');
  });
});
