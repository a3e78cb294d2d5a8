import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadTokenizer, type TextTokenizer } from '@xyp/tokenizer';
import { beforeAll, describe, expect, it } from 'vitest';
import { PIECE_SIDECAR_SUFFIX, decodePieceSidecar, parsePackConfig, tokenDtypeFor } from '@xyp/packing';
import { IndexedDatasetReader } from './indexed-dataset';
import { bucketCorpus, inProcessRunner } from './pipeline';
import { DirectoryStore } from './sink';

const SAMPLE = resolve(__dirname, '../../../../data/sample/corpus.jsonl');

describe('bucketing the sample corpus with the Llama-3 tokenizer', () => {
  let tokenizer: TextTokenizer;
  beforeAll(async () => {
    tokenizer = await loadTokenizer('llama3');
  });

  it('writes int32 Megatron datasets from which every document decodes back to its text', async () => {
    // The first 240 lines include a professional report longer than 16,384 tokens (line 226).
    const lines = readFileSync(SAMPLE, 'utf8').split('\n').slice(0, 240);
    const dir = mkdtempSync(join(tmpdir(), 'xyp-llama3-'));
    const input = join(dir, 'head.jsonl');
    writeFileSync(input, `${lines.join('\n')}\n`);
    const out = new DirectoryStore(join(dir, 'out'));
    const { manifest } = await bucketCorpus({
      input,
      config: parsePackConfig({}),
      tokenizer: { spec: 'llama3', name: tokenizer.name, vocabSize: tokenizer.vocabSize, eodId: tokenizer.eosId, dtype: tokenDtypeFor(tokenizer.vocabSize) },
      out,
      scratch: out,
      runShard: inProcessRunner(tokenizer, out),
    });
    expect(manifest.tokenizer).toEqual({ name: 'llama3', vocabSize: 128_256, eodTokenId: 128_001, dtype: 'int32' });
    expect(manifest.input).toMatchObject({ kept: 240, rejected: 0 });
    expect(manifest.totals.truncatedDocuments).toBe(1);
    expect(manifest.buckets.map((bucket) => bucket.length)).toEqual([2048, 4096, 8192, 16384]);

    const pieces = new Map<number, { start: number; tokens: Int32Array }[]>();
    for (const bucket of manifest.buckets) {
      const reader = await IndexedDatasetReader.openFiles(join(out.root, bucket.prefix));
      const origins = decodePieceSidecar(await out.readAll(`${bucket.prefix}${PIECE_SIDECAR_SUFFIX}`));
      for (let s = 0; s < reader.sequenceCount; s++) {
        const list = pieces.get(origins[s].line) ?? [];
        list.push({ start: origins[s].start, tokens: await reader.sequence(s) });
        pieces.set(origins[s].line, list);
      }
      await reader.close();
    }
    const texts = lines.map((line) => (JSON.parse(line) as { text: string }).text);
    const expected = await tokenizer.encodeBatch(texts, { appendId: 128_001 });
    for (let i = 0; i < texts.length; i++) {
      const tokens = pieces
        .get(i + 1)!
        .sort((a, b) => a.start - b.start)
        .flatMap((piece) => Array.from(piece.tokens));
      expect(tokens).toEqual(Array.from(expected[i]));
    }
    const first = pieces.get(1)!.flatMap((piece) => Array.from(piece.tokens));
    expect(await tokenizer.decode(first)).toBe(`${texts[0]}<|end_of_text|>`);
  });
});
