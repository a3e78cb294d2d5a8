/**
 * Differentiable building blocks whose gradients keep every matrix product on the fast path of the
 * WASM backend. TF.js's WASM `BatchMatMul` multiplies at full XNNPACK speed only for an untransposed
 * product with batch 1; with `transposeA`/`transposeB` set (what the built-in gradient of `matMul`
 * uses) or with a batch dimension above 1 it takes a scalar loop that is 10-45x slower. Each gradient
 * here therefore transposes explicitly and multiplies untransposed 2-D matrices.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { nativeBlas } from './native';

type Grad = (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor | tf.Tensor[];
type CustomGradientFunc = Parameters<typeof tf.customGrad>[0];

/** `tf.customGrad` for a function of one tensor (typed; TF.js's signature takes a rest array). */
export function customGrad1(f: (x: tf.Tensor, save: tf.GradSaveFunc) => { value: tf.Tensor; gradFunc: Grad }): (x: tf.Tensor) => tf.Tensor {
  const g = tf.customGrad(((...args: (tf.Tensor | tf.GradSaveFunc)[]) => f(args[0] as tf.Tensor, args[1] as tf.GradSaveFunc)) as CustomGradientFunc);
  return (x) => (g as (...xs: tf.Tensor[]) => tf.Tensor)(x);
}

/** `tf.customGrad` for a function of three tensors. */
export function customGrad3(
  f: (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor, save: tf.GradSaveFunc) => { value: tf.Tensor; gradFunc: Grad },
): (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.Tensor {
  const g = tf.customGrad(
    ((...args: (tf.Tensor | tf.GradSaveFunc)[]) =>
      f(args[0] as tf.Tensor, args[1] as tf.Tensor, args[2] as tf.Tensor, args[3] as tf.GradSaveFunc)) as CustomGradientFunc,
  );
  return (a, b, c) => (g as (...xs: tf.Tensor[]) => tf.Tensor)(a, b, c);
}

/** `tf.customGrad` for a function of two tensors. */
export function customGrad2(
  f: (a: tf.Tensor, b: tf.Tensor, save: tf.GradSaveFunc) => { value: tf.Tensor; gradFunc: Grad },
): (a: tf.Tensor, b: tf.Tensor) => tf.Tensor {
  const g = tf.customGrad(
    ((...args: (tf.Tensor | tf.GradSaveFunc)[]) => f(args[0] as tf.Tensor, args[1] as tf.Tensor, args[2] as tf.GradSaveFunc)) as CustomGradientFunc,
  );
  return (a, b) => g(a, b);
}

function onWasm(): boolean {
  return tf.getBackend() === 'wasm';
}

/** Whether the fused native kernels (`native.ts`) serve this backend. */
export function nativeKernels(): boolean {
  return nativeBlas() !== undefined && onWasm();
}

function runKernel(name: string, inputs: tf.NamedTensorMap, attrs: tf.NamedAttrMap = {}): tf.Tensor[] {
  const out = tf.engine().runKernel(name, inputs, attrs) as tf.Tensor | tf.Tensor[];
  return Array.isArray(out) ? out : [out];
}

/**
 * Splits a float32 tensor of `pieces × rows × cols` values into `pieces` tensors of shape
 * `[rows, cols]`. On WASM, `tf.slice`/`tf.split`/`tf.unstack` copy the whole input out of the heap for
 * every piece; this copies each piece once, straight from the heap.
 */
export function splitPieces(x: tf.Tensor, pieces: number, rows: number, cols: number): tf.Tensor2D[] {
  if (!onWasm()) return tf.unstack(tf.reshape(x, [pieces, rows, cols])) as tf.Tensor2D[];
  const backend = tf.backend() as BackendWasm;
  const base = backend.dataIdMap.get(x.dataId).memoryOffset / 4;
  const size = rows * cols;
  const out: tf.Tensor2D[] = [];
  for (let i = 0; i < pieces; i++) {
    // Re-read the heap view every time: allocating the previous piece may have grown the memory.
    const heap = (backend.wasm as unknown as { HEAPF32: Float32Array }).HEAPF32;
    out.push(tf.tensor2d(heap.slice(base + i * size, base + (i + 1) * size), [rows, cols]));
  }
  return out;
}

/** `[b, m, k] · [b, k, n] → [b, m, n]` without the transposed or batched slow paths. */
function bmmForward(a: tf.Tensor3D, b: tf.Tensor3D): tf.Tensor3D {
  const [batch, m, k] = a.shape;
  const n = b.shape[2];
  if (!onWasm() || nativeBlas()) return tf.matMul(a, b);
  if (batch === 1) return tf.reshape(tf.matMul(tf.reshape(a, [m, k]), tf.reshape(b, [k, n])), [1, m, n]);
  return tf.tidy(() => {
    const as = splitPieces(a, batch, m, k);
    const bs = splitPieces(b, batch, k, n);
    const products = as.map((ai, i) => tf.matMul(ai, bs[i]));
    return tf.reshape(tf.concat(products, 0), [batch, m, n]);
  });
}

/**
 * Batched product `C = A · B`, A `[b, m, k]`, B `[b, k, n]`, C `[b, m, n]`.
 * Gradient: `dA = dC · Bᵀ` `[b, m, k]`, `dB = Aᵀ · dC` `[b, k, n]`, transposes done explicitly.
 */
export const bmm = customGrad2((a: tf.Tensor, b: tf.Tensor, save: tf.GradSaveFunc) => {
  save([a, b]);
  return {
    value: bmmForward(a as tf.Tensor3D, b as tf.Tensor3D),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [sa, sb] = saved as tf.Tensor3D[];
      const d = dy as tf.Tensor3D;
      // OpenBLAS reads transposed operands in place, so the flags cost nothing there.
      if (nativeBlas()) return [tf.matMul(d, sb, false, true), tf.matMul(sa, d, true, false)];
      return [bmmForward(d, tf.transpose(sb, [0, 2, 1])), bmmForward(tf.transpose(sa, [0, 2, 1]), d)];
    },
  };
}) as (a: tf.Tensor3D, b: tf.Tensor3D) => tf.Tensor3D;

