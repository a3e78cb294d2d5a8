/**
 * The reward-model job of the local engine as the reward stages run it: phase 1 from a fresh model,
 * phase 2 from phase 1's committed checkpoint (a stage instance's ID), curves as artifacts, and
 * scoring of preference records with the checkpoint.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import type { EngineJob, PreferenceRecord } from '@xyp/contracts';
import { loadModel, openCheckpoint } from '@xyp/engine';
import { LocalDirectoryStore } from '@xyp/storage';
import { LocalEngine } from './local-engine';
import type { RewardCurvePoint } from './reward-curves';

const dir = mkdtempSync(join(tmpdir(), 'xyp-rm-job-'));
const store = new LocalDirectoryStore(join(dir, 'store'));
const engine = new LocalEngine({ store });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function record(i: number, set: 'finance' | 'general', category: string): PreferenceRecord {
  return {
    id: `r${set}${i}`,
    prompt: [{ role: 'user', content: `question ${i} about ${category}?` }],
    chosen: [{ role: 'assistant', content: `grounded answer ${i}` }],
    rejected: [{ role: 'assistant', content: `made up ${i}!!` }],
    set,
    category,
    phase: set === 'finance' ? 'finetune' : 'pretrain',
  };
}

function jsonl(name: string, rows: unknown[]): string {
  const file = join(dir, name);
  writeFileSync(file, rows.map((r) => `${JSON.stringify(r)}\n`).join(''));
  return file;
}

async function committed(job: EngineJob): Promise<Extract<EngineJob, { engine: 'local' }>> {
  if (job.engine !== 'local') throw new Error('expected a local job');
  expect((await store.commitManifest(job.manifest)).committed).toBe(true);
  return job;
}

const architecture = { layers: 1, width: 16, heads: 2, context: 64 };
const general = Array.from({ length: 12 }, (_, i) => record(i, 'general', 'general.safety'));
const finance = Array.from({ length: 12 }, (_, i) => record(i, 'finance', 'finance.calculation'));
const heldOut = [...general.slice(0, 3), ...finance.slice(0, 3)].map((r) => ({ ...r, id: `${r.id}-t` }));

describe('reward-model job in two phases', () => {
  it('trains phase 2 from phase 1’s committed weights, under a stage-instance checkpoint ID, with curves', async () => {
    const phase1 = await committed(
      await engine.trainRewardModel({ runId: 'rm-two', stage: 'reward.train#pretrain', steps: 4, batchSize: 4, architecture, evalEvery: 2, phase: 'pretrain', weights: { bt: 1, irl: 0.5, cl: 0.1 }, data: { jsonl: jsonl('g.jsonl', general), heldOut: jsonl('t.jsonl', heldOut) } }),
    );
    expect(phase1.checkpoint).toBe('rm-two/reward.train#pretrain');
    expect(phase1.manifest.artifacts.every((a) => a.key.startsWith('runs/rm-two/reward.train/pretrain/'))).toBe(true);
    const names = phase1.manifest.artifacts.map((a) => a.name);
    for (const name of ['config.json', 'model.safetensors', 'curves.jsonl', 'curves-loss.png', 'curves-accuracy.png', 'curves-rewards.png']) expect(names).toContain(name);
    const png = await store.getObject(phase1.manifest.artifacts.find((a) => a.name === 'curves-accuracy.png')!.key);
    expect([...png.subarray(1, 4)].map((c) => String.fromCharCode(c)).join('')).toBe('PNG');
    expect(inflateSync(png.subarray(png.indexOf('IDAT') + 4)).length).toBeGreaterThan(0);
    const curves = (await store.getObject(phase1.manifest.artifacts.find((a) => a.name === 'curves.jsonl')!.key)).toString('utf8').trim().split('\n').map((l) => JSON.parse(l) as RewardCurvePoint);
    // Evaluations at steps 0, 2 and 4 (the last); one step point per step with every term.
    expect(curves.filter((c) => c.kind === 'eval').map((c) => c.step)).toEqual([0, 2, 4]);
    const steps = curves.filter((c) => c.kind === 'step');
    expect(steps.map((c) => c.step)).toEqual([1, 2, 3, 4]);
    for (const s of steps) if (s.kind === 'step') expect(s.loss).toBeCloseTo(s.bt + 0.5 * s.irl + 0.1 * s.cl, 4);
    expect(phase1.metrics.heldOutPairs).toBe(6);

    // Phase 2 from phase 1: its weights before the first step are phase 1's final weights.
    const before = await loadModel((await openCheckpoint(phase1.checkpoint, store)).sink, false);
    const phase2 = await committed(
      await engine.trainRewardModel({ runId: 'rm-two', stage: 'reward.train#finetune', init: phase1.checkpoint, steps: 2, batchSize: 4, evalEvery: 1, phase: 'finetune', data: { jsonl: jsonl('f.jsonl', finance), heldOut: jsonl('t.jsonl', heldOut) } }),
    );
    expect(phase2.manifest.result.init).toBe('rm-two/reward.train#pretrain');
    // Same held-out accuracy before phase 2's first step as after phase 1's last: the weights were carried over.
    expect(phase2.metrics.heldOutAccuracyBefore).toBe(phase1.metrics.heldOutAccuracyAfter);
    const phase2Curves = (await store.getObject(phase2.manifest.artifacts.find((a) => a.name === 'curves.jsonl')!.key)).toString('utf8').trim().split('\n').map((l) => JSON.parse(l) as RewardCurvePoint);
    const firstEval = phase2Curves.find((c) => c.kind === 'eval')!;
    const byPhase1 = await engine.scorePreferences(phase1.checkpoint, heldOut);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(firstEval.step).toBe(0);
    expect(firstEval.chosenMean).toBeCloseTo(mean(byPhase1.scored.map((s) => s.chosen)), 6);
    expect(firstEval.rejectedMean).toBeCloseTo(mean(byPhase1.scored.map((s) => s.rejected)), 6);
    const after = await loadModel((await openCheckpoint(phase2.checkpoint, store)).sink, false);
    expect(after.config.width).toBe(before.config.width);
    const w0 = before.params.value_w.dataSync();
    const w2 = after.params.value_w.dataSync();
    expect(Array.from(w2)).not.toEqual(Array.from(w0));

    // Scoring records with the committed checkpoint gives the rewards the job measured.
    const { scored, model } = await engine.scorePreferences(phase2.checkpoint, heldOut);
    expect(model).toBe('rm-two/reward.train#finetune');
    expect(scored).toHaveLength(6);
    const aligned = scored.filter((s) => s.chosen > s.rejected).length / scored.length;
    expect(aligned).toBeCloseTo(phase2.metrics.heldOutAccuracyAfter, 10);
    expect(scored[3]).toMatchObject({ id: heldOut[3].id, set: 'finance', category: 'finance.calculation' });
  });

  it('keeps the last tokens of a pair longer than the context instead of dropping it', async () => {
    const long = general.map((r, i) => ({ ...r, id: `long${i}`, prompt: [{ role: 'user' as const, content: 'x'.repeat(200) + r.prompt[0].content }] }));
    const job = await committed(await engine.trainRewardModel({ runId: 'rm-long', steps: 1, batchSize: 2, architecture, data: { jsonl: jsonl('long.jsonl', long) } }));
    expect(job.metrics.pairs).toBe(12);
    expect(job.metrics.pairsTruncated).toBe(12);
  });
});
