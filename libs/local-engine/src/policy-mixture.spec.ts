/**
 * The data mixture in the policy training loops: CPT stages and SFT epochs train on what the
 * controller decided from their own logged losses, and a job killed mid-epoch resumes from its last
 * checkpoint to the same result as a run that was never interrupted.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EngineJob } from '@xyp/contracts';
import { ByteTokenizer, Trainer, initBackend, initParams, disposeModel, type SftExample } from '@xyp/engine';
import { allocateTokens, nextMixture, nextSftRatios } from '@xyp/mixture';
import { LocalDirectoryStore } from '@xyp/storage';
import type { CategoryRows } from '@xyp/training-data';
import { planStage, trainCptMixture, type CategoryLossPoint } from './cpt-mixture';
import { epochReport, trainSftEpochs } from './sft-epochs';
import type { ResumeMarker } from './job-control';
import { LocalEngine } from './local-engine';

const tokenizer = new ByteTokenizer();
const tinyModel = (context: number, seed = 3) => initParams({ vocabSize: 260, contextLength: context, layers: 1, width: 16, heads: 2 }, seed);
const optim = { lr: 3e-3, warmupSteps: 0, totalSteps: 40, weightDecay: 0, clipNorm: 1 };

/** Conversations of three categories that differ in how regular their answers are. */
function conversations(n: number, offset = 0): SftExample[] {
  const out: SftExample[] = [];
  for (let i = offset; i < offset + n; i++) {
    out.push({ category: 'calc', messages: [{ role: 'user', content: `${i}+${i}=?` }, { role: 'assistant', content: `${2 * i}` }] });
    out.push({ category: 'rule', messages: [{ role: 'user', content: `rule ${i}` }, { role: 'assistant', content: 'always disclose risk' }] });
    out.push({ category: 'free', messages: [{ role: 'user', content: `story ${i}` }, { role: 'assistant', content: `the market ${['rose', 'fell', 'held', 'swung'][i % 4]} on day ${i * 7}` }] });
  }
  return out;
}

beforeAll(() => initBackend());

describe('SFT epochs: the ratios of epoch e + 1 are the controller\'s decision on the losses logged up to epoch e', () => {
  it('draws each epoch by its ratios and re-sets them from the training and held-out lines', async () => {
    const model = tinyModel(48);
    const trainer = new Trainer(model, optim, 5);
    const first = { calc: 0.5, rule: 0.25, free: 0.25 };
    const { state } = await trainSftEpochs(trainer, tokenizer, conversations(8), conversations(2, 100), { epochs: 3, batchSize: 4, seq: 48, examplesPerEpoch: 12, ratios: first, seed: 9 });
    expect(state.epochs.map((e) => [e.fromStep, e.toStep])).toEqual([[0, 3], [3, 6], [6, 9]]);
    let ratios: Record<string, number> = first;
    for (const [i, epoch] of state.epochs.entries()) {
      expect(epoch.ratios).toEqual(ratios);
      // Conversations drawn per category: the largest-remainder split of 12 by the epoch's ratios.
      expect(epoch.draws).toEqual(allocateTokens(ratios, 12));
      const upTo = state.lines.filter((l) => l.epoch <= epoch.epoch);
      if (i + 1 < state.epochs.length) {
        const expected = nextSftRatios(epochReport(upTo, 'train'), ratios, {}, epochReport(upTo, 'held-out')).weights;
        expect(epoch.decision?.ratios).toEqual(expected);
        ratios = expected;
      } else {
        expect(epoch.decision).toBeUndefined();
      }
    }
    // One training line per category per epoch (epoch 0: before training), held-out lines for epochs 0 to 3.
    expect(state.lines.filter((l) => l.kind === 'train').map((l) => `${l.epoch}:${l.category}`)).toEqual(['0:calc', '0:free', '0:rule', '1:calc', '1:free', '1:rule', '2:calc', '2:free', '2:rule', '3:calc', '3:free', '3:rule']);
    expect([...new Set(state.lines.filter((l) => l.kind === 'held-out').map((l) => l.epoch))]).toEqual([0, 1, 2, 3]);
    trainer.dispose();
    disposeModel(model);
  });
});

/** Category rows by hand: rows of 9 tokens, one document per row, category a (rows 0-5) and b (rows 6-11). */
function handRows(): CategoryRows {
  const R = 9;
  const n = 12;
  const tokens = new Int32Array(n * R);
  const docIds = new Int32Array(n * R);
  for (let r = 0; r < n; r++) {
    for (let t = 0; t < R; t++) {
      // a: a repeating byte pattern (easy); b: a longer-period pattern (harder).
      tokens[r * R + t] = r < 6 ? 97 + (t % 2) : 97 + ((t * 5 + r) % 11);
      docIds[r * R + t] = r;
    }
  }
  return {
    rowLength: R,
    tokens,
    docIds,
    categories: ['a', 'b'],
    rowCategory: Int32Array.from({ length: n }, (_, r) => (r < 6 ? 0 : 1)),
    train: { a: [0, 1, 2, 3, 4], b: [6, 7, 8, 9, 10] },
    validation: { a: [5], b: [11] },
    buckets: [{ length: R, packedSequences: n, rows: n }],
    packedSequences: n,
    tokenCount: n * R,
    maxTokenId: 108,
    tokenizer: null,
  };
}

