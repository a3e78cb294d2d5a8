import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCorpusBucket } from './corpus-run';

const SAMPLE = resolve(__dirname, '../../../../data/sample/corpus.jsonl');

describe('corpus bucket with child-process workers', () => {
  it('writes the same bytes with 1 worker in process and 2 worker processes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xyp-pool-'));
    const input = join(dir, 'head.jsonl');
    writeFileSync(input, `${readFileSync(SAMPLE, 'utf8').split('\n').slice(0, 400).join('\n')}\n`);
    const config = { windowLines: 100, shardLines: 100 };
    const one = await runCorpusBucket({ input, out: join(dir, 'one'), tokenizer: 'llama3', config, workers: 1 });
    const two = await runCorpusBucket({ input, out: join(dir, 'two'), tokenizer: 'llama3', config, workers: 2 });
    expect([one.shards, two.shards]).toEqual([4, 4]);
    expect(two.workerPeakRssMb).toHaveLength(2);
    const files = readdirSync(join(dir, 'one')).sort();
    expect(readdirSync(join(dir, 'two')).sort()).toEqual(files);
    for (const file of files) expect(readFileSync(join(dir, 'two', file)).equals(readFileSync(join(dir, 'one', file))), file).toBe(true);
  });
});
