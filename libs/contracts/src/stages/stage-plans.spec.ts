import { describe, expect, it } from 'vitest';
import { InstanceKey, StageRefFormat, instanceId, splitInstanceId } from '../ids';
import { manifestKey, objectKey } from '../artifacts';
import { RUNNABLE_STAGES, STAGES, stageJobId, stagePlan } from '../stages';

describe('stage instances', () => {
  it('names an instance stage#key, the default instance by the stage alone, in ids, job ids and keys', () => {
    expect(instanceId('corpus.bucket', 'phase-2')).toBe('corpus.bucket#phase-2');
    expect(instanceId('corpus.inspect')).toBe('corpus.inspect');
    expect(splitInstanceId('rlhf.ppo#round-2')).toEqual({ stage: 'rlhf.ppo', instance: 'round-2' });
    expect(stageJobId('run-abc', 'corpus.bucket', 'phase-2')).toBe('run-abc.corpus.bucket#phase-2');
    expect(stageJobId('run-abc', 'corpus.inspect')).toBe('run-abc.corpus.inspect');
    expect(manifestKey('run-abc', 'corpus.bucket#phase-2')).toBe('runs/run-abc/corpus.bucket/phase-2/manifest.json');
    expect(objectKey('run-abc', 'corpus.bucket', 'f'.repeat(64))).toBe(`runs/run-abc/corpus.bucket/objects/${'f'.repeat(64)}`);
  });

  it('refuses instance keys that could clash with a stage folder or read as part of a stage name', () => {
    for (const bad of ['objects', 'tmp', 'Phase', 'a.b', '-x', '', 'a/b']) expect(InstanceKey.safeParse(bad).success, bad).toBe(false);
    expect(StageRefFormat.safeParse('corpus.bucket#round-1').success).toBe(true);
    expect(StageRefFormat.safeParse('corpus.bucket#objects').success).toBe(false);
  });
});

describe('stage plans', () => {
  it('builds each runnable stage a payload its schema accepts, with the instance key set', () => {
    const key = 'runs/run-abc/input/objects/' + 'a'.repeat(64);
    const inputs = { one: () => key, maybe: () => undefined, all: () => [{ from: 'corpus.bucket#a', key }, { from: 'corpus.bucket#b', key }] };
    for (const stage of RUNNABLE_STAGES) {
      const payload = stagePlan(stage).build({ runId: 'run-abc', instance: 'x-1', params: {}, inputs });
      expect(STAGES[stage].payload.parse(payload), stage).toMatchObject({ runId: 'run-abc', instance: 'x-1' });
    }
  });

  it('takes parameters as strings (SubmitRun) or YAML values, and names an unknown one', () => {
    const plan = stagePlan('corpus.bucket');
    expect(plan.checkParams({ buckets: '2048,4096', append_eod: 'false', seed: '3' })).toEqual([]);
    expect(plan.checkParams({ buckets: [2048, 4096], append_eod: false, seed: 3 })).toEqual([]);
    expect(plan.checkParams({ colour: 'red' })).toEqual([{ path: ['colour'], message: 'unknown parameter' }]);
    expect(plan.paramOf(['config', 'windowTokens'])).toBe('window_tokens');
    expect(stagePlan('corpus.mix').decides).toBe(true);
    expect(stagePlan('corpus.bucket').decides).toBe(false);
  });
});
