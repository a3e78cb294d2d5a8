import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BUCKET_STAGE,
  DirectoryStore,
  IndexedDatasetWriter,
  MemoryStore,
  StoreArtifacts,
  bucketCorpus,
  bucketStageResult,
  inProcessRunner,
  type ArtifactScratch,
  type ArtifactSink,
} from '@xyp/bucketing';
import { PIECE_SIDECAR_SUFFIX, decodePieceSidecar, parsePackConfig, tokenDtypeFor, type TokenEncoder } from '@xyp/packing';
import { Trainer, cptBatch, disposeModel, initBackend, initParams, trainCpt } from '@xyp/engine';
import { LocalDirectoryStore } from '@xyp/storage';
import { bucketShardsFromSource, openBucketShards, packedSequencesToRows, readShardRows, type ShardRows } from './shard-rows';

/** One token per letter or space, end of document 27: a tokenizer whose output is easy to predict. */
const ALPHABET = 'abcdefghijklmnopqrstuvwxyz ';
const EOD = 27;
const VOCAB = 28;
const letters: TokenEncoder = {
  async encodeBatch(texts, options = {}) {
    return texts.map((text) => {
      const ids = Array.from(text, (ch) => {
        const id = ALPHABET.indexOf(ch);
        if (id < 0) throw new Error(`letters tokenizer: no id for ${JSON.stringify(ch)}`);
        return id;
      });
      if (options.appendId !== undefined) ids.push(options.appendId);
      return Int32Array.from(ids);
    });
  },
};
const encode = (text: string): number[] => Array.from(text, (ch) => ALPHABET.indexOf(ch));

const dir = mkdtempSync(join(tmpdir(), 'xyp-shard-rows-'));
const WORDS = ['rate', 'rose', 'fell', 'bond', 'yield', 'the'];
/** Documents of 1 to 9 words (some longer than the 24-token bucket, so the packer cuts them). */
const docs = Array.from({ length: 40 }, (_, i) => ({
  id: `d${i}`,
  text: Array.from({ length: 1 + ((i * 7) % 9) }, (_, w) => WORDS[(i + w * 5) % WORDS.length]).join(' '),
  category: i % 3 === 0 ? 'news' : 'finance',
}));
const corpus = join(dir, 'corpus.jsonl');
writeFileSync(corpus, docs.map((d) => JSON.stringify(d)).join('\n') + '\n');
const BUCKET = 24;
const config = parsePackConfig({ strategy: 'bfd', bucketLengths: [BUCKET], windowLines: 16, windowTokens: 256, shardLines: 16, batchChars: 200 });
const tokenizer = { spec: 'letters', name: 'letters', vocabSize: VOCAB, eodId: EOD, dtype: tokenDtypeFor(VOCAB) };

async function pack(out: ArtifactSink, scratch: ArtifactScratch) {
  const { manifest } = await bucketCorpus({ input: corpus, config, tokenizer, out, scratch, runShard: inProcessRunner(letters, scratch) });
  return manifest;
}

