/**
 * `xyp bench engine`: raw matmul rate, training and sampling throughput of the local engine, measured
 * side by side in one process.
 *
 * FLOPs: 6 × N per trained token (forward 2N, backward 4N) plus 12 × layers × context × width per
 * token for attention scores and mixing (forward and backward), with N the parameters that take part
 * in matrix products (every parameter except the token and position embedding tables, which are
 * lookups).
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  countParams,
  disposeModel,
  generate,
  initBackend,
  initParams,
  lmLoss,
  ModelConfig,
  Rng,
  Trainer,
  type BackendInfo,
  type TokenBatch,
} from '@xyp/engine';

export interface EngineBenchSize {
  layers: number;
  width: number;
  heads: number;
  context: number;
  batch: number;
  vocab: number;
}

export interface EngineBenchResult extends EngineBenchSize {
  name: string;
  params: number;
  matmulParams: number;
  flopsPerToken: number;
  rawMatmulGflops: number;
  trainGflops: number;
  fractionOfRaw: number;
  trainTokensPerSecond: number;
  trainSteps: number;
  sampleTokensPerSecond: number;
  peakRssMb: number;
}

export const DEFAULT_SIZES: Record<string, EngineBenchSize> = {
  small: { layers: 2, width: 128, heads: 4, context: 128, batch: 8, vocab: 4096 },
  base: { layers: 4, width: 256, heads: 4, context: 256, batch: 8, vocab: 4096 },
};

export const FLOP_CONVENTION =
  '6 x matmul parameters per trained token + 12 x layers x context x width per token for attention; matmul parameters exclude the embedding tables';

/** `C[4096,1024] = A[4096,256] · B[256,1024]`, 2·m·k·n FLOPs, best of several runs. */
export function rawMatmulGflops(): number {
  const a = tf.randomNormal([4096, 256], 0, 1, 'float32', 1);
  const b = tf.randomNormal([256, 1024], 0, 1, 'float32', 2);
  let best = Infinity;
  for (let i = 0; i < 8; i++) {
    const t0 = performance.now();
    const c = tf.matMul(a, b);
    c.dataSync();
    best = Math.min(best, performance.now() - t0);
    c.dispose();
  }
  a.dispose();
  b.dispose();
  return (2 * 4096 * 256 * 1024) / (best / 1000) / 1e9;
}

function randomBatch(size: EngineBenchSize, rng: Rng): TokenBatch {
  const n = size.batch * size.context;
  const ids = Int32Array.from({ length: n }, () => rng.int(size.vocab));
  const targets = Int32Array.from({ length: n }, () => rng.int(size.vocab));
  return { ids, targets, weights: new Float32Array(n).fill(1), batch: size.batch, seq: size.context };
}

export interface BenchOptions {
  /** Timed training steps after the warm-up steps. */
  steps: number;
  warmup: number;
  onProgress?: (line: string) => void;
}

export function benchSize(name: string, size: EngineBenchSize, raw: number, options: BenchOptions): EngineBenchResult {
  const config = ModelConfig.parse({
    vocabSize: size.vocab,
    contextLength: size.context,
    layers: size.layers,
    width: size.width,
    heads: size.heads,
  });
  const { total, matmul } = countParams(config);
  const flopsPerToken = 6 * matmul + 12 * size.layers * size.context * size.width;
  const model = initParams(config, 1);
  const trainer = new Trainer(model, { lr: 1e-4, warmupSteps: 0 }, 2);
  const rng = new Rng(3);
  const batch = randomBatch(size, rng);
  for (let i = 0; i < options.warmup; i++) trainer.trainStep(() => lmLoss(model, batch).loss);
  const t0 = performance.now();
  for (let i = 0; i < options.steps; i++) {
    const r = trainer.trainStep(() => lmLoss(model, batch).loss);
    options.onProgress?.(`${name}: step ${r.step} loss ${r.loss.toFixed(4)}`);
  }
  const seconds = (performance.now() - t0) / 1000;
  const trainTokensPerSecond = (options.steps * size.batch * size.context) / seconds;
  const trainGflops = (trainTokensPerSecond * flopsPerToken) / 1e9;
  trainer.dispose();
  // Sampling: `batch` prompts of 16 tokens, 64 new tokens each, with the KV cache.
  const prompts = Array.from({ length: size.batch }, () => Array.from({ length: 16 }, () => rng.int(size.vocab)));
  const newTokens = Math.min(64, size.context - 16);
  generate(model, prompts, { maxTokens: 4, temperature: 1, seed: 4 });
  const s0 = performance.now();
  const samples = generate(model, prompts, { maxTokens: newTokens, temperature: 1, topP: 0.95, seed: 5 });
  const sampled = samples.reduce((a, s) => a + s.tokens.length, 0);
  const sampleTokensPerSecond = sampled / ((performance.now() - s0) / 1000);
  disposeModel(model);
  return {
    name,
    ...size,
    params: total,
    matmulParams: matmul,
    flopsPerToken,
    rawMatmulGflops: round(raw),
    trainGflops: round(trainGflops),
    fractionOfRaw: round(trainGflops / raw, 3),
    trainTokensPerSecond: round(trainTokensPerSecond, 1),
    trainSteps: options.steps,
    sampleTokensPerSecond: round(sampleTokensPerSecond, 1),
    peakRssMb: round(process.resourceUsage().maxRSS / 1024, 1),
  };
}

function round(x: number, digits = 2): number {
  const f = Math.pow(10, digits);
  return Math.round(x * f) / f;
}

export interface EngineBenchReport {
  backend: BackendInfo;
  flopConvention: string;
  peakRssNote: string;
  models: EngineBenchResult[];
}

export async function runEngineBench(
  sizes: Record<string, EngineBenchSize>,
  options: BenchOptions & { backend?: 'wasm' | 'cpu' | 'auto'; threads?: number },
): Promise<EngineBenchReport> {
  const backend = await initBackend({ backend: options.backend, threads: options.threads });
  const raw = rawMatmulGflops();
  const models: EngineBenchResult[] = [];
  for (const [name, size] of Object.entries(sizes)) models.push(benchSize(name, size, raw, options));
  return {
    backend,
    flopConvention: FLOP_CONVENTION,
    peakRssNote: 'peak resident set of the process so far (maxRSS), so a later model includes the earlier ones',
    models,
  };
}
