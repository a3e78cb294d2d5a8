import { describe, expect, it } from 'vitest';
import { emaBiasCorrected, leastSquaresSlope, lossCurve, summarizeLossCurve } from './curve';

const options = { emaBeta: 0.8, slopeWindow: 8, minSlopePoints: 3, lossFloor: 1e-6 };

describe('loss curve summary', () => {
  it('merges lines of one step by a token-weighted mean, plain mean when tokens are missing', () => {
    expect(
      lossCurve([
        { step: 10, category: 'a', loss: 1, tokens: 3 },
        { step: 10, category: 'a', loss: 2, tokens: 1 },
        { step: 0, category: 'a', loss: 4 },
        { step: 0, category: 'a', loss: 2, tokens: 5 },
      ]),
    ).toEqual([
      { step: 0, loss: 3, tokens: 5 },
      { step: 10, loss: 1.25, tokens: 4 },
    ]);
  });

  it('returns a single value unchanged from the bias-corrected EMA, the last value with β = 0', () => {
    expect(emaBiasCorrected([2.5], 0.9)).toBeCloseTo(2.5, 14);
    expect(emaBiasCorrected([1, 2, 3], 0)).toBe(3);
    expect(emaBiasCorrected([2, 2, 2, 2], 0.8)).toBeCloseTo(2, 14);
  });

  it('recovers the exponent of an exponential decay as the log-loss slope', () => {
    const steps = [0, 100, 200, 300, 400];
    expect(leastSquaresSlope(steps, steps.map((s) => Math.log(3 * Math.exp(-s / 500))))).toBeCloseTo(-1 / 500, 12);
    expect(leastSquaresSlope([5, 5], [1, 2])).toBeNull();
  });

  it('anchors the start loss at the first points and the current loss at the last ones', () => {
    const lines = [0, 1, 2, 3, 4, 5].map((i) => ({ step: i * 100, category: 'a', loss: 3 - i * 0.4 }));
    const summary = summarizeLossCurve(lines, options);
    expect(summary.lossStart).toBeGreaterThan(2.2);
    expect(summary.lossNow).toBeLessThan(1.8);
    expect(summary.slope).toBeLessThan(0);
    expect(summary.points).toBe(6);
  });

  it('gives no slope with fewer points than minSlopePoints', () => {
    const summary = summarizeLossCurve(
      [
        { step: 0, category: 'a', loss: 2 },
        { step: 10, category: 'a', loss: 1.5 },
      ],
      options,
    );
    expect(summary.slope).toBeNull();
    expect(summary.slopePoints).toBe(0);
  });
});
