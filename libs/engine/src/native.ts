/**
 * Optional native kernels: the `xyp_blas` N-API addon (`tools/native/blas`, built by
 * `tools/native/build.sh`) over OpenBLAS `sgemm`. When it loads, the WASM backend's `BatchMatMul` runs
 * on it, and fused kernels (`Xyp*`: cross-entropy, GELU, RMSNorm, rotary, attention, AdamW) are
 * registered for `ops.ts` to call. They read their inputs from and write their outputs into the WASM
 * heap, so nothing is copied. Without the addon every kernel stays on WASM.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import type { Model } from './model';
import { angleTable } from './rotary-angles';

/** The addon's exports (`tools/native/blas/blas.c`). Matrices are row-major float32. */
/** The arguments `decode`, `decodeScore` and `decodeScoreAsync` begin with: weights, KV cache, the new tokens (layouts in blas.c). */
type CachedPassArgs = [
  heap: Float32Array,
  weights: Float64Array,
  kcache: Float32Array,
  vcache: Float32Array,
  scratch: Float32Array,
  ids: Int32Array,
  positions: Int32Array,
  starts: Int32Array,
  rope: Float32Array,
];

/** The arguments of the addon's `decodeScore` and `decodeScoreAsync` (layouts in blas.c). */
export type DecodeScoreArgs = [...CachedPassArgs, targets: Int32Array, logp: Float32Array, dims: Float64Array];

export interface NativeBlas {
  /**
   * For b < batch: `C_b[M,N] = alpha · op(A_b) · op(B_b) + beta · C_b`, op(X) = Xᵀ when its flag is
   * set. A_b starts at `A[aOff + b·aStride]`, stored `[M,K]` (`[K,M]` transposed) with row stride lda;
   * B_b `[K,N]` (`[N,K]`) and C_b `[M,N]` likewise. Stride 0 broadcasts one matrix over the batch.
   */
  gemm(
    transA: boolean,
    transB: boolean,
    batch: number,
    m: number,
    n: number,
    k: number,
    alpha: number,
    a: Float32Array,
    aOff: number,
    aStride: number,
    lda: number,
    b: Float32Array,
    bOff: number,
    bStride: number,
    ldb: number,
    beta: number,
    c: Float32Array,
    cOff: number,
    cStride: number,
    ldc: number,
  ): void;
  /*
   * Fused kernels: `heap` is the WASM heap as float32, every other tensor argument the float index of
   * its first element there (int32 targets are read through the same index). Shapes: see blas.c.
   */
  crossEntropy(heap: Float32Array, logits: number, targets: number, nll: number, probs: number, rows: number, vocab: number): void;
  crossEntropyGrad(heap: Float32Array, probs: number, targets: number, dnll: number, dz: number, rows: number, vocab: number): void;
  /** Per row: lse = logsumexp(z) `[rows]`, nll = lse − z[t]; no softmax is written. */
  crossEntropyLse(heap: Float32Array, logits: number, targets: number, nll: number, lse: number, rows: number, vocab: number): void;
  /** dz = (exp(z − lse) − onehot(t)) · dnll, the softmax recomputed from the logits. */
  crossEntropyLseGrad(heap: Float32Array, logits: number, lse: number, targets: number, dnll: number, dz: number, rows: number, vocab: number): void;
  gelu(heap: Float32Array, u: number, y: number, n: number): void;
  geluGrad(heap: Float32Array, u: number, dy: number, du: number, n: number): void;
  rmsNorm(heap: Float32Array, x: number, g: number, y: number, r: number, rows: number, d: number, eps: number): void;
  rmsNormGrad(heap: Float32Array, x: number, g: number, r: number, dy: number, dx: number, dg: number, rows: number, d: number): void;
  rotary(heap: Float32Array, x: number, cos: number, sin: number, y: number, rows: number, heads: number, headWidth: number, sign: number): void;
  attention(
    heap: Float32Array,
    q: number,
    k: number,
    v: number,
    bias: number,
    probs: number,
    o: number,
    batch: number,
    seq: number,
    heads: number,
    headWidth: number,
    scale: number,
  ): void;
  attentionGrad(
    heap: Float32Array,
    q: number,
    k: number,
    v: number,
    probs: number,
    dO: number,
    dq: number,
    dk: number,
    dv: number,
    scratch: number,
    workers: number,
    batch: number,
    seq: number,
    heads: number,
    headWidth: number,
    scale: number,
  ): void;
  gatherRows(heap: Float32Array, table: number, idx: number, out: number, rows: number, width: number, tableRows: number): void;
  scatterAddRows(heap: Float32Array, dy: number, idx: number, dtable: number, rows: number, width: number, tableRows: number): void;
  adamw(
    heap: Float32Array,
    p: number,
    g: number,
    m: number,
    v: number,
    pOut: number,
    mOut: number,
    vOut: number,
    n: number,
    lr: number,
    beta1: number,
    beta2: number,
    bc1: number,
    bc2: number,
    eps: number,
    weightDecay: number,
    gradScale: number,
  ): void;
  /** `adamw` written over p, m and v in place (no overlapping operands). */
  adamwInPlace(
    heap: Float32Array,
    p: number,
    g: number,
    m: number,
    v: number,
    n: number,
    lr: number,
    beta1: number,
    beta2: number,
    bc1: number,
    bc2: number,
    eps: number,
    weightDecay: number,
    gradScale: number,
  ): void;
  /** Σ x² in double precision. */
  sumSquares(heap: Float32Array, x: number, n: number): number;
  /**
   * The model's forward pass for T new tokens per row with a KV cache, and the LM logits of each row's
   * last new token (`NativeDecoder`; layouts in blas.c). `dims`: layers, B, T, past, S, D, H, F, V, eps,
   * P, learned (1) or rotary (0).
   */
  decode(
    ...args: [
      ...CachedPassArgs,
      logits: Float32Array,
      dims: Float64Array,
      /** `[B, D]`: the final-norm hidden state of each row's last new token, written. */
      hidden?: Float32Array,
    ]
  ): void;
  /**
   * Teacher-forced scoring (`nativeScore`; layouts in blas.c): the forward pass of `decode` over all T
   * tokens per row without a KV cache (`dims` as decode's, past 0 and S = T), and for every token its
   * log-probability of `targets` (log-softmax of the LM logits) and, when `values` is not empty, its
   * value (`weights` then ends with value_w, value_b). Absent from an addon built before it.
   */
  score?(
    heap: Float32Array,
    weights: Float64Array,
    scratch: Float32Array,
    ids: Int32Array,
    positions: Int32Array,
    starts: Int32Array,
    rope: Float32Array,
    targets: Int32Array,
    logp: Float32Array,
    values: Float32Array,
    dims: Float64Array,
  ): void;
  /**
   * Cached teacher-forced scoring (`nativeScoreSharedPrompts`; layouts in blas.c): the forward pass of
   * `decode` (T new tokens per row after `past` cached slots, `dims` as decode's) that writes, instead
   * of the last token's logits, every new token's log-probability of `targets` (−1: not wanted, logp 0
   * and no LM head there). Absent from an addon built before it.
   */
  decodeScore?(...args: DecodeScoreArgs): void;
  /**
   * `decodeScore` on a libuv worker thread, on that thread alone (`StreamingScorer`): the arguments
   * are checked at the call (a wrong one throws there), the promise resolves once `logp` is written.
   * `heap` must be a copy of the weights, not the WASM heap, and no array may be touched before it
   * resolves. Absent from an addon built before it.
   */
  decodeScoreAsync?(...args: DecodeScoreArgs): Promise<void>;
  /**
   * The nucleus step of top-p sampling for each row (`nucleusCandidates` in generate.ts, same result):
   * `order[r, 0..counts[r])` the tokens sorted by p descending (ties by index), a prefix of that
   * order whose mass reaches `targets[r]`, or all V tokens.
   */
  nucleus(logits: Float32Array, probs: Float64Array, targets: Float64Array, order: Int32Array, counts: Int32Array, rows: number, vocab: number): void;
  setThreads(threads: number): void;
  threads(): number;
  /** OpenBLAS build string (version, kernel architecture, threading). */
  config(): string;
}

