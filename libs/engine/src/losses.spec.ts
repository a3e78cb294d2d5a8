import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from './backend';
import { directionalGradientCheck } from './grad-check';
import { initParams, type ModelConfigInput } from './model';
import { cptBatch, lmLoss, packDocuments } from './train';

beforeAll(async () => {
  await initBackend();
});

const tiny: ModelConfigInput = { vocabSize: 11, contextLength: 8, layers: 2, width: 8, heads: 2 };

function expectMatch({ analytic, numeric }: { analytic: number; numeric: number }): void {
  expect(Math.abs(analytic)).toBeGreaterThan(1e-3);
  expect(Math.abs(analytic - numeric)).toBeLessThan(2e-2 * Math.abs(analytic) + 1e-4);
}

describe('finite-difference gradient checks on a tiny model', () => {
  it('causal LM loss on packed rows with document masks (rotary positions)', () => {
    const model = initParams(tiny, 1);
    const rows = packDocuments([[1, 2, 3], [4, 5, 6, 7, 8], [9, 10, 1, 2, 3, 4]], 6, 0);
    const batch = cptBatch(rows, [0, 1]);
    expect(batch.segments).toBeDefined();
    expectMatch(directionalGradientCheck(model.params, () => lmLoss(model, batch).loss, 7));
  });

  it('SFT loss (weights on some tokens only) with learned positions and dropout', () => {
    const model = initParams({ ...tiny, positions: 'learned', dropout: 0.2 }, 2);
    const ids = Int32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 1, 2]);
    const targets = Int32Array.from([2, 3, 4, 5, 6, 7, 8, 9, 10, 1, 2, 3]);
    const weights = Float32Array.from([0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0]);
    const batch = { ids, targets, weights, batch: 2, seq: 6 };
    expectMatch(directionalGradientCheck(model.params, () => lmLoss(model, batch, 99).loss, 8));
  });
});
