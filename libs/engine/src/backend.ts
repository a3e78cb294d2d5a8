import * as fs from 'node:fs';
import os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
// The tfjs-core package alone registers no gradients; the union package registers them into the same engine.
import '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-cpu';
import * as wasm from '@tensorflow/tfjs-backend-wasm';
import { BLAS_THREAD_TIMEOUT, NATIVE_ADDON_PATH, enableNativeKernels, loadNativeBlas } from './native';

// Switching the native kernels off and on at run time (benchmarks, tests) belongs with backend selection.
export { useNativeKernels } from './native';

export type BackendName = 'wasm' | 'cpu';

/**
 * How to pick the backend. Every field is explicit: the engine reads no environment. Processes that
 * take these settings from `XYP_ENGINE_*` read them with `EngineEnv` / `engineBackendOptions` of
 * `@xyp/config` and pass them here.
 */
export interface BackendOptions {
  /** `auto` (default) tries WASM (SIMD, threads when `threads` > 1) and falls back to the CPU backend. */
  backend?: BackendName | 'auto';
  /**
   * Compute threads. With the native addon: OpenBLAS threads and the workers of the fused kernels (the
   * WASM module then loads its single-threaded build). Without it: XNNPACK threads of the WASM backend,
   * 1 loading the single-threaded SIMD build. Default: the core count, at most 8.
   */
  threads?: number;
  /**
   * Run matrix products and the fused kernels (`native.ts`) on the OpenBLAS addon when it is built
   * (`tools/native/build.sh`). Default: on. Without the addon, or when it fails to load, everything
   * runs on WASM and `BackendInfo.note` says why.
   */
  native?: boolean;
  /** The addon to load; default `NATIVE_ADDON_PATH` (`tools/native/blas/build/Release/xyp_blas.node`). */
  nativePath?: string;
  /**
   * How long an idle OpenBLAS thread spins before it sleeps, as 2^n cycles (OpenBLAS's
   * `OPENBLAS_THREAD_TIMEOUT`, 4–30); default `BLAS_THREAD_TIMEOUT` (16). An `OPENBLAS_THREAD_TIMEOUT`
   * in the environment wins.
   */
  blasThreadTimeout?: number;
}

/** Which code multiplies matrices: the OpenBLAS addon, XNNPACK inside WASM, or the CPU backend's JS. */
export type MatmulPath = 'native-openblas' | 'wasm-xnnpack' | 'cpu-js';

export interface BackendInfo {
  backend: BackendName;
  /** Threads the XNNPACK pool actually runs (1 on the CPU backend and with the native addon). */
  threads: number;
  simd: boolean;
  matmul: MatmulPath;
  /** OpenBLAS threads and build, when `matmul` is `native-openblas`. */
  blasThreads?: number;
  blasConfig?: string;
  /** OpenBLAS's idle spin in effect (`BackendOptions.blasThreadTimeout`, or the environment's). */
  blasThreadTimeout?: number;
  /** Why the backend differs from the one asked for, when it does. */
  note?: string;
}

let current: BackendInfo | undefined;
let pending: Promise<BackendInfo> | undefined;

/** The backend chosen by the first `initBackend` call of this process (TF.js allows one WASM module per process). */
export function backendInfo(): BackendInfo | undefined {
  return current;
}

function defaultThreads(): number {
  return Math.max(1, Math.min(8, os.cpus().length));
}

/**
 * Selects and initialises the TF.js backend once per process; later calls return the same result.
 * The WASM module can only be instantiated once, so the thread count of the first call wins.
 */
export function initBackend(options: BackendOptions = {}): Promise<BackendInfo> {
  if (!pending) pending = choose(options).then((info) => (current = info));
  return pending;
}

async function choose(options: BackendOptions): Promise<BackendInfo> {
  const wanted = options.backend ?? 'auto';
  if (wanted === 'cpu') return useCpu();
  const threads = options.threads ?? defaultThreads();
  // With the addon every heavy kernel runs natively; the WASM module is left with residual additions
  // and reshapes, for which its thread pool measured no gain (README), so it loads single-threaded.
  const nativeWanted = options.native ?? true;
  const timeout = options.blasThreadTimeout ?? BLAS_THREAD_TIMEOUT;
  if (!Number.isInteger(timeout) || timeout < 4 || timeout > 30) throw new Error(`blasThreadTimeout must be an integer in [4, 30], got ${timeout}`);
  const { blas, note, threadTimeout } = nativeWanted ? loadNativeBlas(options.nativePath ?? NATIVE_ADDON_PATH, timeout) : { blas: undefined, note: undefined, threadTimeout: undefined };
  const wasmThreads = blas ? 1 : threads;
  const before = { uncaught: process.listeners('uncaughtException'), rejection: process.listeners('unhandledRejection') };
  try {
    const simd = (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) as boolean;
    if (wasmThreads > 1 && simd) await initThreadedWasm(wasmThreads);
    else if (!(await tf.setBackend('wasm'))) throw new Error('the WASM backend did not initialise');
    await tf.ready();
    dropListenersAddedSince(before);
    shareIdentityBuffers();
    const info: BackendInfo = { backend: 'wasm', threads: wasm.getThreadsCount(), simd, matmul: 'wasm-xnnpack' };
    if (!blas) return note ? { ...info, note } : info;
    enableNativeKernels(blas, threads);
    return { ...info, matmul: 'native-openblas', blasThreads: blas.threads(), blasConfig: blas.config(), blasThreadTimeout: threadTimeout };
  } catch (error) {
    if (wanted === 'wasm') throw error;
    const info = await useCpu();
    return { ...info, note: `WASM backend unavailable: ${error instanceof Error ? error.message : String(error)}` };
  }
}