beforeAll(async () => {
  await initBackend();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('rows from packed sequences', () => {
  it('pads a packed sequence that fits a row, and cuts a longer one into rows that overlap by one token', () => {
    const sequences = [[Int32Array.of(1, 2, 3), Int32Array.of(4, 5)], [Int32Array.of(6, 7, 8, 9, 10, 11, 12, 13)]];
    const whole = packedSequencesToRows(sequences, 8);
    expect(Array.from(whole.tokens)).toEqual([1, 2, 3, 4, 5, 0, 0, 0, 6, 7, 8, 9, 10, 11, 12, 13]);
    expect(Array.from(whole.docIds)).toEqual([0, 0, 0, 1, 1, -6, -7, -8, 2, 2, 2, 2, 2, 2, 2, 2]);
    const cut = packedSequencesToRows(sequences, 5);
    expect(Array.from(cut.tokens)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 10, 11, 12, 13, 0]);
    expect(Array.from(cut.docIds)).toEqual([0, 0, 0, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, -5]);
    expect(Array.from(cut.rowSequence)).toEqual([0, 1, 1]);
    expect(Array.from(cut.rowOffset)).toEqual([0, 0, 4]);
    // Every next-token pair inside a piece is a target exactly once: (3 − 1) + (2 − 1) + (8 − 1).
    const batch = cptBatch(cut, [0, 1, 2]);
    expect(batch.weights.reduce((a, b) => a + b, 0)).toBe(10);
  });

  it('reads a bare dataset by bucket length, and names the piece whose token id is outside the vocabulary', async () => {
    const store = new MemoryStore();
    const writer = await IndexedDatasetWriter.create(store, 'bucket_8', 'uint16');
    writer.addSequence(Int32Array.of(1, 2, 3));
    writer.addSequence(Int32Array.of(4, 40));
    writer.endDocument();
    await writer.close();
    const shards = await bucketShardsFromSource(store, 'memory');
    await expect(readShardRows(shards, { context: 16 })).rejects.toThrow('no manifest.json in memory; give the bucket length');
    const rows = await readShardRows(shards, { bucket: 8, context: 16 });
    expect(rows.rowLength).toBe(8);
    expect(Array.from(rows.tokens)).toEqual([1, 2, 3, 4, 40, 0, 0, 0]);
    expect(rows.maxTokenId).toBe(40);
    await expect(readShardRows(shards, { bucket: 8, context: 16, vocabSize: 32 })).rejects.toThrow(
      'shards memory: bucket_8: token id 40 (packed sequence 0, piece 1, token 1) is outside the model vocabulary of 32',
    );
  });
});

describe('CPT rows from the corpus stage’s packed shards', () => {
  let fromDirectory: ShardRows;

  it('gives back every token of the corpus in order, with a document id per piece and masks inside pieces', async () => {
    const out = join(dir, 'bucketed');
    const manifest = await pack(new DirectoryStore(out), new DirectoryStore(out));
    const shards = await openBucketShards(out);
    // Context 15 < bucket 24 − 1: packed sequences longer than 16 tokens take two rows.
    const rows = await readShardRows(shards, { context: 15, vocabSize: VOCAB });
    fromDirectory = rows;
    expect(rows).toMatchObject({ bucket: BUCKET, rowLength: 16, packedSequences: manifest.buckets[0].megatronDocuments, tokenizer: { name: 'letters' } });
    expect(rows.rowOffset.some((offset) => offset > 0)).toBe(true);

    // Reassemble each piece from the rows (skipping the token a continuation row repeats), then each
    // input document from its pieces by the piece sidecar (input line, offset in the document).
    const pieces = new Map<number, number[]>();
    const R = rows.rowLength;
    for (let r = 0; r < rows.tokens.length / R; r++) {
      for (let s = rows.rowOffset[r] > 0 ? 1 : 0; s < R; s++) {
        const id = rows.docIds[r * R + s];
        if (id < 0) continue;
        (pieces.get(id) ?? pieces.set(id, []).get(id)!).push(rows.tokens[r * R + s]);
      }
    }
    expect(pieces.size).toBe(rows.pieces);
    const origins = decodePieceSidecar(await new DirectoryStore(out).readAll(`bucket_${BUCKET}${PIECE_SIDECAR_SUFFIX}`));
    const byLine = new Map<number, { start: number; tokens: number[] }[]>();
    for (const [id, tokens] of pieces) {
      const { line, start } = origins[id];
      (byLine.get(line) ?? byLine.set(line, []).get(line)!).push({ start, tokens });
    }
    docs.forEach((doc, i) => {
      const parts = byLine.get(i + 1) ?? [];
      expect(parts.sort((a, b) => a.start - b.start).flatMap((p) => p.tokens)).toEqual([...encode(doc.text), EOD]);
    });
    expect(rows.tokenCount).toBe(manifest.totals.tokens);

    // The batch of every row: targets only inside a piece, positions restarting at each piece,
    // attention segments equal to the pieces' ids.
    const all = Array.from({ length: rows.tokens.length / R }, (_, r) => r);
    const batch = cptBatch(rows, all);
    const pairs = [...pieces.values()].reduce((sum, p) => sum + p.length - 1, 0);
    expect(batch.weights.reduce((a, b) => a + b, 0)).toBe(pairs);
    for (let r = 0; r < all.length; r++) {
      for (let t = 0; t < R - 1; t++) {
        const n = r * (R - 1) + t;
        const id = rows.docIds[r * R + t];
        expect(batch.segments![n]).toBe(id);
        const startsPiece = t === 0 || rows.docIds[r * R + t - 1] !== id;
        if (startsPiece) expect(batch.positions![n]).toBe(0);
        else expect(batch.positions![n]).toBe(batch.positions![n - 1] + 1);
      }
    }
  });

  it('reads the committed corpus.bucket stage of a run from the ArtifactStore into the same rows', async () => {
    const store = new LocalDirectoryStore(join(dir, 'store'));
    const out = new StoreArtifacts(store, 'corpus-run', BUCKET_STAGE);
    const manifest = await pack(out, new MemoryStore());
    const outcome = await store.commitManifest({
      version: 1,
      runId: 'corpus-run',
      stage: BUCKET_STAGE,
      committedAt: new Date().toISOString(),
      artifacts: Object.values(out.written()),
      result: bucketStageResult(manifest),
    });
    expect(outcome.committed).toBe(true);
    const rows = await readShardRows(await openBucketShards('corpus-run', store), { bucket: BUCKET, context: 15, vocabSize: VOCAB });
    expect(rows.tokens).toEqual(fromDirectory.tokens);
    expect(rows.docIds).toEqual(fromDirectory.docIds);
    await expect(openBucketShards('no-such-run', store)).rejects.toThrow(`shards no-such-run: no committed ${BUCKET_STAGE} stage for run no-such-run`);
    await expect(openBucketShards('corpus-run')).rejects.toThrow(`shards corpus-run: the run id of a ${BUCKET_STAGE} stage, but no artifact store was given`);
    await expect(readShardRows(await openBucketShards('corpus-run', store), { bucket: 32, context: 15 })).rejects.toThrow(
      'shards corpus-run: no bucket of length 32; the run has buckets 24',
    );
  });

  it('refuses a model whose vocabulary is smaller than the shards’ tokenizer', async () => {
    const shards = await openBucketShards(join(dir, 'bucketed'));
    await expect(readShardRows(shards, { context: 15, vocabSize: 20 })).rejects.toThrow(
      /packed with tokenizer letters \(vocabulary 28\); the model's vocabulary of 20 is too small/,
    );
  });

  it('trains a tiny LM on the rows: a few CPT steps lower the loss', async () => {
    const model = initParams({ vocabSize: VOCAB, contextLength: 15, layers: 1, width: 16, heads: 2 }, 3);
    const trainer = new Trainer(model, { lr: 2e-2, warmupSteps: 0, totalSteps: 30, weightDecay: 0 }, 4);
    try {
      const losses = (await trainCpt(trainer, fromDirectory, { steps: 30, batchSize: 8 })).map((r) => r.loss);
      const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
      expect(losses.every(Number.isFinite)).toBe(true);
      expect(losses[0]).toBeGreaterThan(Math.log(VOCAB) - 0.3);
      expect(mean(losses.slice(-5))).toBeLessThan(mean(losses.slice(0, 5)) - 0.8);
    } finally {
      trainer.dispose();
      disposeModel(model);
    }
  });
});