/** `tools/native/blas/build/Release/xyp_blas.node`, relative to this file's place in the workspace. */
export const NATIVE_ADDON_PATH = path.resolve(__dirname, '..', '..', '..', 'tools', 'native', 'blas', 'build', 'Release', 'xyp_blas.node');

/**
 * OpenBLAS's idle-thread spin that `loadNativeBlas` sets by default, as its `OPENBLAS_THREAD_TIMEOUT`
 * exponent: 2^16 cycles (tens of µs) before a thread that has no work sleeps, against OpenBLAS's own
 * 2^28 (about 0.1 s). With the long spin, each multi-threaded product leaves a thread busy on the
 * other core for that long, which is the core a PPO rollout's reference pass runs on while the JS
 * thread samples (`StreamingScorer`), and the spinner slowed even single-threaded sampling on a
 * 2-vCPU machine (README, "Benchmarks"); training steps measured no loss from the short spin.
 */
export const BLAS_THREAD_TIMEOUT = 16;

/**
 * Loads the addon (`XYP_ENGINE_NATIVE_PATH` overrides its location). Returns why not when it is absent
 * or fails to load; never throws. OpenBLAS reads `OPENBLAS_THREAD_TIMEOUT` once, when the addon loads
 * it: unless the environment sets it, `threadTimeout` is put there for the load only (child processes
 * do not inherit it). In a worker thread that reaches OpenBLAS only when the thread shares the
 * process environment (`SHARE_ENV`, as `@xyp/offload`'s threads do); else the addon is best loaded
 * on the main thread first.
 */
export function loadNativeBlas(
  file = process.env.XYP_ENGINE_NATIVE_PATH || NATIVE_ADDON_PATH,
  threadTimeout = BLAS_THREAD_TIMEOUT,
): { blas?: NativeBlas; note?: string; threadTimeout?: number } {
  if (!fs.existsSync(file)) return { note: `native addon not built (${file}; run tools/native/build.sh)` };
  const own = process.env.OPENBLAS_THREAD_TIMEOUT;
  try {
    if (own === undefined) process.env.OPENBLAS_THREAD_TIMEOUT = String(threadTimeout);
    const mod = { exports: {} as NativeBlas };
    process.dlopen(mod, file);
    return { blas: mod.exports, threadTimeout: own === undefined ? threadTimeout : Number(own) };
  } catch (error) {
    return { note: `native addon failed to load: ${error instanceof Error ? error.message : String(error)}` };
  } finally {
    if (own === undefined) delete process.env.OPENBLAS_THREAD_TIMEOUT;
  }
}

let active: NativeBlas | undefined;
let enabled = true;

/** The addon when its kernels are registered on the WASM backend of this process (and switched on), else undefined. */
export function nativeBlas(): NativeBlas | undefined {
  return enabled ? active : undefined;
}

/**
 * Switches the native kernels off (`false`: every op takes its WASM path again) or back on, e.g. to
 * compare both paths in one process. Returns the previous setting.
 */
export function useNativeKernels(on: boolean): boolean {
  const previous = enabled;
  enabled = on;
  return previous;
}

type KernelArgs = Parameters<tf.KernelFunc>[0];

/** The whole WASM heap as float32; read it after any allocation, since growing the memory replaces it. */
export function heapF32(backend: BackendWasm): Float32Array {
  return (backend.wasm as unknown as { HEAPF32: Float32Array }).HEAPF32;
}

