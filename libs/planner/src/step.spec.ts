import { describe, expect, it } from 'vitest';
import { manifestKey, objectKey, splitInstanceId, type StageManifest } from '@xyp/contracts';
import { compileRunSpec } from './compile';
import { PlanStepError } from './issues';
import { parseRunSpecText } from './run-spec';
import { planStep, type PlanStep } from './step';

const runId = 'run-step-test';
const inputKey = (name: string) => `runs/${runId}/input/objects/${name.length.toString(16).padStart(64, '0')}`;

/** Phases, a branch and its join, and a loop: the shape the platform must carry. */
const SPEC = `
name: planner-test
inputs:
  losses.jsonl: losses.jsonl
  weights.json: weights.json
stages:
  - id: corpus.inspect
  - id: corpus.bucket#bucket
    needs: [corpus.inspect]
  - id: corpus.bucket#bfd
    needs: [corpus.inspect]
    params: { strategy: bfd, buckets: 2048 }
  - id: corpus.compare
    inputs: { packings: [corpus.bucket#bucket, corpus.bucket#bfd] }
  - id: corpus.mix#stage-1
  - id: corpus.mix#stage-2
    inputs: { weights: corpus.mix#stage-1 }
loops:
  - name: round
    after: corpus.mix#stage-2
    max_rounds: 3
    body:
      - stage: corpus.mix
        inputs: { weights: previous/weights.json }
        params: { stop_below: 0.01 }
`;

const plan = compileRunSpec(parseRunSpecText(SPEC), {
  runId,
  inputKeys: Object.fromEntries(['corpus.jsonl', 'losses.jsonl', 'weights.json'].map((name) => [name, inputKey(name)])),
});

function manifest(id: string, result: Record<string, unknown> = {}, artifacts: string[] = []): StageManifest {
  const { stage, instance } = splitInstanceId(id);
  return {
    version: 1,
    runId,
    stage,
    ...(instance ? { instance } : {}),
    committedAt: '2026-12-02T00:00:00.000Z',
    artifacts: artifacts.map((name, i) => ({ name, key: objectKey(runId, id, String(i).repeat(64)), sha256: String(i).repeat(64), size: 1, contentType: 'application/json' })),
    result,
  };
}

const mixOutput = (id: string, go: boolean) => manifest(id, { decision: { continue: go, reason: go ? 'still moves' : 'settled' } }, ['mixture.json', 'weights.json']);

const ids = (step: PlanStep, status: string) => step.instances.filter((i) => i.status === status).map((i) => i.id);

