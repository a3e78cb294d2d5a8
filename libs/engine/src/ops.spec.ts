import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from './backend';
import { bmm, gatherRows, linear, splitPieces, tokenNll } from './ops';

beforeAll(async () => {
  await initBackend();
});

function close(a: tf.Tensor, b: tf.Tensor, tol = 1e-4): void {
  const x = a.dataSync();
  const y = b.dataSync();
  expect(x.length).toBe(y.length);
  for (let i = 0; i < x.length; i++) expect(Math.abs(x[i] - y[i])).toBeLessThan(tol * (1 + Math.abs(y[i])));
}

describe('fast-path ops', () => {
  it('splits a tensor into pieces straight from the heap', () => {
    const x = tf.range(0, 24).reshape([4, 6]);
    const pieces = splitPieces(x, 3, 2, 4);
    expect(pieces.map((p) => Array.from(p.dataSync()))).toEqual([
      [0, 1, 2, 3, 4, 5, 6, 7],
      [8, 9, 10, 11, 12, 13, 14, 15],
      [16, 17, 18, 19, 20, 21, 22, 23],
    ]);
  });

  it('linear and bmm give the values and gradients of the built-in matMul', () => {
    const x = tf.randomNormal([5, 3], 0, 1, 'float32', 1) as tf.Tensor2D;
    const w = tf.randomNormal([3, 4], 0, 1, 'float32', 2) as tf.Tensor2D;
    const [gx, gw] = tf.grads((a, b) => tf.sum(tf.square(linear(a as tf.Tensor2D, b as tf.Tensor2D))))([x, w]);
    const [rx, rw] = tf.grads((a, b) => tf.sum(tf.square(tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D))))([x, w]);
    close(gx, rx);
    close(gw, rw);
    const a = tf.randomNormal([3, 4, 5], 0, 1, 'float32', 3) as tf.Tensor3D;
    const b = tf.randomNormal([3, 5, 2], 0, 1, 'float32', 4) as tf.Tensor3D;
    close(bmm(a, b), tf.matMul(a, b));
    const [ga, gb] = tf.grads((p, q) => tf.sum(tf.square(bmm(p as tf.Tensor3D, q as tf.Tensor3D))))([a, b]);
    const [ra, rb] = tf.grads((p, q) => tf.sum(tf.square(tf.matMul(p as tf.Tensor3D, q as tf.Tensor3D))))([a, b]);
    close(ga, ra);
    close(gb, rb);
  });

  it('gatherRows sums the gradient of repeated rows', () => {
    const table = tf.randomNormal([4, 3], 0, 1, 'float32', 5) as tf.Tensor2D;
    const idx = tf.tensor1d([1, 1, 3], 'int32');
    const [g] = tf.grads((t) => tf.sum(gatherRows(t as tf.Tensor2D, idx)))([table]);
    expect(Array.from(g.dataSync())).toEqual([0, 0, 0, 2, 2, 2, 0, 0, 0, 1, 1, 1]);
  });

  it('tokenNll equals softmax cross-entropy and its gradient', () => {
    const z = tf.randomNormal([6, 7], 0, 2, 'float32', 6) as tf.Tensor2D;
    const t = tf.tensor1d([0, 3, 6, 2, 2, 5], 'int32');
    const ref = (x: tf.Tensor) => tf.neg(tf.sum(tf.mul(tf.logSoftmax(x as tf.Tensor2D), tf.oneHot(t, 7)), 1));
    close(tokenNll(z, t), ref(z));
    const [g] = tf.grads((x) => tf.sum(tf.mul(tokenNll(x as tf.Tensor2D, t), tf.range(1, 7))))([z]);
    const [r] = tf.grads((x) => tf.sum(tf.mul(ref(x), tf.range(1, 7))))([z]);
    close(g, r);
  });
});
