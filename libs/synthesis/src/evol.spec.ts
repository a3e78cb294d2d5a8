import { describe, expect, it } from 'vitest';
import {
  applyEvolRound,
  chooseEvolOperation,
  createEvolPool,
  eliminationReason,
  evolPoolStatus,
  evolvedItems,
  onlyStopWords,
  parseEqualityVerdict,
  parseEvolPool,
  planEvolRound,
  type EvolOutcome,
  type EvolTask,
} from './evol';
import { EVOL_OPERATIONS } from './prompts';

const survives = { instruction: '在年化利率3.5%、期限5年的条件下，定投基金与一次性投入哪种更合适？请分步计算。', response: '我们分三步比较两种方式的期末收益……', equality: 'not-equal' as const };

describe('chooseEvolOperation', () => {
  it('is a deterministic function of seed, round and item id, whatever the pool order', () => {
    const ids = Array.from({ length: 50 }, (_, i) => `seed-${i}`);
    const forward = ids.map((id) => chooseEvolOperation(7, 1, id));
    const backward = [...ids].reverse().map((id) => chooseEvolOperation(7, 1, id)).reverse();
    expect(backward).toEqual(forward);
    expect(ids.map((id) => chooseEvolOperation(8, 1, id))).not.toEqual(forward);
    expect(ids.map((id) => chooseEvolOperation(7, 2, id))).not.toEqual(forward);
  });

  it('draws all six operations about uniformly, and never one weighted 0', () => {
    const counts = new Map<string, number>();
    for (let i = 0; i < 6000; i++) {
      const op = chooseEvolOperation(1, 1, `item-${i}`);
      counts.set(op, (counts.get(op) ?? 0) + 1);
    }
    expect([...counts.keys()].sort()).toEqual([...EVOL_OPERATIONS].sort());
    for (const n of counts.values()) expect(Math.abs(n - 1000)).toBeLessThan(150);
    const weighted = new Set(Array.from({ length: 500 }, (_, i) => chooseEvolOperation(1, 1, `item-${i}`, { deepening: 1, 'in-breadth': 3 })));
    expect([...weighted].sort()).toEqual(['deepening', 'in-breadth']);
    expect(() => chooseEvolOperation(1, 1, 'x', { deepening: 0 })).toThrow(/at least one operation/);
  });
});

describe('parseEqualityVerdict', () => {
  it.each([
    ['Equal', 'equal'],
    ['Equal.', 'equal'],
    ['**Equal**', 'equal'],
    ['相同', 'equal'],
    ['Not Equal', 'not-equal'],
    ['not equal.', 'not-equal'],
    ['Your Judgement: **Not Equal**', 'not-equal'],
    ['Not-Equal', 'not-equal'],
    ['Unequal', 'not-equal'],
    ['不相同', 'not-equal'],
    ['Equal or Not Equal', null],
    ['I cannot tell', null],
    ['', null],
    ['Equality', null],
  ])('reads %j as %s', (text, verdict) => {
    expect(parseEqualityVerdict(text)).toBe(verdict);
  });
});