/** Float32 index of a tensor's first element in the WASM heap. */
function heapIndex(backend: BackendWasm, t: tf.TensorInfo): number {
  return backend.dataIdMap.get(t.dataId).memoryOffset / 4;
}

function product(dims: number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

/**
 * `BatchMatMul` on OpenBLAS: `C[..., M, N] = op(A)[..., M, K] · op(B)[..., K, N]`. The batch dimensions
 * must be equal or one side's must all be 1 (broadcast with stride 0); other broadcasts and non-float
 * inputs go to the original WASM kernel.
 */
function nativeBatchMatMul(blas: NativeBlas, fallback: tf.KernelFunc): tf.KernelFunc {
  return (args: KernelArgs) => {
    const { inputs, attrs } = args;
    const backend = args.backend as BackendWasm;
    const a = inputs.a as tf.TensorInfo;
    const b = inputs.b as tf.TensorInfo;
    const transposeA = Boolean(attrs?.transposeA);
    const transposeB = Boolean(attrs?.transposeB);
    if (!enabled || a.dtype !== 'float32' || b.dtype !== 'float32' || a.shape.length < 2 || b.shape.length < 2) return fallback(args);
    const ra = a.shape.length;
    const rb = b.shape.length;
    const m = transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
    const k = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
    const n = transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
    if ((transposeB ? b.shape[rb - 1] : b.shape[rb - 2]) !== k) return fallback(args);
    const outerA = a.shape.slice(0, -2);
    const outerB = b.shape.slice(0, -2);
    const batchA = product(outerA);
    const batchB = product(outerB);
    // One side all ones (stride 0) or both the same: a plain loop of products. Anything else
    // (e.g. [2,1] against [1,3]) needs index arithmetic per product and goes to WASM.
    if (batchA !== 1 && batchB !== 1 && outerA.join(',') !== outerB.join(',')) return fallback(args);
    const outer = tf.broadcast_util.assertAndGetBroadcastShape(outerA, outerB);
    const batch = Math.max(batchA, batchB);
    const out = backend.makeOutput([...outer, m, n], 'float32');
    if (batch * m * n === 0) return out;
    const heap = heapF32(backend);
    blas.gemm(
      transposeA,
      transposeB,
      batch,
      m,
      n,
      k,
      1,
      heap,
      heapIndex(backend, a),
      batchA === 1 ? 0 : m * k,
      transposeA ? m : k,
      heap,
      heapIndex(backend, b),
      batchB === 1 ? 0 : k * n,
      transposeB ? k : n,
      0,
      heap,
      heapIndex(backend, out),
      m * n,
      n,
    );
    return out;
  };
}

type Inputs = Record<string, tf.TensorInfo>;

/**
 * Registers a fused kernel on the WASM backend: `run` allocates its outputs with `makeOutput` and
 * calls the addon on the heap, which it must fetch only after allocating (growth replaces it).
 */
function defineKernel(
  kernelName: string,
  run: (backend: BackendWasm, inputs: Inputs, attrs: tf.NamedAttrMap) => tf.TensorInfo | tf.TensorInfo[],
  int32Inputs: string[] = [],
): void {
  tf.registerKernel({
    kernelName,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs }) => {
      // The addon reads raw heap words: a tensor of another dtype would be reinterpreted, not converted.
      for (const [name, t] of Object.entries(inputs as Inputs)) {
        const dtype = int32Inputs.includes(name) ? 'int32' : 'float32';
        if (t.dtype !== dtype) throw new Error(`${kernelName}: input ${name} must be ${dtype}, got ${t.dtype}`);
      }
      return run(backend as BackendWasm, inputs as Inputs, attrs ?? {});
    },
  });
}

function num(attrs: tf.NamedAttrMap, name: string): number {
  const value = attrs[name];
  if (typeof value !== 'number') throw new Error(`native kernel attribute ${name} must be a number`);
  return value;
}

