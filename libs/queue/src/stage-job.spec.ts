import { describe, expect, it } from 'vitest';
import { InvalidStagePayloadError, stageJob } from './stage-job';

describe('stageJob: the one typed path from a payload to its job', () => {
  it('validates the payload and gives the job a deterministic id with the instance key', () => {
    const job = stageJob('corpus.mix', { runId: 'run-job-1', instance: 'round-2', lossesKey: 'l', weightsKey: 'w' });
    expect(job).toEqual({
      name: 'corpus.mix',
      queueName: 'corpus.mix',
      data: { runId: 'run-job-1', instance: 'round-2', lossesKey: 'l', weightsKey: 'w', mode: 'cpt' },
      opts: { jobId: 'run-job-1.corpus.mix#round-2' },
    });
    expect(stageJob('corpus.inspect', { runId: 'run-job-1', inputKey: 'k' }).opts.jobId).toBe('run-job-1.corpus.inspect');
  });

  it('refuses a payload its stage does not take, at compile time and at run time', () => {
    // @ts-expect-error a corpus.inspect payload on corpus.mix does not compile
    expect(() => stageJob('corpus.mix', { runId: 'run-job-2', inputKey: 'k' })).toThrow(InvalidStagePayloadError);
    expect(() => stageJob('corpus.inspect', { runId: 'run-job-2', inputKey: '' })).toThrow(/invalid corpus\.inspect payload: inputKey/);
  });
});