describe('eliminationReason', () => {
  it('passes a real evolution', () => {
    expect(eliminationReason(survives)).toBeUndefined();
  });

  it('fails an evolution the judge calls Equal (no information gain), or whose verdict is unreadable', () => {
    expect(eliminationReason({ ...survives, equality: 'equal' })).toBe('no-information-gain');
    expect(eliminationReason({ ...survives, equality: null })).toBe('equality-unparsed');
  });

  it('fails a short apology: 79 length units with 抱歉 fails, 80 passes', () => {
    const chinese = (n: number) => `抱歉${'金'.repeat(n - 2)}`;
    expect(eliminationReason({ ...survives, response: chinese(79) })).toBe('apology-response');
    expect(eliminationReason({ ...survives, response: chinese(80) })).toBeUndefined();
    const english = (words: number) => `Sorry, ${Array.from({ length: words - 1 }, () => 'bond').join(' ')}`;
    expect(eliminationReason({ ...survives, response: english(79) })).toBe('apology-response');
    expect(eliminationReason({ ...survives, response: english(80) })).toBeUndefined();
    expect(eliminationReason({ ...survives, response: '作为一个AI，我无法提供投资建议。' })).toBe('apology-response');
    expect(eliminationReason({ ...survives, response: `抱歉${'金'.repeat(77)}` }, { apologyMaxLength: 79 })).toBeUndefined();
  });

  it('fails a response of punctuation and stop words only', () => {
    for (const response of ['', '。。。！', '好的。', 'OK, well, the...', '嗯嗯，是的！ ok']) expect(eliminationReason({ ...survives, response })).toBe('stopword-response');
    expect(onlyStopWords('好的，基金')).toBe(false);
    expect(onlyStopWords('the ETF')).toBe(false);
    expect(onlyStopWords('3')).toBe(false);
  });

  it('fails an instruction that copies the evolving prompt’s words, in any case', () => {
    for (const instruction of ['#Rewritten Prompt#: 定投的好处？', '请回答 the given prompt 中的问题', 'REWRITTEN PROMPT: x', '#Created Prompt#\n新问题', '改写后的问题：定投的好处？', '针对给定的提示，回答定投的好处']) {
      expect(eliminationReason({ ...survives, instruction })).toBe('copied-prompt-words');
    }
  });

  it('checks the rules in the paper’s order, an empty instruction first', () => {
    expect(eliminationReason({ instruction: ' ', response: '', equality: 'equal' })).toBe('empty-instruction');
    expect(eliminationReason({ instruction: '#Given Prompt#', response: '抱歉', equality: 'equal' })).toBe('no-information-gain');
    expect(eliminationReason({ instruction: '#Given Prompt#', response: '抱歉', equality: 'not-equal' })).toBe('apology-response');
    expect(eliminationReason({ instruction: '#Given Prompt#', response: '好的', equality: 'not-equal' })).toBe('stopword-response');
  });
});