function registerFusedKernels(blas: NativeBlas): void {
  // [rows, V] logits, [rows] int32 targets → [rows] nll, [rows, V] softmax.
  defineKernel('XypCrossEntropy', (backend, { logits, targets }) => {
    const [rows, vocab] = logits.shape;
    const nll = backend.makeOutput([rows], 'float32');
    const probs = backend.makeOutput([rows, vocab], 'float32');
    const at = (t: tf.TensorInfo) => heapIndex(backend, t);
    blas.crossEntropy(heapF32(backend), at(logits), at(targets), at(nll), at(probs), rows, vocab);
    return [nll, probs];
  }, ['targets']);
  defineKernel('XypCrossEntropyGrad', (backend, { probs, targets, dnll }) => {
    const [rows, vocab] = probs.shape;
    const dz = backend.makeOutput([rows, vocab], 'float32');
    const at = (t: tf.TensorInfo) => heapIndex(backend, t);
    blas.crossEntropyGrad(heapF32(backend), at(probs), at(targets), at(dnll), at(dz), rows, vocab);
    return dz;
  }, ['targets']);
  // [rows, V] logits, [rows] int32 targets → [rows] nll, [rows] logsumexp (16 MB less written than the softmax).
  defineKernel('XypCrossEntropyLse', (backend, { logits, targets }) => {
    const [rows, vocab] = logits.shape;
    const nll = backend.makeOutput([rows], 'float32');
    const lse = backend.makeOutput([rows], 'float32');
    const at = (t: tf.TensorInfo) => heapIndex(backend, t);
    blas.crossEntropyLse(heapF32(backend), at(logits), at(targets), at(nll), at(lse), rows, vocab);
    return [nll, lse];
  }, ['targets']);
  defineKernel('XypCrossEntropyLseGrad', (backend, { logits, lse, targets, dnll }) => {
    const [rows, vocab] = logits.shape;
    const dz = backend.makeOutput([rows, vocab], 'float32');
    const at = (t: tf.TensorInfo) => heapIndex(backend, t);
    blas.crossEntropyLseGrad(heapF32(backend), at(logits), at(lse), at(targets), at(dnll), at(dz), rows, vocab);
    return dz;
  }, ['targets']);
  defineKernel('XypGelu', (backend, { u }) => {
    const y = backend.makeOutput(u.shape, 'float32');
    blas.gelu(heapF32(backend), heapIndex(backend, u), heapIndex(backend, y), product(u.shape));
    return y;
  });
  defineKernel('XypGeluGrad', (backend, { u, dy }) => {
    const du = backend.makeOutput(u.shape, 'float32');
    blas.geluGrad(heapF32(backend), heapIndex(backend, u), heapIndex(backend, dy), heapIndex(backend, du), product(u.shape));
    return du;
  });
  // [rows, D] x, [D] g → [rows, D] y, [rows] 1/rms.
  defineKernel('XypRmsNorm', (backend, { x, g }, attrs) => {
    const [rows, d] = x.shape;
    const y = backend.makeOutput([rows, d], 'float32');
    const r = backend.makeOutput([rows], 'float32');
    const at = (t: tf.TensorInfo) => heapIndex(backend, t);
    blas.rmsNorm(heapF32(backend), at(x), at(g), at(y), at(r), rows, d, num(attrs, 'eps'));
    return [y, r];
  });
  defineKernel('XypRmsNormGrad', (backend, { x, g, r, dy }) => {
    const [rows, d] = x.shape;
    const dx = backend.makeOutput([rows, d], 'float32');
    const dg = backend.makeOutput([d], 'float32');
    const at = (t: tf.TensorInfo) => heapIndex(backend, t);
    blas.rmsNormGrad(heapF32(backend), at(x), at(g), at(r), at(dy), at(dx), at(dg), rows, d);
    return [dx, dg];
  });
  // [rows, H·Dh] x, [rows, Dh/2] cos and sin → [rows, H·Dh].
  defineKernel('XypRotary', (backend, { x, cos, sin }, attrs) => {
    const [rows, width] = x.shape;
    const heads = num(attrs, 'heads');
    const y = backend.makeOutput([rows, width], 'float32');
    const at = (t: tf.TensorInfo) => heapIndex(backend, t);
    blas.rotary(heapF32(backend), at(x), at(cos), at(sin), at(y), rows, heads, width / heads, num(attrs, 'sign'));
    return y;
  });
  // [B·T, D] q, k, v and [B, T, T] bias → [B·T, D] o, [B, H, T, T] probabilities.
  defineKernel('XypAttention', (backend, { q, k, v, bias }, attrs) => {
    const [rows, width] = q.shape;
    const batch = num(attrs, 'batch');
    const heads = num(attrs, 'heads');
    const seq = rows / batch;
    const o = backend.makeOutput([rows, width], 'float32');
    const probs = backend.makeOutput([batch, heads, seq, seq], 'float32');
    const at = (t: tf.TensorInfo) => heapIndex(backend, t);
    blas.attention(heapF32(backend), at(q), at(k), at(v), at(bias), at(probs), at(o), batch, seq, heads, width / heads, num(attrs, 'scale'));
    return [o, probs];
  });
  defineKernel('XypAttentionGrad', (backend, { q, k, v, probs, dO }, attrs) => {
    const [rows, width] = q.shape;
    const batch = num(attrs, 'batch');
    const heads = num(attrs, 'heads');
    const seq = rows / batch;
    const dq = backend.makeOutput([rows, width], 'float32');
    const dk = backend.makeOutput([rows, width], 'float32');
    const dv = backend.makeOutput([rows, width], 'float32');
    // One [T, T] scratch per worker thread of the addon (its OpenBLAS thread count).
    const workers = Math.max(1, blas.threads());
    const scratch = backend.makeOutput([workers, seq, seq], 'float32');
    const at = (t: tf.TensorInfo) => heapIndex(backend, t);
    blas.attentionGrad(
      heapF32(backend),
      at(q),
      at(k),
      at(v),
      at(probs),
      at(dO),
      at(dq),
      at(dk),
      at(dv),
      at(scratch),
      workers,
      batch,
      seq,
      heads,
      width / heads,
      num(attrs, 'scale'),
    );
    backend.disposeData(scratch.dataId);
    return [dq, dk, dv];
  });
  // [V, D] table, [n] int32 rows → [n, D]; the gradient sums the rows of dy `[n, D]` into `[V, D]`.
  defineKernel('XypGatherRows', (backend, { table, idx }) => {
    const [tableRows, width] = table.shape;
    const rows = idx.shape[0];
    const out = backend.makeOutput([rows, width], 'float32');
    const at = (t: tf.TensorInfo) => heapIndex(backend, t);
    blas.gatherRows(heapF32(backend), at(table), at(idx), at(out), rows, width, tableRows);
    return out;
  }, ['idx']);
  defineKernel('XypScatterAddRows', (backend, { dy, idx }, attrs) => {
    const [rows, width] = dy.shape;
    const tableRows = num(attrs, 'tableRows');
    const dtable = backend.makeOutput([tableRows, width], 'float32');
    const at = (t: tf.TensorInfo) => heapIndex(backend, t);
    blas.scatterAddRows(heapF32(backend), at(dy), at(idx), at(dtable), rows, width, tableRows);
    return dtable;
  }, ['idx']);
  defineKernel('XypAdamW', (backend, { p, g, m, v }, attrs) => {
    const pOut = backend.makeOutput(p.shape, 'float32');
    const mOut = backend.makeOutput(p.shape, 'float32');
    const vOut = backend.makeOutput(p.shape, 'float32');
    const at = (t: tf.TensorInfo) => heapIndex(backend, t);
    const a = (name: string) => num(attrs, name);
    blas.adamw(
      heapF32(backend),
      at(p),
      at(g),
      at(m),
      at(v),
      at(pOut),
      at(mOut),
      at(vOut),
      product(p.shape),
      a('lr'),
      a('beta1'),
      a('beta2'),
      a('bc1'),
      a('bc2'),
      a('eps'),
      a('weightDecay'),
      a('gradScale'),
    );
    return [pOut, mOut, vOut];
  });
}

