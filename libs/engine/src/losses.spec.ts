import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from './backend';
import { directionalGradientCheck } from './grad-check';
import { initParams, type ModelConfigInput } from './model';
import { ufrmLoss, type PreferencePair } from './reward';
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

  const pairs: PreferencePair[] = [
    { prompt: [1, 2], chosen: [3, 4, 5], rejected: [6, 7] },
    { prompt: [2], chosen: [8, 9], rejected: [10, 1, 2] },
    { prompt: [5, 5, 5], chosen: [4], rejected: [3, 3] },
  ];
  const rm: ModelConfigInput = { ...tiny, lmHead: false, valueHead: true, dropout: 0.1 };

  it('Bradley-Terry term of the UFRM loss', () => {
    const model = initParams(rm, 3);
    expectMatch(directionalGradientCheck(model.params, () => ufrmLoss(model, pairs, { bt: 1 }, [1, 2]).loss, 9));
  });

  it('inverse-RL term of the UFRM loss', () => {
    const model = initParams(rm, 4);
    expectMatch(directionalGradientCheck(model.params, () => ufrmLoss(model, pairs, { bt: 0, irl: 1 }, [1, 2]).loss, 10));
  });

  it('SimCSE contrastive term with two dropout passes', () => {
    const model = initParams(rm, 5);
    const { cl } = tf.tidy(() => {
      const t = ufrmLoss(model, pairs, { bt: 0, cl: 1, tau: 0.5 }, [1, 2]);
      return { cl: t.cl.dataSync()[0] };
    });
    expect(cl).toBeGreaterThan(0);
    expectMatch(directionalGradientCheck(model.params, () => ufrmLoss(model, pairs, { bt: 0, cl: 1, tau: 0.5 }, [1, 2]).loss, 11));
  });

  it('all UFRM terms weighted together', () => {
    const model = initParams(rm, 6);
    expectMatch(directionalGradientCheck(model.params, () => ufrmLoss(model, pairs, { bt: 1, irl: 0.5, cl: 0.3, tau: 0.5 }, [3, 4]).loss, 12));
  });
});
