import { describe, expect, it } from 'vitest';
import { CausalLmSpec, PpoSpec, RewardModelSpec, UfrmWeights, parseSpec } from './training-jobs';

describe('training job specs', () => {
  it('names the field path of the first problem', () => {
    expect(() => parseSpec(CausalLmSpec, { runId: 'lm-1', steps: 0, data: {} }, 'causal LM')).toThrow(/^causal LM spec: steps: /);
    expect(() => parseSpec(CausalLmSpec, { runId: 'Bad_Run', steps: 1, data: {} }, 'causal LM')).toThrow(/^causal LM spec: runId: run id: /);
    expect(() => parseSpec(RewardModelSpec, { runId: 'rm-1', steps: 1, data: { jsonl: 'p.jsonl' }, init: 'lm-1/engine.lm', weights: { tau: 0 } }, 'reward model')).toThrow(
      /^reward model spec: weights\.tau: /,
    );
  });

  it('fills the stage and the UFRM defaults (Bradley-Terry alone, τ = 0.05)', () => {
    const spec = parseSpec(RewardModelSpec, { runId: 'rm-1', steps: 1, data: { jsonl: 'p.jsonl' }, init: 'lm-1/engine.lm' }, 'reward model');
    expect(spec.stage).toBe('engine.rm');
    expect(spec.weights).toEqual({ bt: 1, irl: 0, cl: 0, tau: 0.05, margin: false, center: 0 });
    expect(parseSpec(RewardModelSpec, { runId: 'rm-1', stage: 'reward.train#finetune', steps: 1, data: { jsonl: 'p.jsonl' } }, 'reward model').stage).toBe('reward.train#finetune');
    expect(() => parseSpec(RewardModelSpec, { runId: 'rm-1', stage: 'reward.train#Bad Key', steps: 1, data: { jsonl: 'p.jsonl' } }, 'reward model')).toThrow(/stage: instance key/);
    expect(UfrmWeights.safeParse({ irl: -1 }).success).toBe(false);
  });

  it('takes PPO rounds instead of steps', () => {
    const spec = parseSpec(PpoSpec, { runId: 'ppo-1', data: { jsonl: 'q.jsonl' }, policy: 'a-1/engine.sft', rewardModel: 'a-1/engine.rm' }, 'PPO');
    expect(spec).toMatchObject({ stage: 'engine.ppo', rounds: 1, klCoef: 0.01, gamma: 1, lambda: 0.95 });
    expect('steps' in spec).toBe(false);
  });
});