describe('planning steps', () => {
  it('starts with every instance whose inputs are run inputs, in parallel', () => {
    const step = planStep(plan, runId, new Map(), { build: true });
    expect(step.ready.map((r) => r.id)).toEqual(['corpus.inspect', 'corpus.mix#stage-1']);
    expect(step.ready[1].payload).toEqual({ runId, instance: 'stage-1', lossesKey: inputKey('losses.jsonl'), weightsKey: inputKey('weights.json') });
    expect(step.loops).toEqual([{ name: 'round', maxRounds: 3, rounds: 1, decisions: [], stopped: false, stopReason: '' }]);
    expect(step.done).toBe(false);
  });

  it('branches after one instance and joins on several, handing the join their manifests', () => {
    const committed = new Map([['corpus.inspect', manifest('corpus.inspect')]]);
    expect(planStep(plan, runId, committed, { build: true }).ready.map((r) => r.id)).toEqual(['corpus.bucket#bucket', 'corpus.bucket#bfd', 'corpus.mix#stage-1']);
    committed.set('corpus.bucket#bucket', manifest('corpus.bucket#bucket'));
    expect(ids(planStep(plan, runId, committed), 'waiting')).toContain('corpus.compare');
    committed.set('corpus.bucket#bfd', manifest('corpus.bucket#bfd'));
    const join = planStep(plan, runId, committed, { build: true }).ready.find((r) => r.id === 'corpus.compare');
    expect(join?.payload).toEqual({
      runId,
      packings: [
        { instance: 'corpus.bucket#bucket', manifestKey: manifestKey(runId, 'corpus.bucket#bucket') },
        { instance: 'corpus.bucket#bfd', manifestKey: manifestKey(runId, 'corpus.bucket#bfd') },
      ],
    });
  });

  it('hands the second phase the artifact the first committed', () => {
    const first = mixOutput('corpus.mix#stage-1', true);
    const step = planStep(plan, runId, new Map([['corpus.mix#stage-1', first]]), { build: true });
    const second = step.ready.find((r) => r.id === 'corpus.mix#stage-2');
    expect(second?.payload).toMatchObject({ instance: 'stage-2', weightsKey: first.artifacts[1].key, lossesKey: inputKey('losses.jsonl') });
  });

  it('adds the next round while the decider says continue, and stops on its word with the reason', () => {
    const committed = new Map<string, StageManifest>([
      ['corpus.mix#stage-1', mixOutput('corpus.mix#stage-1', true)],
      ['corpus.mix#stage-2', mixOutput('corpus.mix#stage-2', true)],
    ]);
    let step = planStep(plan, runId, committed, { build: true });
    expect(step.ready.map((r) => r.id)).toEqual(['corpus.inspect', 'corpus.mix#round-1']);
    expect(step.ready[1].payload).toMatchObject({ instance: 'round-1', weightsKey: committed.get('corpus.mix#stage-2')!.artifacts[1].key, stopBelow: 0.01 });

    committed.set('corpus.mix#round-1', mixOutput('corpus.mix#round-1', true));
    step = planStep(plan, runId, committed, { build: true });
    expect(step.loops[0]).toMatchObject({ rounds: 2, stopped: false, decisions: [{ round: 1, decider: 'corpus.mix#round-1', continue: true, reason: 'still moves' }] });
    expect(step.ready.find((r) => r.id === 'corpus.mix#round-2')?.payload).toMatchObject({ weightsKey: committed.get('corpus.mix#round-1')!.artifacts[1].key });

    committed.set('corpus.mix#round-2', mixOutput('corpus.mix#round-2', false));
    step = planStep(plan, runId, committed);
    expect(step.loops[0]).toMatchObject({ rounds: 2, stopped: true, stopReason: 'corpus.mix#round-2 said stop: settled' });
    expect(step.instances.map((i) => i.id)).not.toContain('corpus.mix#round-3');
  });

  it('ends a loop at max_rounds, and is done once everything committed', () => {
    const committed = new Map<string, StageManifest>();
    for (const id of ['corpus.inspect', 'corpus.bucket#bucket', 'corpus.bucket#bfd', 'corpus.compare']) committed.set(id, manifest(id));
    for (const id of ['corpus.mix#stage-1', 'corpus.mix#stage-2', 'corpus.mix#round-1', 'corpus.mix#round-2']) committed.set(id, mixOutput(id, true));
    expect(planStep(plan, runId, committed).done).toBe(false);
    committed.set('corpus.mix#round-3', mixOutput('corpus.mix#round-3', true));
    const step = planStep(plan, runId, committed, { build: true });
    expect(step.loops[0]).toMatchObject({ rounds: 3, stopped: true, stopReason: 'reached max_rounds (3); corpus.mix#round-3 said continue: still moves' });
    expect(step.ready).toEqual([]);
    expect(step.done).toBe(true);
    expect(step.instances).toHaveLength(9);
  });

  it('gives the same answer every time (a step after a crash adds exactly what the lost one would have)', () => {
    const committed = new Map([['corpus.mix#stage-1', mixOutput('corpus.mix#stage-1', true)]]);
    expect(planStep(plan, runId, committed, { build: true })).toEqual(planStep(plan, runId, new Map(committed), { build: true }));
  });

  it('fails a step whose dependency committed without the artifact a binding names', () => {
    const committed = new Map([['corpus.mix#stage-1', manifest('corpus.mix#stage-1', {}, ['mixture.json'])]]);
    expect(() => planStep(plan, runId, committed, { build: true })).toThrow(PlanStepError);
    expect(() => planStep(plan, runId, committed, { build: true })).toThrow('corpus.mix#stage-2: input weights names corpus.mix#stage-1/weights.json, but corpus.mix#stage-1 committed no artifact weights.json (it has: mixture.json)');
  });
});
