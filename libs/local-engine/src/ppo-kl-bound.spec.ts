import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EngineJob, PpoSpecInput, TextReward } from '@xyp/contracts';
import { initBackend } from '@xyp/engine';
import { LocalDirectoryStore } from '@xyp/storage';
import { LocalEngine } from './local-engine';
import { commitFreshModel } from './testing/fresh-checkpoint';

const dir = mkdtempSync(join(tmpdir(), 'xyp-ppo-kl-bound-'));
const store = new LocalDirectoryStore(join(dir, 'store'));
const engine = new LocalEngine({ store });
const POLICY = 'kl-bound/engine.lm';
const OTHER = 'kl-bound/other.lm';
const prompts = join(dir, 'prompts.jsonl');

beforeAll(async () => {
  await initBackend();
  await commitFreshModel(store, POLICY, false, 31);
  await commitFreshModel(store, OTHER, false, 32);
  writeFileSync(prompts, ['rate?', 'trend?', 'bond yield?'].map((prompt) => JSON.stringify({ prompt })).join('\n'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A reward the policy moves far for quickly: the share of `a` in the response. */
const letterA: TextReward = async (batch) => batch.map((item) => [...item.response].filter((ch) => ch === 'a').length / Math.max(1, item.response.length));

type Local = Extract<EngineJob, { engine: 'local' }>;
type Round = { meanKl: number; overKlBound?: boolean };

async function ppo(runId: string, overrides: Partial<PpoSpecInput>): Promise<Local> {
  const job = await engine.runPpo(
    {
      runId,
      policy: POLICY,
      rewardModel: 'unused/reward',
      data: { jsonl: prompts },
      rounds: 5,
      promptsPerRound: 3,
      samplesPerPrompt: 4,
      maxTokens: 8,
      klCoef: 0,
      seed: 5,
      // A constant learning rate: a shorter job follows the same trajectory as a longer one.
      optimizer: { lr: 3e-2, minLr: 3e-2, warmupSteps: 0, weightDecay: 0, clipNorm: 1 },
      ...overrides,
    },
    { reward: letterA },
  );
  if (job.engine !== 'local') throw new Error('expected a local job');
  return job;
}

const roundsOf = (job: Local) => (job.manifest.result as { rounds: Round[] }).rounds;
const weightsSha = (job: Local) => job.manifest.artifacts.find((a) => a.name === 'model.safetensors')?.sha256;

describe('PPO with a KL bound (PpoSpec.maxKl)', () => {
  it('stops at the first round whose rollouts are above the bound and returns the weights before the update that took it there', async () => {
    const free = roundsOf(await ppo('kl-free', {}));
    // Round 1 samples from the reference's own weights (k1 KL 0 but for float rounding); the push on `a` then moves it.
    expect(Math.abs(free[0].meanKl)).toBeLessThan(1e-5);
    expect(free[2].meanKl).toBeGreaterThan(free[1].meanKl);
    const bound = (free[1].meanKl + free[2].meanKl) / 2;

    const bounded = await ppo('kl-bounded', { maxKl: bound });
    const rounds = roundsOf(bounded);
    // Rounds 1-2 as without the bound; round 3's rollouts (of the weights round 2's update made) are above it.
    expect(rounds.map((r) => r.meanKl)).toEqual(free.slice(0, 3).map((r) => r.meanKl));
    expect(rounds.map((r) => r.overKlBound ?? false)).toEqual([false, false, true]);
    expect(bounded.metrics).toMatchObject({ rounds: 3, klBoundStop: 1, keptUpdates: 1, keptMeanKl: free[1].meanKl });
    expect((bounded.manifest.result as { klBound: unknown }).klBound).toMatchObject({ maxKl: bound, exceededAtRound: 3, keptUpdates: 1 });

    // The weights returned are those after round 1's update: byte for byte a one-round job's.
    const oneRound = await ppo('kl-one-round', { rounds: 1 });
    expect(weightsSha(bounded)).toBe(weightsSha(oneRound));
    expect(weightsSha(bounded)).not.toBe(weightsSha(await ppo('kl-two-rounds', { rounds: 2 })));
  });

  it('makes no update when the starting policy is already above the bound', async () => {
    const job = await ppo('kl-start-above', { reference: OTHER, maxKl: 1e-6 });
    const rounds = roundsOf(job);
    expect(rounds).toHaveLength(1);
    expect(rounds[0].meanKl).toBeGreaterThan(1e-6);
    expect(rounds[0].overKlBound).toBe(true);
    expect(job.metrics).toMatchObject({ klBoundStop: 1, keptUpdates: 0 });
    expect((job.manifest.result as { klBound: { kept: string } }).klBound.kept).toMatch(/starting policy is already above the bound/);
  });

  it('trains every round when the rollouts stay within the bound', async () => {
    const job = await ppo('kl-within', { maxKl: 1e6 });
    expect(roundsOf(job)).toHaveLength(5);
    expect(job.metrics).toMatchObject({ klBoundStop: 0, keptUpdates: 5 });
  });
});