/**
 * Dense layer without bias: `Y = X · W`, X `[n, k]`, W `[k, m]`, Y `[n, m]`.
 * Gradient: `dX = dY · Wᵀ` `[n, k]`, `dW = Xᵀ · dY` `[k, m]`, transposes done explicitly.
 */
export const linear = customGrad2((x: tf.Tensor, w: tf.Tensor, save: tf.GradSaveFunc) => {
  save([x, w]);
  return {
    value: tf.matMul(x as tf.Tensor2D, w as tf.Tensor2D),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [sx, sw] = saved as tf.Tensor2D[];
      const d = dy as tf.Tensor2D;
      if (nativeBlas()) return [tf.matMul(d, sw, false, true), tf.matMul(sx, d, true, false)];
      return [tf.matMul(d, tf.transpose(sw)), tf.matMul(tf.transpose(sx), d)];
    },
  };
}) as (x: tf.Tensor2D, w: tf.Tensor2D) => tf.Tensor2D;

/**
 * Row lookup `Y[i] = T[idx[i]]`, T `[V, D]`, idx `[n]` int32, Y `[n, D]` (token embeddings, picking the
 * last position of each sequence). Gradient: `dT = Σ_i e_{idx[i]} dY[i]` via `scatterND`, which sums
 * repeated indices (the WASM backend has no `UnsortedSegmentSum`, which the built-in gather gradient needs).
 */
export const gatherRows = customGrad2((table: tf.Tensor, idx: tf.Tensor, save: tf.GradSaveFunc) => {
  save([idx]);
  const shape = table.shape;
  if (nativeKernels() && table.dtype === 'float32' && table.rank === 2) {
    // WASM's GatherV2 copies element by element (~12 ms for 2048 rows of 256 here); these are row memcpys.
    return {
      value: runKernel('XypGatherRows', { table, idx })[0],
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sidx] = saved;
        return [runKernel('XypScatterAddRows', { dy, idx: sidx }, { tableRows: shape[0] })[0], tf.zerosLike(sidx)];
      },
    };
  }
  return {
    value: tf.gather(table, idx as tf.Tensor1D),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [sidx] = saved;
      return [tf.scatterND(tf.reshape(sidx, [-1, 1]), dy, shape), tf.zerosLike(sidx)];
    },
  };
}) as (table: tf.Tensor2D, idx: tf.Tensor1D) => tf.Tensor2D;

/**
 * Per-token negative log-likelihood `nll_i = logsumexp(z_i) − z_i[t_i]`, logits z `[n, V]`,
 * targets t `[n]` int32, result `[n]`. Gradient: `dz_i = (softmax(z_i) − onehot(t_i)) · dnll_i`.
 */
export const tokenNll = customGrad2((logits: tf.Tensor, targets: tf.Tensor, save: tf.GradSaveFunc) => {
  if (nativeKernels()) {
    // Only the row's logsumexp is kept: the gradient recomputes the softmax from the logits, so no
    // `[n, V]` softmax is written (the logits stay alive in its place).
    const [nll, lse] = runKernel('XypCrossEntropyLse', { logits, targets });
    save([logits, lse, targets]);
    return {
      value: nll,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [slogits, slse, stargets] = saved;
        return [runKernel('XypCrossEntropyLseGrad', { logits: slogits, lse: slse, targets: stargets, dnll: dy })[0], tf.zerosLike(stargets)];
      },
    };
  }
  const vocab = logits.shape[1] as number;
  const z = logits as tf.Tensor2D;
  const max = tf.max(z, 1, true);
  const shifted = tf.sub(z, max);
  const lse = tf.log(tf.sum(tf.exp(shifted), 1, true));
  const logp = tf.sub(shifted, lse);
  const onehot = tf.oneHot(targets as tf.Tensor1D, vocab);
  const nll = tf.neg(tf.sum(tf.mul(logp, onehot), 1));
  save([logp, onehot, targets]);
  return {
    value: nll,
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [slogp, sonehot, stargets] = saved;
      return [tf.mul(tf.sub(tf.exp(slogp), sonehot), tf.reshape(dy, [-1, 1])), tf.zerosLike(stargets)];
    },
  };
}) as (logits: tf.Tensor2D, targets: tf.Tensor1D) => tf.Tensor1D;

