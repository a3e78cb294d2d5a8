import { describe, expect, it } from 'vitest';
import { RunId, STAGES, STAGE_NAMES, stageJobId, CorpusDocument } from './index';

describe('contracts', () => {
  it('gives every stage a payload and a result schema', () => {
    for (const stage of STAGE_NAMES) {
      expect(STAGES[stage].payload).toBeDefined();
      expect(STAGES[stage].result).toBeDefined();
    }
  });

  it('rejects run ids that BullMQ cannot use as job id prefixes', () => {
    expect(RunId.safeParse('run-2026-a1').success).toBe(true);
    expect(RunId.safeParse('12345').success).toBe(false);
    expect(RunId.safeParse('run:1').success).toBe(false);
    expect(stageJobId('run-abc', 'corpus.inspect')).toBe('run-abc.corpus.inspect');
  });

  it('rejects a stage payload with an unknown field and names it', () => {
    const parsed = STAGES['corpus.inspect'].payload.safeParse({ runId: 'run-abc', inputKey: 'k', extra: 1 });
    expect(parsed.success).toBe(false);
    expect(JSON.stringify(parsed.error?.issues)).toContain('extra');
  });

  it('reads numeric document ids as strings and refuses empty text', () => {
    expect(CorpusDocument.parse({ id: 7, text: 'x', category: 'news' }).id).toBe('7');
    expect(CorpusDocument.safeParse({ id: 'a', text: '', category: 'news' }).success).toBe(false);
  });
});
