import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createRng } from '@xyp/random';
import { type TokenEncoder, parsePackConfig, tokenDtypeFor } from '@xyp/packing';
import { IndexedDatasetReader } from './indexed-dataset';
import { bucketCorpus, inProcessRunner } from './pipeline';
import { DirectoryStore } from './sink';

/**
 * Every `.idx` the pipeline writes opens in a reader written separately, in Python, the way
 * Megatron-LM's IndexedDataset opens it (numpy memory maps of `.idx` and `.bin`, its asserts):
 * `tools/scripts/read_megatron_dataset.py`. Needs python3 with numpy (the CI machine has it).
 */
const SCRIPT = resolve(__dirname, '../../../../tools/scripts/read_megatron_dataset.py');
const python = spawnSync('python3', ['-c', 'import numpy'], { encoding: 'utf8' });
const hasNumpy = python.status === 0;

/** Token id = code point (uint32 vocabulary: int32 datasets) or byte (uint16 datasets). */
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

async function pack(lines: string[], vocabSize: number, buckets: number[]) {
  const dir = mkdtempSync(join(tmpdir(), 'xyp-megatron-'));
  const input = join(dir, 'corpus.jsonl');
  writeFileSync(input, lines.map((line) => `${line}\n`).join(''));
  const out = new DirectoryStore(join(dir, 'out'));
  const scratch = new DirectoryStore(join(dir, 'scratch'));
  const tokens = encoder(vocabSize);
  const { manifest } = await bucketCorpus({
    input,
    config: parsePackConfig({ bucketLengths: buckets, shardLines: 64, windowTokens: Math.max(...buckets) * 4 }),
    tokenizer: { spec: 'test', name: 'test', vocabSize, eodId: tokens.eosId, dtype: tokenDtypeFor(vocabSize) },
    out,
    scratch,
    runShard: inProcessRunner(tokens, scratch),
  });
  return { dir: join(dir, 'out'), manifest, out };
}

function readWithPython(dir: string): { prefix: string; dtype: string; sequences: number; documents: number; tokens: number; checksum: number }[] {
  const result = spawnSync('python3', [SCRIPT, dir], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`read_megatron_dataset.py failed: ${result.stderr}`);
  return result.stdout.trim().split('\n').filter(Boolean).map((line) => JSON.parse(line));
}

describe.skipIf(!hasNumpy)('Megatron-LM layout, read back by an independent Python reader', () => {
  const rng = createRng(5);
  const words = ['利率', 'bond', '📈', 'yield', '银行', 'risk'];
  const lines = Array.from({ length: 200 }, (_, i) =>
    JSON.stringify({ id: i, text: Array.from({ length: 1 + rng.nextInt(rng.nextFloat() < 0.1 ? 60 : 8) }, () => words[rng.nextInt(words.length)]).join(' '), category: `c${rng.nextInt(3)}` }),
  );

  it.each([
    ['int32', 0x110001],
    ['uint16', 300],
  ])('opens every %s .idx with counts and token checksums equal to the TypeScript reader', async (dtype, vocab) => {
    const { dir, manifest, out } = await pack(lines, vocab, [32, 64, 128]);
    const python = readWithPython(dir);
    const written = manifest.buckets.filter((bucket) => bucket.megatronDocuments > 0);
    expect(python.map((entry) => entry.prefix).sort()).toEqual(written.map((bucket) => bucket.prefix).sort());
    for (const bucket of written) {
      const entry = python.find((candidate) => candidate.prefix === bucket.prefix)!;
      const reader = await IndexedDatasetReader.fromSource(out, bucket.prefix);
      let checksum = 0;
      for (let s = 0; s < reader.sequenceCount; s++) for (const id of await reader.sequence(s)) checksum = (checksum + id) % 2 ** 32;
      expect(entry).toEqual({ prefix: bucket.prefix, dtype, sequences: bucket.megatronSequences, documents: bucket.megatronDocuments, tokens: bucket.tokens, checksum });
    }
  });

  it('writes no files for a bucket that got no sequences, so nothing Megatron cannot map is left', async () => {
    const short = Array.from({ length: 50 }, (_, i) => JSON.stringify({ id: i, text: 'bond', category: 'c' }));
    const { dir, manifest } = await pack(short, 0x110001, [32, 64, 128]);
    expect(manifest.buckets.map((bucket) => [bucket.length, bucket.megatronDocuments > 0])).toEqual([[32, true], [64, false], [128, false]]);
    expect(readdirSync(dir).filter((name) => name.endsWith('.bin'))).toEqual(['bucket_32.bin']);
    expect(readWithPython(dir)).toHaveLength(1);
  });
});