/** Hyper-parameters of one fused AdamW update (`XypAdamW`); see `optim.ts` for the formula. */
export interface AdamWAttrs {
  lr: number;
  beta1: number;
  beta2: number;
  bc1: number;
  bc2: number;
  eps: number;
  weightDecay: number;
  gradScale: number;
}

/** One fused AdamW update of parameter p with gradient g and moments m, v: returns `[p', m', v']`. */
export function nativeAdamW(p: tf.Tensor, g: tf.Tensor, m: tf.Tensor, v: tf.Tensor, attrs: AdamWAttrs): [tf.Tensor, tf.Tensor, tf.Tensor] {
  return tf.engine().runKernel('XypAdamW', { p, g, m, v }, { ...attrs }) as [tf.Tensor, tf.Tensor, tf.Tensor];
}

/**
 * The `nativeAdamW` update written over the buffers of p, m and v (variables), without new tensors or
 * kernel calls. Only when each of them is the sole owner of its buffer (backend refCount 1: no clone,
 * reshape or saved tensor shares it) and all are distinct float32 tensors; returns false, changing
 * nothing, otherwise.
 */
export function nativeAdamWInPlace(p: tf.Tensor, g: tf.Tensor, m: tf.Tensor, v: tf.Tensor, attrs: AdamWAttrs): boolean {
  const blas = nativeBlas();
  if (!blas || tf.getBackend() !== 'wasm') return false;
  const backend = tf.backend() as BackendWasm;
  const tensors = [p, g, m, v];
  if (tensors.some((t) => t.dtype !== 'float32' || t.size !== p.size)) return false;
  if (new Set(tensors.map((t) => t.dataId)).size !== 4) return false;
  if ([p, m, v].some((t) => backend.refCount(t.dataId) !== 1)) return false;
  const at = (t: tf.Tensor) => heapIndex(backend, t);
  blas.adamwInPlace(
    heapF32(backend),
    at(p),
    at(g),
    at(m),
    at(v),
    p.size,
    attrs.lr,
    attrs.beta1,
    attrs.beta2,
    attrs.bc1,
    attrs.bc2,
    attrs.eps,
    attrs.weightDecay,
    attrs.gradScale,
  );
  return true;
}

/** Σ x² of a float32 tensor on the WASM backend, read in place (native kernels must be active). */
export function nativeSumSquares(x: tf.Tensor): number {
  const blas = nativeBlas();
  if (!blas) throw new Error('native kernels are not active');
  const backend = tf.backend() as BackendWasm;
  return blas.sumSquares(heapF32(backend), heapIndex(backend, x), x.size);
}

/** Attention scratch rows the decoder reserves, one per worker (`MAX_WORKERS` in blas.c). */
export const DECODE_WORKERS = 16;
/** Rows of LM logits each scoring worker holds at a time (`SCORE_CHUNK` in blas.c). */
export const SCORE_CHUNK = 128;

/** The tables of `rotaryHalfTables` (model.ts) for positions 0..P−1: cos `[P, Dh/2]`, then sin; empty for learned positions. */
export function ropeTables(config: Model['config']): Float32Array {
  const { width: D, heads: H, contextLength: P, positions, ropeBase } = config;
  const Dh = D / H;
  const half = Dh / 2;
  const rope = new Float32Array(positions === 'rotary' ? 2 * P * half : 0);
  if (positions === 'rotary') {
    const table = angleTable(Dh, ropeBase, P);
    rope.set(table.cos.subarray(0, P * half));
    rope.set(table.sin.subarray(0, P * half), P * half);
  }
  return rope;
}

/** The weights `decode` reads, in its order (blas.c `W_*`, `WL_*`). */
export function decoderWeightNames(config: Model['config']): string[] {
  const names = ['tok_emb', config.positions === 'learned' ? 'pos_emb' : 'tok_emb', 'norm_f', 'lm_head'];
  for (let l = 0; l < config.layers; l++) for (const n of ['norm1', 'wq', 'wk', 'wv', 'wo', 'norm2', 'w1', 'w2']) names.push(`layers.${l}.${n}`);
  return names;
}

/**
 * Heap indices of the named weights into `out`. Looked up on every call: another tensor may have been
 * allocated (and the heap grown) since, or a variable reassigned.
 */
export function lookUpWeights(backend: BackendWasm, model: Model, names: string[], out: Float64Array, who: string): void {
  names.forEach((name, i) => {
    const t = model.params[name];
    if (!t || t.isDisposed || t.dtype !== 'float32') throw new Error(`${who}: weight ${name} is missing, disposed or not float32`);
    out[i] = heapIndex(backend, t);
  });
}

/**
 * The forward pass of sampling on the addon (`decode` in blas.c): every layer for the next tokens of
 * each row in one call, no TF.js kernels or tensors. The KV cache is allocated once for `slots`
 * tokens per row and written in place; the weights are read where the model's variables lie in the
 * WASM heap. Same model as `forwardHidden` + `lmLogits` (tested against them).
 */
export class NativeDecoder {
  /** Slots of each row filled so far. */
  length = 0;
  private readonly k: Float32Array;
  private readonly v: Float32Array;
  private readonly logits: Float32Array;
  private readonly rope: Float32Array;
  private readonly weights: Float64Array;
  private readonly names: string[];