/**
 * RMSNorm `y = x · r · g`, `r = 1/√(mean(x²) + ε)` per row, x `[N, D]`, g `[D]`. Natively one fused
 * kernel each way: `dx = r·(dy∘g) − x·r³·Σ(dy∘g∘x)/D`, `dg = Σ_rows dy∘x·r`; otherwise TF.js ops and
 * their built-in gradients.
 */
export function rmsNorm(x: tf.Tensor2D, g: tf.Tensor, eps: number): tf.Tensor2D {
  if (!nativeKernels()) return tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), 1, true), eps))), g);
  return fusedRmsNorm(eps)(x, g) as tf.Tensor2D;
}

const rmsNormByEps = new Map<number, (x: tf.Tensor, g: tf.Tensor) => tf.Tensor>();
function fusedRmsNorm(eps: number): (x: tf.Tensor, g: tf.Tensor) => tf.Tensor {
  let op = rmsNormByEps.get(eps);
  if (!op) {
    op = customGrad2((x: tf.Tensor, g: tf.Tensor, save: tf.GradSaveFunc) => {
      const [y, r] = runKernel('XypRmsNorm', { x, g }, { eps });
      save([x, g, r]);
      return {
        value: y,
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
          const [sx, sg, sr] = saved;
          return runKernel('XypRmsNormGrad', { x: sx, g: sg, r: sr, dy });
        },
      };
    });
    rmsNormByEps.set(eps, op);
  }
  return op;
}

/** `gelu(u) ≈ u · σ(1.702 u)`; natively fused, with `du = dy · (σ + 1.702·u·σ·(1 − σ))`. */
export function gelu(u: tf.Tensor2D): tf.Tensor2D {
  if (!nativeKernels()) return tf.mul(u, tf.sigmoid(tf.mul(u, 1.702)));
  return fusedGelu(u) as tf.Tensor2D;
}

const fusedGelu = customGrad1((u: tf.Tensor, save: tf.GradSaveFunc) => {
  save([u]);
  return {
    value: runKernel('XypGelu', { u })[0],
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => runKernel('XypGeluGrad', { u: saved[0], dy })[0],
  };
});

/**
 * Rotary positions on token-major activations (native kernels only): x `[N, H·Dh]`, cos and sin
 * `[N, Dh/2]` (angle of each token and frequency). Per head, halves x₁ x₂:
 * `y = [x₁·cos − x₂·sin, x₂·cos + x₁·sin]`; the gradient is the inverse rotation (sin → −sin).
 */
export function rotary(x: tf.Tensor2D, cos: tf.Tensor2D, sin: tf.Tensor2D, heads: number): tf.Tensor2D {
  const op = customGrad1((input: tf.Tensor, save: tf.GradSaveFunc) => {
    // cos and sin were made outside this op; the forward pass's tensors are released before the backward pass unless saved.
    save([cos, sin]);
    return {
      value: runKernel('XypRotary', { x: input, cos, sin }, { heads, sign: 1 })[0],
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => runKernel('XypRotary', { x: dy, cos: saved[0], sin: saved[1] }, { heads, sign: -1 })[0],
    };
  });
  return op(x) as tf.Tensor2D;
}

/**
 * Multi-head attention on token-major activations (native kernels only): q, k, v `[B·T, H·Dh]`, bias
 * `[B, T, T]` additive (0 or −1e9) → `[B·T, H·Dh]`. Per row b and head h:
 * `P = softmax(scale·Q·Kᵀ + bias_b)` `[T, T]`, `O = P·V`; gradient `dV = Pᵀ·dO`, `dP = dO·Vᵀ`,
 * `dS = P∘(dP − rowsum(P∘dP))`, `dQ = scale·dS·K`, `dK = scale·dSᵀ·Q`. Heads are strided views, so
 * no head transposes or copies are made.
 */
export function attention(q: tf.Tensor2D, k: tf.Tensor2D, v: tf.Tensor2D, bias: tf.Tensor3D, heads: number): tf.Tensor2D {
  const batch = bias.shape[0];
  const scale = 1 / Math.sqrt(q.shape[1] / heads);
  const attrs = { batch, heads, scale };
  const op = customGrad3((qi: tf.Tensor, ki: tf.Tensor, vi: tf.Tensor, save: tf.GradSaveFunc) => {
    const [o, probs] = runKernel('XypAttention', { q: qi, k: ki, v: vi, bias }, attrs);
    save([qi, ki, vi, probs]);
    return {
      value: o,
      gradFunc: (dO: tf.Tensor, saved: tf.Tensor[]) => {
        const [sq, sk, sv, sp] = saved;
        return runKernel('XypAttentionGrad', { q: sq, k: sk, v: sv, probs: sp, dO }, attrs);
      },
    };
  });
  return op(q, k, v) as tf.Tensor2D;
}