/**
 * The Emscripten module installs `uncaughtException`/`unhandledRejection` handlers that rethrow and
 * print its whole minified source; the process keeps Node's own handling instead.
 */
function dropListenersAddedSince(before: { uncaught: unknown[]; rejection: unknown[] }): void {
  for (const l of process.listeners('uncaughtException')) if (!before.uncaught.includes(l)) process.removeListener('uncaughtException', l);
  for (const l of process.listeners('unhandledRejection')) if (!before.rejection.includes(l)) process.removeListener('unhandledRejection', l);
}

/**
 * The WASM `Identity` kernel copies its input. The engine runs it for every tensor it saves for the
 * backward pass (`clone`), which cost a copy of each saved activation and a few percent of a training
 * step. TF.js tensors are immutable, so the replacement shares the buffer and counts the reference,
 * as the CPU backend's does.
 */
function shareIdentityBuffers(): void {
  tf.unregisterKernel('Identity', 'wasm');
  tf.registerKernel({
    kernelName: 'Identity',
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend }) => {
      const x = inputs.x as tf.TensorInfo;
      (backend as wasm.BackendWasm).incRef(x.dataId);
      return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
    },
  });
}

async function useCpu(): Promise<BackendInfo> {
  await tf.setBackend('cpu');
  await tf.ready();
  return { backend: 'cpu', threads: 1, simd: false, matmul: 'cpu-js' };
}

/**
 * Loads the threaded SIMD build of the WASM backend in Node, which TF.js 4.22 does not do as shipped:
 *
 * 1. `WASM_HAS_MULTITHREAD_SUPPORT` is hard-wired to false under Node; it is set to true.
 * 2. The pthread workers are created from `blob:` URLs, which `worker_threads` cannot load. While the
 *    module initialises, `Blob` records the text it is built from and `URL.createObjectURL` writes that
 *    text to a temporary file and returns its path; the worker script is rewritten to load the module
 *    factory from that file (the bundler's `require$$N` names it refers to are defined in front of it).
 * 3. The C++ side caps the pool at `emscripten_num_logical_cores() / 2`, which Emscripten reads from
 *    `os.cpus().length`; during initialisation `os.cpus()` reports `2 × threads` entries.
 *
 * Every patched global is restored once the module is up.
 */
async function initThreadedWasm(threads: number): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xyp-engine-wasm-'));
  const mainPath = path.join(dir, 'wasm-module.js');
  const OriginalBlob = globalThis.Blob;
  const originalCreateObjectURL = URL.createObjectURL;
  const originalCpus = os.cpus;
  const texts = new WeakMap<object, string>();
  const prelude =
    "var require$$0=require('fs'),require$$1=require('path'),require$$3=require('perf_hooks'),require$$4=require('os');" +
    'var commonjsGlobal=globalThis;';
  class RecordingBlob extends OriginalBlob {
    constructor(parts: ConstructorParameters<typeof Blob>[0] = [], options?: ConstructorParameters<typeof Blob>[1]) {
      super(parts, options);
      const text = parts.map((part) => (typeof part === 'string' ? part : '')).join('');
      texts.set(this, text);
      if (text.startsWith('var WasmBackendModuleThreadedSimd')) fs.writeFileSync(mainPath, prelude + text);
    }
  }
  const loadBlob =
    /if\(typeof e\.data\.urlOrBlob=="string"\)\{importScripts\(e\.data\.urlOrBlob\)\}else\{var objectUrl=URL\.createObjectURL\(e\.data\.urlOrBlob\);importScripts\(objectUrl\);URL\.revokeObjectURL\(objectUrl\)\}/;
  const createObjectURL = (blob: Blob): string => {
    const text = texts.get(blob);
    if (text === undefined) return originalCreateObjectURL(blob);
    const patched = text.replace(loadBlob, `importScripts(${JSON.stringify(mainPath)});`);
    if (patched === text) throw new Error('unexpected WASM worker script: cannot redirect its module load');
    const workerPath = path.join(dir, 'worker.js');
    fs.writeFileSync(workerPath, patched);
    return workerPath;
  };
  const cpus = originalCpus();
  while (cpus.length < 2 * threads) cpus.push(cpus[0]);
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
  wasm.setThreadsCount(threads);
  globalThis.Blob = RecordingBlob;
  URL.createObjectURL = createObjectURL;
  (os as { cpus: () => os.CpuInfo[] }).cpus = () => cpus.slice(0, 2 * threads);
  try {
    if (!(await tf.setBackend('wasm'))) throw new Error('the threaded WASM backend did not initialise');
  } finally {
    globalThis.Blob = OriginalBlob;
    URL.createObjectURL = originalCreateObjectURL;
    (os as { cpus: () => os.CpuInfo[] }).cpus = originalCpus;
  }
}