  /**
   * `starts[b]`: the first slot row b may attend (its left padding lies before it). Keys before it are
   * masked, as `ForwardInput.keyValid` masks them.
   */
  constructor(
    private readonly blas: NativeBlas,
    private readonly model: Model,
    readonly rows: number,
    readonly slots: number,
    private readonly starts: Int32Array,
  ) {
    const { layers, width: D, vocabSize: V, contextLength: P } = model.config;
    if (starts.length !== rows) throw new Error(`NativeDecoder: ${starts.length} starts for ${rows} rows`);
    if (slots > P) throw new Error(`NativeDecoder: ${slots} slots exceed the context of ${P}`);
    this.k = new Float32Array(layers * rows * slots * D);
    this.v = new Float32Array(layers * rows * slots * D);
    this.logits = new Float32Array(rows * V);
    this.rope = ropeTables(model.config);
    this.names = decoderWeightNames(model.config);
    this.weights = new Float64Array(this.names.length);
  }

  /**
   * Feeds `seq` tokens per row (`ids`, `positions`: `[rows·seq]`, row-major) into slots
   * `length..length+seq−1` and returns the LM logits of each row's last one, `[rows, V]`. The array is
   * reused: the next call overwrites it.
   */
  forward(ids: Int32Array, positions: Int32Array, seq: number, hidden?: Float32Array): Float32Array {
    if (hidden && hidden.length !== this.rows * this.model.config.width) throw new Error(`NativeDecoder: hidden must hold ${this.rows} × ${this.model.config.width}`);
    this.run(ids, positions, seq, hidden);
    return this.logits;
  }

  private run(ids: Int32Array, positions: Int32Array, seq: number, hidden?: Float32Array): void {
    const { layers, width: D, heads: H, mlpRatio, vocabSize: V, contextLength: P, normEps } = this.model.config;
    if (ids.length !== this.rows * seq || positions.length !== this.rows * seq) throw new Error(`NativeDecoder: ids and positions must hold ${this.rows} × ${seq}`);
    if (this.length + seq > this.slots) throw new Error(`NativeDecoder: ${this.length + seq} tokens exceed its ${this.slots} slots`);
    const F = mlpRatio * D;
    const S = this.slots;
    const scratch = sharedScratch(this.rows * seq * (5 * D + F) + DECODE_WORKERS * S);
    const backend = tf.backend() as BackendWasm;
    lookUpWeights(backend, this.model, this.names, this.weights, 'NativeDecoder');
    const dims = Float64Array.of(layers, this.rows, seq, this.length, S, D, H, F, V, normEps, P, this.model.config.positions === 'learned' ? 1 : 0);
    if (hidden) this.blas.decode(heapF32(backend), this.weights, this.k, this.v, scratch, ids, positions, this.starts, this.rope, this.logits, dims, hidden);
    else this.blas.decode(heapF32(backend), this.weights, this.k, this.v, scratch, ids, positions, this.starts, this.rope, this.logits, dims);
    this.length += seq;
  }
}


/** Teacher-forced input of `nativeScore`: `batch` rows of `seq` tokens, all `[batch·seq]` row-major. */
export interface NativeScoreInput {
  ids: Int32Array;
  /** The token each position predicts (its log-probability is returned), `< V`; −1: not wanted (logp 0, no LM head there). */
  targets: Int32Array;
  batch: number;
  seq: number;
  /** Position of every token (rotary angle or learned row); default 0..seq−1 in each row, as `forwardHidden`. */
  positions?: Int32Array;
  /** `[batch]`: the first position row b may attend (left padding before it, as `keyValid` 0 there); default 0. */
  starts?: Int32Array;
}

/** Per token `[batch·seq]`: log π(target) at temperature 1 and, when asked for, the value head's value. */
export interface NativeScores {
  logp: Float32Array;
  values?: Float32Array;
}

/**
 * Teacher-forced scoring in one addon call (`score` in blas.c): for every position t of every row,
 * `logp[t] = log softmax(lmLogits(h_t))[targets[t]]` and, with `withValues`, `values[t] = valueHead(h_t)`,
 * h_t the final-norm hidden state of token t (as `forwardHidden` + `lmLogits` / `valueHead` and
 * `tokenNll`; tested against them). No dropout, no KV cache kept, no `[N, V]` logits in JS.
 * Undefined when the native kernels do not serve this backend, the addon lacks `score` (built before
 * it), or the model lacks the heads asked for: the caller then takes the TF.js path.
 */
export function nativeScore(model: Model, input: NativeScoreInput, withValues: boolean): NativeScores | undefined {
  const blas = nativeBlas();
  if (!blas || typeof blas.score !== 'function' || tf.getBackend() !== 'wasm' || !model.params.lm_head) return undefined;
  if (withValues && (!model.params.value_w || !model.params.value_b)) return undefined;
  const { layers, width: D, heads: H, mlpRatio, vocabSize: V, contextLength: P, normEps } = model.config;
  const { batch: B, seq: T } = input;
  const N = B * T;
  if (T > P) throw new Error(`nativeScore: sequence of ${T} exceeds the context of ${P}`);
  if (input.ids.length !== N || input.targets.length !== N) throw new Error(`nativeScore: ids and targets must hold ${B} × ${T}`);
  if (N === 0) return { logp: new Float32Array(0), values: withValues ? new Float32Array(0) : undefined };
  const positions = input.positions ?? Int32Array.from({ length: N }, (_, n) => n % T);
  const starts = input.starts ?? new Int32Array(B);
  if (positions.length !== N || starts.length !== B) throw new Error(`nativeScore: positions must hold ${B} × ${T}, starts ${B}`);
  const F = mlpRatio * D;
  const names = decoderWeightNames(model.config);
  if (withValues) names.push('value_w', 'value_b');
  const weights = new Float64Array(names.length);
  const logp = new Float32Array(N);
  const values = new Float32Array(withValues ? N : 0);
  const scratch = sharedScratch(N * (5 * D + F) + DECODE_WORKERS * T + DECODE_WORKERS * (SCORE_CHUNK * V + T * T));
  const backend = tf.backend() as BackendWasm;
  lookUpWeights(backend, model, names, weights, 'nativeScore');
  const dims = Float64Array.of(layers, B, T, 0, T, D, H, F, V, normEps, P, model.config.positions === 'learned' ? 1 : 0);
  blas.score(heapF32(backend), weights, scratch, input.ids, positions, starts, ropeTables(model.config), input.targets, logp, values, dims);
  return { logp, values: withValues ? values : undefined };
}

