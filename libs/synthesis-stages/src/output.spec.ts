import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it, afterAll } from 'vitest';
import { runSynthesis, type ChunkGenerator } from './driver';
import { parseInputLines, type InputValues } from './inputs';
import { emptyAccounting } from './outcomes';
import { directoryOutput, type SynthesisChunk } from './output';
import { filesUnder, tempDir } from './spec-support';

const chunk = (index: number, ids: string[]): SynthesisChunk => ({
  generator: 'ensemble',
  index,
  chunkSize: 2,
  inputIds: ids,
  items: [],
  outcomes: ids.map((id) => ({ id, category: 'banking.services', status: 'dropped', reason: 'unresolved' })),
  accounting: { ...emptyAccounting(), inputs: ids.length, dropped: ids.length },
  stats: {},
});

/** A generator that drops every input without a call. */
const dropAll: ChunkGenerator<InputValues['ensemble']> = {
  method: 'ensemble',
  config: {},
  concurrency: 2,
  chunkSize: 2,
  run: async (inputs) => ({ items: [], outcomes: inputs.map((i) => ({ id: i.id, category: i.category, status: 'dropped', reason: 'unresolved' })), stats: {} }),
};
const lines = (ids: string[]) => ids.map((id) => JSON.stringify({ id, category: 'banking.services', query: `问题${id}` }));

describe('directoryOutput', () => {
  const made = tempDir('synth-output');
  afterAll(async () => (await made).remove());

  it('commits chunks as whole part files, ignores and removes a crashed writer\'s temporary, and finishes in chunk order', async () => {
    const { dir } = await made;
    const output = directoryOutput(join(dir, 'a'));
    await output.commitChunk(chunk(1, ['c', 'd']));
    await output.commitChunk(chunk(0, ['a', 'b']));
    // What a crash in the middle of a write leaves: a temporary beside the part, never the part.
    await writeFile(join(dir, 'a', 'parts', 'chunk-000002.jsonl.123.abc.tmp'), '{"format": "synthesis-chunk@1", "ind');
    const committed = await output.committed();
    expect([...committed.chunks.keys()].sort()).toEqual([0, 1]);
    expect([...committed.doneInputIds].sort()).toEqual(['a', 'b', 'c', 'd']);
    expect(await filesUnder(join(dir, 'a'))).toEqual(['parts/chunk-000000.jsonl', 'parts/chunk-000001.jsonl']);
    await expect(output.finish({} as never, 3)).rejects.toThrow(/chunk\(s\) 2 not committed; nothing finished/);
    await expect(output.finish({} as never, 1)).rejects.toThrow(/chunk\(s\) 1 beyond the input's 1 chunk\(s\)/);
    const files = await output.finish({ generator: 'ensemble' } as never, 2);
    expect((await readFile(files.outcomes, 'utf8')).split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { id: string }).id)).toEqual(['a', 'b', 'c', 'd']);
    expect(await readFile(files.sft, 'utf8')).toBe('');
  });

  it('refuses to resume when the input is not the one the committed chunks were made from', async () => {
    const { dir } = await made;
    const output = directoryOutput(join(dir, 'b'));
    const first = await runSynthesis(dropAll, parseInputLines('ensemble', lines(['a', 'b', 'c'])), { output });
    expect(first.summary.accounting).toMatchObject({ inputs: 3, dropped: 3 });
    await expect(runSynthesis(dropAll, parseInputLines('ensemble', lines(['a', 'x', 'c'])), { output })).rejects.toThrow(/committed chunk 0 holds other inputs than the input's chunk 0 does now/);
    await expect(runSynthesis({ ...dropAll, chunkSize: 3 }, parseInputLines('ensemble', lines(['a', 'b', 'c'])), { output })).rejects.toThrow(/committed chunk 0 has chunk size 2, this run 3/);
    await expect(runSynthesis(dropAll, parseInputLines('ensemble', lines(['a', 'b'])), { output })).rejects.toThrow(/committed chunk\(s\) 1 but the input has only 1 chunk/);
  });
});
