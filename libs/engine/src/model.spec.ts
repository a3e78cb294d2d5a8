import * as tf from '@tensorflow/tfjs-core';
import { SplitMix32, nextSeed } from '@xyp/random';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from './backend';
import { dropout, forwardHidden, initParams } from './model';

beforeAll(async () => {
  await initBackend();
});

describe('dropout', () => {
  it("draws the masks of step(randomUniform(seed) − rate) · 1/(1 − rate), bit for bit, and keeps about 1 − rate", () => {
    for (const [shape, rate, seed] of [
      [[3, 5, 7], 0.1, 1],
      [[4000], 0.5, 42],
      [[64, 33], 0.9, 20261206],
      [[2, 2], 0.25, 7],
    ] as const) {
      const x = tf.randomNormal([...shape], 0, 1, 'float32', seed);
      const got = dropout(x, rate, new SplitMix32(seed)).dataSync();
      const want = tf.tidy(() => {
        const keep = tf.step(tf.sub(tf.randomUniform([...shape], 0, 1, 'float32', nextSeed(new SplitMix32(seed))), rate));
        return tf.mul(x, tf.mul(keep, 1 / (1 - rate))).dataSync();
      });
      expect(Array.from(got)).toEqual(Array.from(want));
      const kept = Array.from(got).filter((v) => v !== 0).length / got.length;
      if (got.length >= 1000) expect(Math.abs(kept - (1 - rate))).toBeLessThan(0.05);
      // The kept elements are scaled, not copied.
      const xs = x.dataSync();
      const i = Array.from(got).findIndex((v) => v !== 0);
      expect(got[i]).toBe(Math.fround(xs[i] * Math.fround(1 / (1 - rate))));
      x.dispose();
    }
    // Off without a generator or at rate 0: the input itself.
    const x = tf.ones([3]);
    expect(dropout(x, 0.1, undefined)).toBe(x);
    expect(dropout(x, 0, new SplitMix32(1))).toBe(x);
  });
});

describe('forwardHidden: attention mask and rotary tables', () => {
  it('a document boundary, left padding and a shifted position each change exactly the outputs they should', () => {
    const m = initParams({ vocabSize: 20, contextLength: 32, layers: 1, width: 16, heads: 2 }, 5);
    const T = 8;
    const ids = Int32Array.from({ length: T }, (_, i) => 1 + ((i * 3) % 19));
    const run = (extra: object) => Array.from(tf.tidy(() => forwardHidden(m, { ids, batch: 1, seq: T, ...extra }).dataSync()));
    const D = 16;
    const row = (out: number[], t: number) => out.slice(t * D, (t + 1) * D);
    const base = run({});
    // Two documents, the second from token 5: tokens 0–4 unchanged, 5–7 see only their own document.
    const segmented = run({ segments: Int32Array.of(0, 0, 0, 0, 0, 1, 1, 1) });
    for (let t = 0; t < 5; t++) expect(row(segmented, t)).toEqual(row(base, t));
    for (let t = 5; t < T; t++) expect(row(segmented, t)).not.toEqual(row(base, t));
    // Token 5 alone in its document sees what token 0 sees at the start of a sequence of its own (rotary: relative positions).
    const alone = Array.from(tf.tidy(() => forwardHidden(m, { ids: ids.slice(5), batch: 1, seq: 3, positions: Int32Array.of(5, 6, 7) }).dataSync()));
    row(segmented, 5).forEach((v, j) => expect(Math.abs(v - alone[j])).toBeLessThan(1e-5));
    // Key 2 masked: tokens before it unchanged, tokens from it on changed.
    const masked = run({ keyValid: Uint8Array.of(1, 1, 0, 1, 1, 1, 1, 1) });
    for (let t = 0; t < 2; t++) expect(row(masked, t)).toEqual(row(base, t));
    for (let t = 3; t < T; t++) expect(row(masked, t)).not.toEqual(row(base, t));
    // Shifting every position by the same amount leaves rotary attention's relative angles (and so the output) to rounding.
    const shifted = run({ positions: Int32Array.from({ length: T }, (_, i) => i + 17) });
    shifted.forEach((v, j) => expect(Math.abs(v - base[j])).toBeLessThan(1e-4));
    expect(() => run({ positions: Int32Array.of(0, 1, 2, -1, 4, 5, 6, 7) })).toThrow(/position -1 \(token 3\) is negative/);
  });
});