/** A row to score after a shared prompt: `prompt` indexes the prompts, `tokens` the response that follows it. */
export interface SharedPromptRow {
  prompt: number;
  tokens: readonly number[];
}

/**
 * Teacher-forced log-probabilities of responses that share prompts (PPO's n samples per prompt), on
 * the addon, each prompt computed once instead of once per row: for row b and each j <
 * `rows[b].tokens.length`, `out[b][j] = log softmax(lmLogits(h))[tokens[j]]` at temperature 1, h the
 * final-norm hidden state of the token before it in `prompts[prompt] · tokens` (the same numbers as
 * `nativeScore` or `forwardHidden` over the whole sequence, to float rounding; tested against both).
 *
 *  1. `decodeScore` (every target −1: no LM head) prefills every prompt the rows use but its last
 *     token, left-padded to the longest as `generate` lays prompts out (padding masked, positions from
 *     each prompt's first token), into a KV cache of one row per prompt.
 *  2. Each prompt's slots are copied into the rows of a cache of one row per non-empty response.
 *  3. `decodeScore` runs, after them, the prompt's last token and the response's tokens[0..len−2]
 *     (positions continuing from the prompt's), with tokens[0..len−1] as targets; right padding has
 *     target −1. The last prompt token is run once per row rather than once per prompt: so the
 *     first response token is scored like the others, and no prompt pass needs logits.
 *
 * Undefined when the native kernels do not serve this backend, the addon lacks `decodeScore` (built
 * before it), or the model has no LM head: the caller then scores on another path. Throws on an empty
 * prompt (no position predicts the first token), a prompt index out of range, a token outside the
 * vocabulary, or a sequence whose inputs pass the context (prompt + response − 1 > contextLength).
 */
export function nativeScoreSharedPrompts(model: Model, prompts: readonly (readonly number[])[], rows: readonly SharedPromptRow[]): Float32Array[] | undefined {
  const blas = nativeBlas();
  const decodeScore = blas?.decodeScore?.bind(blas);
  if (!decodeScore || tf.getBackend() !== 'wasm' || !model.params.lm_head) return undefined;
  const { layers, width: D, heads: H, mlpRatio, vocabSize: V, contextLength: P, normEps } = model.config;
  const F = mlpRatio * D;
  const learned = model.config.positions === 'learned' ? 1 : 0;
  const out = rows.map((row) => new Float32Array(row.tokens.length));
  // The prompts that some non-empty row uses, in order of first use (their rows in the prompt cache), and those rows.
  const slotOf = new Map<number, number>();
  const used: number[] = [];
  const scored: number[] = [];
  rows.forEach((row, b) => {
    const prompt = prompts[row.prompt];
    if (!Number.isInteger(row.prompt) || !prompt) throw new Error(`nativeScoreSharedPrompts: row ${b} names prompt ${row.prompt} of ${prompts.length}`);
    if (prompt.length === 0) throw new Error(`nativeScoreSharedPrompts: prompt ${row.prompt} is empty`);
    if (prompt.length + row.tokens.length - 1 > P) {
      throw new Error(`nativeScoreSharedPrompts: row ${b} (prompt ${prompt.length} + response ${row.tokens.length} tokens) exceeds the context of ${P}`);
    }
    // (The addon checks ids, but a target of −1 would only mean "not wanted".)
    const bad = row.tokens.findIndex((t) => !Number.isInteger(t) || t < 0 || t >= V);
    if (bad >= 0) throw new Error(`nativeScoreSharedPrompts: row ${b} token ${bad} (${row.tokens[bad]}) is outside [0, ${V})`);
    if (row.tokens.length === 0) return;
    scored.push(b);
    if (!slotOf.has(row.prompt)) {
      slotOf.set(row.prompt, used.length);
      used.push(row.prompt);
    }
  });
  if (scored.length === 0) return out;
  const rope = ropeTables(model.config);
  const names = decoderWeightNames(model.config);
  const weights = new Float64Array(names.length);
  const backend = tf.backend() as BackendWasm;
  const run = (cache: { k: Float32Array; v: Float32Array }, B: number, T: number, past: number, ids: Int32Array, positions: Int32Array, starts: Int32Array, targets: Int32Array): Float32Array => {
    const S = past + T;
    const logp = new Float32Array(B * T);
    const scratch = sharedScratch(B * T * (5 * D + F) + DECODE_WORKERS * S + DECODE_WORKERS * (SCORE_CHUNK * V + T * S));
    lookUpWeights(backend, model, names, weights, 'nativeScoreSharedPrompts');
    const dims = Float64Array.of(layers, B, T, past, S, D, H, F, V, normEps, P, learned);
    decodeScore(heapF32(backend), weights, cache.k, cache.v, scratch, ids, positions, starts, rope, targets, logp, dims);
    return logp;
  };

  // 1. Every prompt but its last token, left-padded into Q rows of Lq slots (as decodeSteps lays them out).
  const Q = used.length;
  const layout = promptPrefill(prompts, used);
  const Lq = layout.slots;
  const promptCache = sharedBuffers('prompt', layers * Q * Lq * D);
  if (Lq > 0) run(promptCache, Q, Lq, 0, layout.ids, layout.positions, layout.starts, new Int32Array(Q * Lq).fill(-1));

  // 2-3. One row per non-empty response: its prompt's slots copied, then the prompt's last token and the response.
  const R = scored.length;
  const T = Math.max(...scored.map((b) => rows[b].tokens.length));
  const S = Lq + T;
  const cache = sharedBuffers('rows', layers * R * S * D);
  const ids = new Int32Array(R * T);
  const positions = new Int32Array(R * T);
  const targets = new Int32Array(R * T).fill(-1);
  const starts = new Int32Array(R);
  scored.forEach((b, r) => {
    const { prompt: p, tokens } = rows[b];
    const prompt = prompts[p];
    starts[r] = Lq + 1 - prompt.length;
    copyPromptSlots(promptCache, cache, { layers, width: D, prompts: Q, promptSlots: Lq, rows: R, slots: S }, slotOf.get(p) as number, r);
    for (let t = 0; t < tokens.length; t++) {
      ids[r * T + t] = t === 0 ? prompt[prompt.length - 1] : tokens[t - 1];
      positions[r * T + t] = prompt.length - 1 + t;
      targets[r * T + t] = tokens[t];
    }
  });
  const logp = run(cache, R, T, Lq, ids, positions, starts, targets);
  scored.forEach((b, r) => out[b].set(logp.subarray(r * T, r * T + rows[b].tokens.length)));
  return out;
}