describe('CPT mixture stages: each stage trains on the plan of its weights, and the next weights are nextMixture of its lines', () => {
  it('wires the plan, the per-category lines and the controller', async () => {
    const rows = handRows();
    const model = tinyModel(8);
    const trainer = new Trainer(model, optim, 2);
    const first = { a: 0.5, b: 0.5 };
    const seen: number[][] = [];
    const { state } = await trainCptMixture(trainer, rows, {
      steps: 8,
      stages: 2,
      batchSize: 3,
      weights: first,
      logEvery: 1,
      evalEvery: 2,
      validationRows: 4,
      seed: 11,
      onStep: () => void seen.push([trainer.step]),
    });
    expect(state.stages.map((s) => [s.fromStep, s.toStep])).toEqual([[0, 4], [4, 8]]);
    let weights: Record<string, number> = first;
    for (const [k, stage] of state.stages.entries()) {
      expect(stage.weights).toEqual(weights);
      // The rows the stage drew are the first steps × batch draws of its plan.
      const plan = planStage(rows, weights, 4, 3, 11, k);
      const expected: Record<string, number> = {};
      for (const e of plan.order.slice(0, 12)) expected[e.category] = (expected[e.category] ?? 0) + 1;
      expect(stage.draws).toEqual(expected);
      expect(plan.order.every((e) => !rows.validation[e.category].includes(e.docIndex))).toBe(true);
      if (k === 0) {
        const lines = state.lines.filter((l): l is CategoryLossPoint => l.kind === 'train' && l.step > 0 && l.step <= 4).map(({ step, category, loss, tokens }) => ({ step, category, loss, tokens }));
        // A line per category present in a step's batch (logEvery 1); every counted position of the stage in them.
        expect(lines.length).toBeGreaterThanOrEqual(4);
        expect(lines.reduce((n, l) => n + l.tokens, 0)).toBe(4 * 3 * 8);
        expect(stage.decision?.weights).toEqual(nextMixture(lines, weights).weights);
        weights = stage.decision!.weights;
      }
    }
    // Validation at the start, every 2 steps and at the stage ends: steps 0, 2, 4, 6, 8 for both categories.
    expect(state.lines.filter((l) => l.kind === 'validation').map((l) => l.step)).toEqual([0, 0, 2, 2, 4, 4, 6, 6, 8, 8]);
    // Every counted position of a category's rows went into its lines: 8 per row (R − 1), 12 rows a stage.
    const counted = state.lines.filter((l) => l.kind === 'train').reduce((n, l) => n + l.tokens, 0);
    expect(counted).toBe(8 * 3 * 8);
    trainer.dispose();
    disposeModel(model);
  });
});

describe('SFT resumed after a kill mid-epoch', () => {
  const dir = mkdtempSync(join(tmpdir(), 'xyp-sft-resume-'));
  const store = new LocalDirectoryStore(join(dir, 'store'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, rows: SftExample[]) => {
    const path = join(dir, name);
    writeFileSync(path, rows.map((r) => JSON.stringify(r)).join('\n'));
    return path;
  };
  const spec = (runId: string) => ({
    runId,
    stage: 'sft',
    batchSize: 4,
    seed: 4,
    architecture: { layers: 1, width: 16, heads: 2, context: 48 },
    optimizer: { lr: 3e-3, warmupSteps: 0 },
    data: { jsonl: file('train.jsonl', conversations(8)), heldOut: file('held.jsonl', conversations(2, 100)) },
    epochs: { count: 3, examplesPerEpoch: 12 },
  });
  const losses = async (job: EngineJob) => {
    if (job.engine !== 'local') throw new Error('local job expected');
    const entry = job.manifest.artifacts.find((a) => a.name === 'sft-category-loss.jsonl')!;
    return (await store.getObject(entry.key)).toString('utf8');
  };

  it('goes on from the last checkpoint and ends where an uninterrupted run ends', async () => {
    const whole = await new LocalEngine({ store }).trainSft(spec('sft-whole'));
    // Killed at step 5 of 9 (epoch 2 of 3, second step): no hand-back, only the cadence's checkpoints.
    const markers: ResumeMarker[] = [];
    const kill = new AbortController();
    const killed = await new LocalEngine({ store })
      .trainSft(spec('sft-killed'), { signal: kill.signal, checkpointEverySteps: 2, onCheckpoint: async (m) => void markers.push(structuredClone(m)), onProgress: (p) => void (p.done >= 5 && kill.abort(new Error('killed'))) })
      .catch((e: unknown) => e);
    expect(killed).toBeInstanceOf(Error);
    expect(markers.map((m) => m.step)).toEqual([2, 4]);
    const resumed = await new LocalEngine({ store }).trainSft(spec('sft-killed'), { resume: markers.at(-1) });
    expect(resumed.engine === 'local' && resumed.metrics.steps).toBe(9);
    expect(await losses(resumed)).toBe(await losses(whole));
  });
});
