import { describe, expect, it } from 'vitest';
import { buildRunFlow, UnplannableStageError } from './run-flow';

describe('buildRunFlow', () => {
  it('puts the run closer at the root and the first stage deepest, with deterministic job ids', () => {
    const flow = buildRunFlow(['corpus.inspect'], { runId: 'run-flow-1', inputKey: 'runs/run-flow-1/input/objects/abc' });
    expect(flow.queueName).toBe('pipeline.run');
    expect(flow.opts?.jobId).toBe('run-flow-1.pipeline.run');
    expect(flow.data).toEqual({ runId: 'run-flow-1', stages: ['corpus.inspect'] });
    const [child] = flow.children ?? [];
    expect(child).toMatchObject({
      queueName: 'corpus.inspect',
      data: { runId: 'run-flow-1', inputKey: 'runs/run-flow-1/input/objects/abc' },
      opts: { jobId: 'run-flow-1.corpus.inspect', failParentOnFailure: true },
    });
  });

  it('refuses a stage that has a worker but no capability in this build', () => {
    expect(() => buildRunFlow(['cpt'], { runId: 'run-flow-2', inputKey: 'k' })).toThrow(UnplannableStageError);
  });

  it('refuses inputs that make an invalid payload, naming the field', () => {
    expect(() => buildRunFlow(['corpus.inspect'], { runId: 'run-flow-3', inputKey: '' })).toThrow(/inputKey/);
  });
});