/**
 * The prompt prefill of shared-prompt scoring (`nativeScoreSharedPrompts`, `StreamingScorer`): the
 * prompts `used` (indices into `prompts`), each but its last token, left-padded into rows of
 * `slots` = longest − 1 tokens as `generate` lays prompts out; positions count from each prompt's
 * first token, `starts[q]` is its first real slot.
 */
export function promptPrefill(prompts: readonly (readonly number[])[], used: readonly number[]): { slots: number; ids: Int32Array; positions: Int32Array; starts: Int32Array } {
  const Q = used.length;
  const slots = Math.max(...used.map((p) => prompts[p].length)) - 1;
  const ids = new Int32Array(Q * slots);
  const positions = new Int32Array(Q * slots);
  const starts = new Int32Array(Q);
  used.forEach((p, q) => {
    const prompt = prompts[p];
    const pad = slots - (prompt.length - 1);
    starts[q] = pad;
    for (let t = pad; t < slots; t++) {
      ids[q * slots + t] = prompt[t - pad];
      positions[q * slots + t] = t - pad;
    }
  });
  return { slots, ids, positions, starts };
}

/**
 * Copies prompt row q's slots of a prompt KV cache (`[layers, prompts, promptSlots, width]`) into the
 * first slots of row r of a rows cache (`[layers, rows, slots, width]`), every layer.
 */
export function copyPromptSlots(
  from: { k: Float32Array; v: Float32Array },
  to: { k: Float32Array; v: Float32Array },
  shape: { layers: number; width: number; prompts: number; promptSlots: number; rows: number; slots: number },
  q: number,
  r: number,
): void {
  const { layers, width: D, prompts: Q, promptSlots: Lq, rows: R, slots: S } = shape;
  for (let l = 0; l < layers; l++) {
    const src = (l * Q + q) * Lq * D;
    const dst = (l * R + r) * S * D;
    to.k.set(from.k.subarray(src, src + Lq * D), dst);
    to.v.set(from.v.subarray(src, src + Lq * D), dst);
  }
}

/**
 * KV caches of `nativeScoreSharedPrompts`, one pair per use, grown to the largest call so far and
 * reused (every slot a call reads is written in that call first, so nothing needs clearing).
 */
const kvBuffers = new Map<string, { k: Float32Array; v: Float32Array }>();
function sharedBuffers(use: string, floats: number): { k: Float32Array; v: Float32Array } {
  const have = kvBuffers.get(use);
  if (have && have.k.length >= floats) return have;
  const made = { k: new Float32Array(floats), v: new Float32Array(floats) };
  kvBuffers.set(use, made);
  return made;
}

/**
 * The scratch of every `decode` and `score` call (temporaries only, nothing kept between calls; the
 * calls are synchronous, so one buffer serves every decoder), grown to the largest call so far:
 * allocating and zeroing megabytes per call costs a good part of the call itself.
 */
let scratchBuffer = new Float32Array(0);
function sharedScratch(floats: number): Float32Array {
  if (scratchBuffer.length < floats) scratchBuffer = new Float32Array(floats);
  return scratchBuffer;
}

/**
 * A `NativeDecoder` for `rows` rows of up to `slots` tokens when the native kernels serve this backend
 * and the model has an LM head; undefined otherwise (sampling then runs on TF.js kernels).
 */
export function nativeDecoder(model: Model, rows: number, slots: number, starts: Int32Array): NativeDecoder | undefined {
  const blas = nativeBlas();
  // An addon built before `decode` existed lacks it.
  if (!blas || typeof blas.decode !== 'function' || tf.getBackend() !== 'wasm' || !model.params.lm_head) return undefined;
  return new NativeDecoder(blas, model, rows, slots, starts);
}

/**
 * Registers the native kernels on the WASM backend (call once, after it initialised) and sets the
 * OpenBLAS thread count.
 */
export function enableNativeKernels(blas: NativeBlas, threads: number): void {
  if (active) return;
  blas.setThreads(threads);
  const original = tf.getKernel('BatchMatMul', 'wasm');
  tf.unregisterKernel('BatchMatMul', 'wasm');
  tf.registerKernel({ kernelName: 'BatchMatMul', backendName: 'wasm', kernelFunc: nativeBatchMatMul(blas, original.kernelFunc) });
  registerFusedKernels(blas);
  active = blas;
}
