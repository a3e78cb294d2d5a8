import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EngineJob } from '@xyp/contracts';
import { initBackend } from '@xyp/engine';
import { HandedBackError } from '@xyp/offload';
import { LocalDirectoryStore } from '@xyp/storage';
import type { JobControl, JobProgress, ResumeMarker } from './job-control';
import { LocalEngine } from './local-engine';
import { commitFreshModel } from './testing/fresh-checkpoint';

const dir = mkdtempSync(join(tmpdir(), 'xyp-job-control-'));
const store = new LocalDirectoryStore(join(dir, 'store'));
const engine = new LocalEngine({ store });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function jsonl(name: string, rows: unknown[]): string {
  const file = join(dir, name);
  writeFileSync(file, rows.map((r) => JSON.stringify(r)).join('\n'));
  return file;
}

beforeAll(async () => {
  await initBackend();
  await commitFreshModel(store, 'base/engine.lm', false, 1);
  await commitFreshModel(store, 'base/engine.rm', true, 2);
});

const local = (job: EngineJob) => {
  if (job.engine !== 'local') throw new Error('expected a local job');
  return job;
};
const sha = (job: EngineJob, name = 'model.safetensors') => local(job).manifest.artifacts.find((a) => a.name === name)?.sha256;

/**
 * Runs `run` with a drain raised once progress reaches `at`; returns the marker it hands back, after
 * checking that it did hand back.
 */
async function drainedAt(at: number, run: (control: JobControl) => Promise<EngineJob>, extra: Partial<JobControl> = {}): Promise<ResumeMarker | undefined> {
  const drain = new AbortController();
  const markers: ResumeMarker[] = [];
  const error = await run({
    ...extra,
    drain: drain.signal,
    onCheckpoint: async (m) => void markers.push(m),
    onProgress: (p: JobProgress) => void (p.done >= at && drain.abort()),
  }).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(HandedBackError);
  const marker = (error as HandedBackError<ResumeMarker>).marker;
  if (marker) expect(markers.at(-1)).toEqual(marker);
  return marker;
}

describe('LocalEngine job control: drain, hand back, resume', () => {
  it('SFT: resumed from the marker of a drain, it commits the weights and per-category log of an uninterrupted run', async () => {
    const data = jsonl('sft.jsonl', [
      { category: 'finance', messages: [{ role: 'user', content: 'rate?' }, { role: 'assistant', content: '5%' }] },
      { category: 'general', messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello' }] },
    ]);
    const spec = { data: { jsonl: data }, init: 'base/engine.lm', steps: 9, batchSize: 2, logEvery: 4 };
    const straight = await engine.trainSft({ ...spec, runId: 'sft-straight' });
    const marker = await drainedAt(6, (control) => engine.trainSft({ ...spec, runId: 'sft-resumed' }, control));
    expect(marker).toMatchObject({ kind: 'sft', step: 6, totalSteps: 9 });
    expect(await store.readManifest('sft-resumed', 'engine.sft')).toBeNull();
    const resumed = await engine.trainSft({ ...spec, runId: 'sft-resumed' }, { resume: marker });
    expect(sha(resumed)).toBe(sha(straight));
    expect(sha(resumed, 'sft-category-loss.jsonl')).toBe(sha(straight, 'sft-category-loss.jsonl'));
    expect(local(resumed).metrics).toEqual({ ...local(straight).metrics, seconds: local(resumed).metrics.seconds });
  });

  it('reward model: resumed with its accuracy before training, it ends where an uninterrupted run does', async () => {
    const data = jsonl('prefs.jsonl', [
      { prompt: 'rate?', chosen: '5%', rejected: 'no idea' },
      { prompt: 'trend?', chosen: 'up 3%', rejected: '??' },
    ]);
    const spec = { data: { jsonl: data }, init: 'base/engine.lm', steps: 6, batchSize: 2 };
    const straight = await engine.trainRewardModel({ ...spec, runId: 'rm-straight' });
    const marker = await drainedAt(2, (control) => engine.trainRewardModel({ ...spec, runId: 'rm-resumed' }, control), { checkpointEverySteps: 1 });
    expect(marker?.step).toBe(2);
    const resumed = await engine.trainRewardModel({ ...spec, runId: 'rm-resumed' }, { resume: marker });
    expect(sha(resumed)).toBe(sha(straight));
    expect(local(resumed).metrics.accuracyBefore).toBe(local(straight).metrics.accuracyBefore);
  });

  it('PPO: drained mid-round it drops that round and hands back the last round end; resumed, it ends where an uninterrupted run does', async () => {
    const prompts = jsonl('prompts.jsonl', [{ prompt: 'rate?' }, { prompt: 'trend?' }]);
    const spec = { data: { jsonl: prompts }, policy: 'base/engine.lm', rewardModel: 'base/engine.rm', rounds: 3, promptsPerRound: 2, samplesPerPrompt: 2, maxTokens: 4 };
    const straight = await engine.runPpo({ ...spec, runId: 'ppo-straight' });
    // Two updates a round: step 3 is inside round 2; round 1's end (step 2) has a marker.
    const marker = await drainedAt(3, (control) => engine.runPpo({ ...spec, runId: 'ppo-resumed' }, control), { checkpointEverySteps: 1 });
    expect(marker).toMatchObject({ kind: 'ppo', step: 2, state: { round: 1 } });
    const resumed = await engine.runPpo({ ...spec, runId: 'ppo-resumed' }, { resume: marker });
    expect(sha(resumed)).toBe(sha(straight));
    expect(local(resumed).metrics).toEqual({ ...local(straight).metrics, seconds: local(resumed).metrics.seconds });
  });

  it('refuses a marker of another job', async () => {
    const corpus = jsonl('corpus.jsonl', [{ id: 'd', text: 'rates', category: 'news' }]);
    const marker: ResumeMarker = { version: 1, kind: 'sft', runId: 'other', stage: 'engine.sft', step: 1, totalSteps: 2, files: {}, state: {}, savedAt: '' };
    await expect(engine.trainCausalLm({ runId: 'lm-marker', data: { jsonl: corpus }, steps: 2, architecture: { layers: 1, width: 16, heads: 2, context: 32 } }, { resume: marker })).rejects.toThrow(
      'resume marker of sft other/engine.sft does not belong to this causal-lm job lm-marker/engine.lm',
    );
  });
});