describe('EvolPool', () => {
  const seeds = [
    { id: 's1', category: 'funds.performance-calculation', instruction: '基金定投有什么好处？' },
    { id: 's2', category: 'credit.loan-calculation', instruction: '等额本息和等额本金有什么区别？' },
    { id: 's3', category: 'tax.calculation', instruction: '个税专项附加扣除有哪些？' },
  ];
  const ok = (task: EvolTask): EvolOutcome => ({ taskId: task.taskId, ...survives, instruction: `${task.itemId} 进化后`, models: ['writer-model'] });

  it('plans one task per active item with its seeded operation and prompt', () => {
    const pool = createEvolPool(seeds, { seed: 3, maxDepth: 2, maxRounds: 3 });
    const tasks = planEvolRound(pool, () => '基金业绩与费用计算');
    expect(tasks.map((t) => t.taskId)).toEqual(['s1@r1', 's2@r1', 's3@r1']);
    for (const t of tasks) {
      expect(t.operation).toBe(chooseEvolOperation(3, 1, t.itemId));
      expect(t.promptVersion).toBe(t.operation === 'in-breadth' ? 'evol-in-breadth@1' : 'evol-in-depth@1');
      expect(t.messages[0].content).toContain(seeds.find((s) => s.id === t.itemId)!.instruction);
    }
  });

  it('admits a success at depth + 1 in its parent’s place, and returns a failed parent to the pool with its failure counted', () => {
    const pool = createEvolPool(seeds, { seed: 3, maxDepth: 2, maxRounds: 3 });
    const [t1, t2, t3] = planEvolRound(pool);
    const { pool: next, evolved, failed } = applyEvolRound(pool, [
      { taskId: t2.taskId, ...survives, equality: 'equal' },
      ok(t1),
      { taskId: t3.taskId, error: 'gateway timeout' },
    ]);
    expect(evolved.map((i) => [i.id, i.parentId, i.rootId, i.depth, i.round, i.operation])).toEqual([['s1/evol-1', 's1', 's1', 1, 1, t1.operation]]);
    expect(evolved[0]).toMatchObject({ instruction: 's1 进化后', response: survives.response, models: ['writer-model'], promptVersion: t1.promptVersion });
    expect(failed.map((f) => [f.itemId, f.reason, f.detail])).toEqual([
      ['s2', 'no-information-gain', undefined],
      ['s3', 'call-failed', 'gateway timeout'],
    ]);
    expect(next.active).toEqual(['s1/evol-1', 's2', 's3']);
    expect(next.items.find((i) => i.id === 's2')?.failures).toBe(1);
    expect(next.items.find((i) => i.id === 's1')?.failures).toBe(0);
    expect(next.round).toBe(1);
    expect(pool.round).toBe(0);
    expect(pool.active).toEqual(['s1', 's2', 's3']);
    // The failed parent is evolved again in round 2.
    expect(planEvolRound(next).map((t) => t.taskId)).toEqual(['s1/evol-1@r2', 's2@r2', 's3@r2']);
  });

  it('keeps an item that reached maxDepth but evolves it no further, and stops after maxRounds', () => {
    let pool = createEvolPool(seeds.slice(0, 1), { seed: 1, maxDepth: 2, maxRounds: 5 });
    pool = applyEvolRound(pool, planEvolRound(pool).map(ok)).pool;
    pool = applyEvolRound(pool, planEvolRound(pool).map(ok)).pool;
    expect(evolvedItems(pool).map((i) => [i.id, i.depth])).toEqual([
      ['s1/evol-1', 1],
      ['s1/evol-2', 2],
    ]);
    expect(pool.active).toEqual([]);
    expect(evolPoolStatus(pool)).toEqual({ done: true, reason: 'pool-empty' });

    let failing = createEvolPool(seeds, { seed: 1, maxDepth: 4, maxRounds: 2 });
    for (let round = 0; round < 2; round++) failing = applyEvolRound(failing, planEvolRound(failing).map((t) => ({ taskId: t.taskId, error: 'down' }))).pool;
    expect(evolPoolStatus(failing)).toEqual({ done: true, reason: 'max-rounds' });
    expect(failing.items.map((i) => i.failures)).toEqual([2, 2, 2]);
    expect(failing.failures).toHaveLength(6);
    expect(() => planEvolRound(failing)).toThrow(/done \(max-rounds\)/);
  });

  it('throws naming a task without outcome, an unknown task and a repeated one', () => {
    const pool = createEvolPool(seeds, { seed: 3 });
    const tasks = planEvolRound(pool);
    expect(() => applyEvolRound(pool, tasks.slice(1).map(ok))).toThrow(/no outcome for s1@r1/);
    expect(() => applyEvolRound(pool, [...tasks.map(ok), { taskId: 'zz@r1', error: 'x' }])).toThrow(/zz@r1 is not a task of round 1/);
    expect(() => applyEvolRound(pool, [...tasks.map(ok), ok(tasks[0])])).toThrow(/s1@r1 has two outcomes/);
    expect(() => createEvolPool([...seeds, seeds[0]], { seed: 1 })).toThrow(/s1 appears twice/);
  });

  it('survives a JSON checkpoint: the read-back pool plans the same round', () => {
    const pool = createEvolPool(seeds, { seed: 9, maxDepth: 3, maxRounds: 4, weights: { deepening: 1, 'in-breadth': 1 } });
    const after = applyEvolRound(pool, planEvolRound(pool).map(ok)).pool;
    const restored = parseEvolPool(JSON.parse(JSON.stringify(after)));
    expect(restored).toEqual(after);
    expect(planEvolRound(restored)).toEqual(planEvolRound(after));
    expect(() => parseEvolPool({ ...after, active: ['nope'] })).toThrow(/pool\.active: nope is not a pool item/);
    expect(() => parseEvolPool({ ...after, format: 'evol-pool@0' })).toThrow(/^pool\.format/);
  });
});
