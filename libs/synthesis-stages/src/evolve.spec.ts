import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startFakeOpenAi, type FakeOpenAi } from '@xyp/llm';
import { SftItem, parseEvolPool } from '@xyp/synthesis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runEvolve } from './evolve';
import { readInputs } from './inputs';
import type { SynthesisOutcome } from './outcomes';
import { directoryOutput, type SynthesisOutput } from './output';
import { filesUnder, jsonLines, jsonl, synthesisResponder, tempDir, testGateway } from './spec-support';

const SEEDS = [
  { id: 's1', category: 'general.reasoning', instruction: '甲乙丙三人各买了一种基金，谁买了债券基金？' },
  { id: 's2', category: 'credit.loan-calculation', messages: [{ role: 'user', content: '贷款100万元、年利率4%、期限30年，等额本息月供是多少？' }, { role: 'assistant', content: '约4774元。' }] },
  { id: 's3', category: 'general.instruction-following', instruction: 'EQUAL 用三点解释为什么要准备应急备用金。' },
];
const CONFIG = { models: { generator: 'writer', judge: 'judge' }, pool: { maxRounds: 2, maxDepth: 2, weights: { 'add-constraints': 1, deepening: 1 } }, seed: 11 };

let server: FakeOpenAi;
const made = tempDir('synth-evolve');

beforeAll(async () => {
  server = await startFakeOpenAi({ respond: synthesisResponder() });
});
afterAll(async () => {
  await server.close();
  await (await made).remove();
});
beforeEach(() => server.reset());

async function run(out: string, wrap: (o: SynthesisOutput) => SynthesisOutput = (o) => o, signal?: AbortSignal) {
  const { dir } = await made;
  const input = join(dir, 'seeds.jsonl');
  await writeFile(input, jsonl(SEEDS));
  const gateway = testGateway(server.url, [
    ['writer', 'writer-model'],
    ['judge', 'judge-model'],
  ]);
  try {
    return await runEvolve(readInputs('evolve', input), CONFIG, { gateway, output: wrap(directoryOutput(join(dir, out))), signal });
  } finally {
    gateway.close();
  }
}

describe('runEvolve against the fake OpenAI server', () => {
  it('evolves the pool in rounds, drops a seed whose evolutions bring no gain, and records the lineage', async () => {
    const { files, summary } = await run('clean');
    const items = (await jsonLines(files.sft)).map((i) => SftItem.parse(i));
    const outcomes = await jsonLines<SynthesisOutcome>(files.outcomes);
    expect(outcomes).toEqual([
      { id: 's1', category: 'general.reasoning', status: 'kept', itemIds: ['s1/evol-1', 's1/evol-2'] },
      { id: 's2', category: 'credit.loan-calculation', status: 'kept', itemIds: ['s2/evol-1', 's2/evol-2'] },
      { id: 's3', category: 'general.instruction-following', status: 'dropped', reason: 'no-information-gain', detail: 'every evolution failed (2 in 2 round(s)): no-information-gain 2' },
    ]);
    const [first, second] = items;
    expect(first.messages[0].content).toBe('甲乙丙三人各买了一种基金，谁买了债券基金？（请给出详细的计算步骤）');
    expect(second.messages[0].content).toBe('甲乙丙三人各买了一种基金，谁买了债券基金？（请给出详细的计算步骤）（请给出详细的计算步骤）');
    expect(first.provenance).toMatchObject({ generator: 'evol-instruct', models: ['writer'], promptVersion: 'evol-in-depth@1', promptVersions: ['evol-equality@1'], sourceId: 's1', parentId: 's1', depth: 1, judge: 'judge' });
    expect(second.provenance).toMatchObject({ parentId: 's1/evol-1', depth: 2 });
    expect(['add-constraints', 'deepening']).toContain(first.provenance.operation);
    // The chat seed's instruction is its first user turn.
    expect(items[2].messages[0].content.startsWith('贷款100万元')).toBe(true);
    // Three calls per task (rewrite, answer, judge), three tasks a round, two rounds.
    expect(server.requests).toBe(18);
    expect(server.log.filter((r) => r.body.model === 'judge-model').every((r) => r.body.temperature === 0 && r.body.max_tokens === 16)).toBe(true);
    expect(summary.stats).toMatchObject({ rounds: 2, evolved: 4, tasks: 6, 'failed.no-information-gain': 2 });
    // The final pool is the chunk's committed state; no progress file is left.
    const part = (await readFile(join((await made).dir, 'clean', 'parts', 'chunk-000000.jsonl'), 'utf8')).trim().split('\n');
    expect(parseEvolPool(JSON.parse(part.at(-1) ?? '')).round).toBe(2);
    expect((await filesUnder(join((await made).dir, 'clean'))).filter((f) => f.startsWith('progress/'))).toEqual([]);
  });

  it('resumes a chunk from its saved pool: a run stopped after round 1 redoes only round 2, with the same result', async () => {
    const reference = await run('reference');
    server.reset();
    const controller = new AbortController();
    const stopAfterFirstRound = (output: SynthesisOutput): SynthesisOutput => ({
      ...output,
      async saveProgress(index, state) {
        await output.saveProgress(index, state);
        controller.abort(new Error('stopped after round 1'));
      },
    });
    await expect(run('resumed', stopAfterFirstRound, controller.signal)).rejects.toThrow('stopped after round 1');
    expect(server.requests).toBe(9);
    expect(await filesUnder(join((await made).dir, 'resumed'))).toEqual(['progress/chunk-000000.json']);
    server.reset();
    const resumed = await run('resumed');
    expect(server.requests).toBe(9);
    expect(await readFile(resumed.files.sft, 'utf8')).toBe(await readFile(reference.files.sft, 'utf8'));
    expect(await readFile(resumed.files.outcomes, 'utf8')).toBe(await readFile(reference.files.outcomes, 'utf8'));
  });
});
