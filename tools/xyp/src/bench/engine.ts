/**
 * `xyp bench engine`: raw matmul rate, training and sampling throughput of the local engine, measured
 * side by side in one process; with `compareTorch`, the same model trained by PyTorch on the CPU in a
 * child process, its steps interleaved with the engine's so that both see the same machine load.
 *
 * FLOPs: 6 × N per trained token (forward 2N, backward 4N) plus 12 × layers × context × width per
 * token for attention scores and mixing (forward and backward), with N the parameters that take part
 * in matrix products (every parameter except the token and position embedding tables, which are
 * lookups).
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import os from 'node:os';
import { createInterface } from 'node:readline';
import * as tf from '@tensorflow/tfjs-core';
import {
  countParams,
  disposeModel,
  fusedDecodingActive,
  generate,
  initBackend,
  initParams,
  lmLoss,
  ModelConfig,
  Trainer,
  useFusedDecoding,
  useNativeKernels,
  type BackendInfo,
  type MatmulPath,
  type TokenBatch,
} from '@xyp/engine';
import { createRng, type Rng } from '@xyp/random';
import { configuredBackend } from '../engine-runtime';

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
  /** Which code ran the matrix products (`native-openblas`, `wasm-xnnpack`, `cpu-js`). */
  matmul: MatmulPath;
  params: number;
  matmulParams: number;
  flopsPerToken: number;
  rawMatmulGflops: number;
  trainGflops: number;
  fractionOfRaw: number;
  /** Over all timed steps. */
  trainTokensPerSecond: number;
  trainSteps: number;
  /** Wall time of each timed step, in order. */
  trainStepMs: number[];
  /** From the median step time (robust to other processes' bursts on a shared machine). */
  trainTokensPerSecondMedian: number;
  /**
   * Sampling (prompts of 16 tokens, 64 new tokens per row, temperature 1, top-p 0.95, KV cache, prefill
   * included) at `batch` rows: the median of the rounds. `sampleDecoder` says which forward pass ran.
   */
  sampleTokensPerSecond: number;
  /** The same at 64 rows (PPO rollouts, n samples per prompt). */
  sampleTokensPerSecondBatch64: number;
  sampleDecoder: 'native' | 'tfjs';
  /** The engine's TF.js decoding path (`useFusedDecoding(false)`) in the same rounds, with `sampleTfjs`. */
  sampleTfjsTokensPerSecond?: number;
  sampleTfjsTokensPerSecondBatch64?: number;
  /** Tokens/s of every round, per batch and side. */
  sampling: SamplingRounds[];
  peakRssMb: number;
  /** PyTorch on the same model and batch, steps interleaved with the engine's (with `compareTorch`). */
  torch?: TorchResult;
}

/** The sampling rounds at one batch size: tokens/s per round of each side, in the order run. */
export interface SamplingRounds {
  batch: number;
  engine: number[];
  tfjs?: number[];
  /** PyTorch, by `torch.set_num_threads`. */
  torch?: Record<string, number[]>;
}

export interface TorchResult {
  version: string;
  threads: number;
  rawMatmulGflops: number;
  trainStepMs: number[];
  /** Over all timed steps, like the engine's. */
  torchTrainTokensPerSecond: number;
  torchTrainTokensPerSecondMedian: number;
  torchTrainGflops: number;
  torchFractionOfRaw: number;
  /** Engine tokens/s ÷ PyTorch tokens/s, from the totals and from the medians. */
  ratio: number;
  ratioMedian: number;
  /**
   * Sampling the same model in PyTorch (KV cache written in place, top-p 0.95 by sort and cumsum,
   * `torch.multinomial`), rounds interleaved with the engine's: per `set_num_threads` setting the
   * median of the rounds, and the best setting's figure, at `batch` rows and at 64.
   */
  torchSampleTokensPerSecond: number;
  torchSampleThreads: number;
  torchSampleTokensPerSecondByThreads: Record<string, number>;
  torchSampleTokensPerSecondBatch64: number;
  torchSampleThreadsBatch64: number;
  torchSampleTokensPerSecondBatch64ByThreads: Record<string, number>;
  /** Engine ÷ PyTorch's best setting, sampling, at `batch` rows and at 64. */
  sampleRatio: number;
  sampleRatioBatch64: number;
}

export const DEFAULT_SIZES: Record<string, EngineBenchSize> = {
  small: { layers: 2, width: 128, heads: 4, context: 128, batch: 8, vocab: 4096 },
  base: { layers: 4, width: 256, heads: 4, context: 256, batch: 8, vocab: 4096 },
};

export const FLOP_CONVENTION =
  '6 x matmul parameters per trained token + 12 x layers x context x width per token for attention; matmul parameters exclude the embedding tables';

/**
 * `C[4096,1024] = A[4096,256] · B[256,1024]`, 2·m·k·n FLOPs, best of several runs. The WASM and CPU
 * backends run kernels synchronously, so `matMul` returning means C is computed; reading C back
 * (a 16 MB copy out of the WASM heap, ~40% of the native product's time) is left out of the timing.
 */
export function rawMatmulGflops(): number {
  const a = tf.randomNormal([4096, 256], 0, 1, 'float32', 1);
  const b = tf.randomNormal([256, 1024], 0, 1, 'float32', 2);
  let best = Infinity;
  for (let i = 0; i < 8; i++) {
    const t0 = performance.now();
    const c = tf.matMul(a, b);
    best = Math.min(best, performance.now() - t0);
    c.dataSync();
    c.dispose();
  }
  a.dispose();
  b.dispose();
  return (2 * 4096 * 256 * 1024) / (best / 1000) / 1e9;
}

function randomBatch(size: EngineBenchSize, rng: Rng): TokenBatch {
  const n = size.batch * size.context;
  const ids = Int32Array.from({ length: n }, () => rng.nextInt(size.vocab));
  const targets = Int32Array.from({ length: n }, () => rng.nextInt(size.vocab));
  return { ids, targets, weights: new Float32Array(n).fill(1), batch: size.batch, seq: size.context };
}

export interface BenchOptions {
  /** Timed training steps after the warm-up steps. */
  steps: number;
  warmup: number;
  /** Rounds of sampling per batch size (default 3), the sides in turn. */
  sampleRounds?: number;
  /** Also time the engine's TF.js decoding path (slow: about a tenth of the native decoder's rate). */
  sampleTfjs?: boolean;
  /** `torch.set_num_threads` settings PyTorch samples with (default 1 and 2, at most the core count). */
  torchSampleThreads?: number[];
  onProgress?: (line: string) => void;
}

/** Sampling workload: prompts of this many tokens, this many new tokens per row (or what the context leaves), top-p. */
const SAMPLE_PROMPT = 16;
const SAMPLE_NEW = 64;
const SAMPLE_TOP_P = 0.95;
const ROLLOUT_BATCH = 64;

const SETTLE_MS = 300;

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export async function benchSize(
  name: string,
  size: EngineBenchSize,
  raw: number,
  options: BenchOptions & { matmul?: MatmulPath; torch?: TorchRunner },
): Promise<EngineBenchResult> {
  const config = ModelConfig.parse({
    vocabSize: size.vocab,
    contextLength: size.context,
    layers: size.layers,
    width: size.width,
    heads: size.heads,
  });
  const { total, matmul } = countParams(config);
  const flopsPerToken = 6 * matmul + 12 * size.layers * size.context * size.width;
  const tokensPerStep = size.batch * size.context;
  const model = initParams(config, 1);
  const trainer = new Trainer(model, { lr: 1e-4, warmupSteps: 0 }, 2);
  const rng = createRng(3);
  const batch = randomBatch(size, rng);
  const torch = options.torch ? await options.torch.start(size) : undefined;
  for (let i = 0; i < options.warmup; i++) {
    trainer.trainStep(() => lmLoss(model, batch).loss);
    if (torch) await torch.step();
  }
  const stepMs: number[] = [];
  const torchMs: number[] = [];
  // Between the two sides a pause lets the other's idle BLAS threads stop spinning (OpenBLAS spins
  // ~2^28 cycles before sleeping), so that neither step competes with the other process's threads.
  const settle = () => new Promise((resolve) => setTimeout(resolve, torch ? SETTLE_MS : 0));
  for (let i = 0; i < options.steps; i++) {
    // Alternate which side goes first, so that neither always follows the other.
    if (torch && i % 2 === 1) {
      torchMs.push(await torch.step());
      await settle();
    }
    const t0 = performance.now();
    const r = trainer.trainStep(() => lmLoss(model, batch).loss);
    stepMs.push(performance.now() - t0);
    if (torch && i % 2 === 0) {
      await settle();
      torchMs.push(await torch.step());
    }
    options.onProgress?.(`${name}: step ${r.step} loss ${r.loss.toFixed(4)} (${stepMs[i].toFixed(0)} ms${torch ? `, torch ${torchMs[i].toFixed(0)} ms` : ''})`);
  }
  const seconds = stepMs.reduce((a, b) => a + b, 0) / 1000;
  const trainTokensPerSecond = (options.steps * tokensPerStep) / seconds;
  const trainGflops = (trainTokensPerSecond * flopsPerToken) / 1e9;
  const trainTokensPerSecondMedian = tokensPerStep / (median(stepMs) / 1000);
  trainer.dispose();
  let torchResult: TorchResult | undefined;
  if (torch) {
    const torchTokens = (options.steps * tokensPerStep) / (torchMs.reduce((a, b) => a + b, 0) / 1000);
    const torchMedian = tokensPerStep / (median(torchMs) / 1000);
    const torchGflops = (torchTokens * flopsPerToken) / 1e9;
    torchResult = {
      ...NO_TORCH_SAMPLING,
      version: torch.version,
      threads: torch.threads,
      rawMatmulGflops: round(torch.rawMatmulGflops),
      trainStepMs: torchMs.map((ms) => round(ms, 1)),
      torchTrainTokensPerSecond: round(torchTokens, 1),
      torchTrainTokensPerSecondMedian: round(torchMedian, 1),
      torchTrainGflops: round(torchGflops),
      torchFractionOfRaw: round(torchGflops / torch.rawMatmulGflops, 3),
      ratio: round(trainTokensPerSecond / torchTokens, 3),
      ratioMedian: round(trainTokensPerSecondMedian / torchMedian, 3),
    };
  }
  // Sampling: at `batch` rows and at 64, prompts of 16 tokens, 64 new tokens each, the sides in turn.
  const sampling = await benchSampling(model, size, rng, options, torch, name);
  torch?.stop();
  const at = (batch: number) => sampling.find((s) => s.batch === batch) as SamplingRounds;
  const small = at(size.batch);
  const large = at(ROLLOUT_BATCH);
  if (torchResult) {
    const best = (rounds: SamplingRounds) => {
      const byThreads = Object.fromEntries(Object.entries(rounds.torch ?? {}).map(([t, xs]) => [t, round(median(xs), 1)]));
      const [threads, tokens] = Object.entries(byThreads).reduce((a, b) => (b[1] > a[1] ? b : a));
      return { byThreads, threads: Number(threads), tokens };
    };
    const s = best(small);
    const l = best(large);
    Object.assign(torchResult, {
      torchSampleTokensPerSecond: s.tokens,
      torchSampleThreads: s.threads,
      torchSampleTokensPerSecondByThreads: s.byThreads,
      torchSampleTokensPerSecondBatch64: l.tokens,
      torchSampleThreadsBatch64: l.threads,
      torchSampleTokensPerSecondBatch64ByThreads: l.byThreads,
      sampleRatio: round(median(small.engine) / s.tokens, 3),
      sampleRatioBatch64: round(median(large.engine) / l.tokens, 3),
    });
  }
  disposeModel(model);
  return {
    name,
    matmul: options.matmul ?? 'wasm-xnnpack',
    ...size,
    params: total,
    matmulParams: matmul,
    flopsPerToken,
    rawMatmulGflops: round(raw),
    trainGflops: round(trainGflops),
    fractionOfRaw: round(trainGflops / raw, 3),
    trainTokensPerSecond: round(trainTokensPerSecond, 1),
    trainSteps: options.steps,
    trainStepMs: stepMs.map((ms) => round(ms, 1)),
    trainTokensPerSecondMedian: round(trainTokensPerSecondMedian, 1),
    sampleTokensPerSecond: round(median(small.engine), 1),
    sampleTokensPerSecondBatch64: round(median(large.engine), 1),
    sampleDecoder: fusedDecodingActive() ? 'native' : 'tfjs',
    ...(small.tfjs && large.tfjs
      ? { sampleTfjsTokensPerSecond: round(median(small.tfjs), 1), sampleTfjsTokensPerSecondBatch64: round(median(large.tfjs), 1) }
      : {}),
    sampling,
    peakRssMb: round(process.resourceUsage().maxRSS / 1024, 1),
    ...(torchResult ? { torch: torchResult } : {}),
  };
}

/** Filled in once PyTorch has sampled (`benchSampling`). */
const NO_TORCH_SAMPLING = {
  torchSampleTokensPerSecond: 0,
  torchSampleThreads: 0,
  torchSampleTokensPerSecondByThreads: {},
  torchSampleTokensPerSecondBatch64: 0,
  torchSampleThreadsBatch64: 0,
  torchSampleTokensPerSecondBatch64ByThreads: {},
  sampleRatio: 0,
  sampleRatioBatch64: 0,
};

/** Tokens/s of one `generate` call over `prompts`: prefill and every step, top-p 0.95, temperature 1. */
function engineSample(model: Parameters<typeof generate>[0], prompts: number[][], newTokens: number, tfjs = false): number {
  const previous = useFusedDecoding(!tfjs);
  try {
    const t0 = performance.now();
    const samples = generate(model, prompts, { maxTokens: newTokens, temperature: 1, topP: SAMPLE_TOP_P, seed: 5 });
    return samples.reduce((a, s) => a + s.tokens.length, 0) / ((performance.now() - t0) / 1000);
  } finally {
    useFusedDecoding(previous);
  }
}

/**
 * Sampling rounds at `size.batch` rows and at 64: per round the engine, its TF.js path (with
 * `sampleTfjs`) and PyTorch at each thread setting, in an order that rotates every round, with a pause
 * between sides; one untimed warm-up of each first.
 */
async function benchSampling(
  model: Parameters<typeof generate>[0],
  size: EngineBenchSize,
  rng: Rng,
  options: BenchOptions,
  torch: TorchRunner | undefined,
  name: string,
): Promise<SamplingRounds[]> {
  const newTokens = Math.max(1, Math.min(SAMPLE_NEW, size.context - SAMPLE_PROMPT));
  const rounds = Math.max(1, options.sampleRounds ?? 3);
  const threadSettings = [...new Set((options.torchSampleThreads ?? [1, 2]).map((t) => Math.max(1, Math.min(t, os.cpus().length))))];
  const settle = () => new Promise((resolve) => setTimeout(resolve, torch ? SETTLE_MS : 0));
  const results: SamplingRounds[] = [];
  for (const batch of [...new Set([size.batch, ROLLOUT_BATCH])]) {
    const prompts = Array.from({ length: batch }, () => Array.from({ length: SAMPLE_PROMPT }, () => rng.nextInt(size.vocab)));
    const result: SamplingRounds = { batch, engine: [], ...(options.sampleTfjs ? { tfjs: [] } : {}), ...(torch ? { torch: {} } : {}) };
    type Side = { label: string; run: () => Promise<number>; into: number[] };
    const sides: Side[] = [{ label: 'engine', run: async () => engineSample(model, prompts, newTokens), into: result.engine }];
    if (result.tfjs) sides.push({ label: 'engine tfjs', run: async () => engineSample(model, prompts, newTokens, true), into: result.tfjs });
    if (torch && result.torch) {
      for (const threads of threadSettings) {
        const into: number[] = (result.torch[String(threads)] = []);
        sides.push({ label: `torch ${threads} thread(s)`, run: () => torch.sample({ threads, batch, prompt: SAMPLE_PROMPT, newTokens, topP: SAMPLE_TOP_P, seed: 5 }), into });
      }
    }
    // Warm-up: a short run of each side (allocation, first-call costs).
    engineSample(model, prompts, 4);
    if (torch) for (const threads of threadSettings) await torch.sample({ threads, batch, prompt: SAMPLE_PROMPT, newTokens: 4, topP: SAMPLE_TOP_P, seed: 4 });
    for (let r = 0; r < rounds; r++) {
      for (let i = 0; i < sides.length; i++) {
        const side = sides[(i + r) % sides.length];
        await settle();
        const tokens = await side.run();
        side.into.push(round(tokens, 1));
        options.onProgress?.(`${name}: sampling batch ${batch}, round ${r + 1}: ${side.label} ${tokens.toFixed(0)} tok/s`);
      }
    }
    results.push(result);
  }
  return results;
}

function round(x: number, digits = 2): number {
  const f = Math.pow(10, digits);
  return Math.round(x * f) / f;
}

export interface EngineBenchReport {
  backend: BackendInfo;
  /** The raw product on the active path, and with the native addon also on WASM (XNNPACK) in the same process. */
  rawMatmulGflops: number;
  wasmRawMatmulGflops?: number;
  flopConvention: string;
  peakRssNote: string;
  /** Why PyTorch was asked for but not run (no Python with `torch`). */
  torchNote?: string;
  models: EngineBenchResult[];
}

export async function runEngineBench(
  sizes: Record<string, EngineBenchSize>,
  options: BenchOptions & {
    backend?: 'wasm' | 'cpu' | 'auto';
    threads?: number;
    compareTorch?: boolean;
    python?: string;
    /** `torch.set_num_threads` (intra-op threads); default: the engine's compute threads. */
    torchThreads?: number;
  },
): Promise<EngineBenchReport> {
  // `--backend` and `--threads` win over XYP_ENGINE_BACKEND and XYP_ENGINE_THREADS; XYP_ENGINE_NATIVE=0 keeps the run on WASM.
  const backend = await initBackend({
    ...configuredBackend(),
    ...(options.backend === undefined ? {} : { backend: options.backend }),
    ...(options.threads === undefined ? {} : { threads: options.threads }),
  });
  const raw = rawMatmulGflops();
  let wasmRaw: number | undefined;
  if (backend.matmul === 'native-openblas') {
    const previous = useNativeKernels(false);
    try {
      wasmRaw = rawMatmulGflops();
    } finally {
      useNativeKernels(previous);
    }
  }
  let torch: TorchRunner | undefined;
  let torchNote: string | undefined;
  if (options.compareTorch) {
    const found = findTorchPython(options.python);
    if (found.python) torch = new TorchRunner(found.python, options.torchThreads ?? backend.blasThreads ?? options.threads ?? backend.threads);
    else torchNote = found.note;
  }
  const models: EngineBenchResult[] = [];
  for (const [name, size] of Object.entries(sizes)) models.push(await benchSize(name, size, raw, { ...options, matmul: backend.matmul, torch }));
  return {
    backend,
    rawMatmulGflops: round(raw),
    ...(wasmRaw === undefined ? {} : { wasmRawMatmulGflops: round(wasmRaw) }),
    flopConvention: FLOP_CONVENTION,
    peakRssNote: 'peak resident set of the process so far (maxRSS), so a later model includes the earlier ones',
    ...(torchNote ? { torchNote } : {}),
    models,
  };
}

/**
 * The PyTorch side of `--compare-torch`: the engine's model (pre-norm RMSNorm, rotary, causal attention,
 * GELU u·σ(1.702u), untied LM head, no biases; init N(0, 0.02²), output projections scaled by
 * 1/√(2·layers)) trained with AdamW (lr 1e-4, β 0.9/0.95, weight decay 0.1 on matrices, clip 1) on a
 * fixed random batch. It prints one JSON line when ready (version, threads, raw matmul GFLOP/s of
 * `[4096,256]·[256,1024]`, best of 8) and then one line per `step` command with that step's time.
 * A JSON `{"cmd": "sample", threads, batch, prompt, newTokens, topP, seed}` line samples from the same
 * model with a KV cache (preallocated per layer, written in place; `set_num_threads(threads)` meanwhile):
 * random prompts, then per step softmax, top-p by sort and cumsum, `multinomial`; it answers with the
 * time (prefill included) and the tokens made.
 */
const TORCH_SCRIPT = String.raw`
import json, math, sys, time
import torch
cfg = json.loads(sys.argv[1])
torch.set_num_threads(cfg["threads"])
torch.manual_seed(1)
L, D, H, T, B, V = cfg["layers"], cfg["width"], cfg["heads"], cfg["context"], cfg["batch"], cfg["vocab"]
Dh = D // H
a, b = torch.randn(4096, 256), torch.randn(256, 1024)
best = float("inf")
for _ in range(8):
    t0 = time.perf_counter(); a @ b; best = min(best, time.perf_counter() - t0)
raw = 2 * 4096 * 256 * 1024 / best / 1e9
def mat(*shape, std=0.02):
    return torch.nn.Parameter(torch.randn(*shape) * std)
P = {"tok_emb": mat(V, D)}
for l in range(L):
    P[f"{l}.norm1"] = torch.nn.Parameter(torch.ones(D))
    for n in ("wq", "wk", "wv"):
        P[f"{l}.{n}"] = mat(D, D)
    P[f"{l}.wo"] = mat(D, D, std=0.02 / math.sqrt(2 * L))
    P[f"{l}.norm2"] = torch.nn.Parameter(torch.ones(D))
    P[f"{l}.w1"] = mat(D, 4 * D)
    P[f"{l}.w2"] = mat(4 * D, D, std=0.02 / math.sqrt(2 * L))
P["norm_f"] = torch.nn.Parameter(torch.ones(D))
P["lm_head"] = mat(D, V)
groups = [
    {"params": [p for k, p in P.items() if "norm" not in k and "emb" not in k], "weight_decay": 0.1},
    {"params": [p for k, p in P.items() if "norm" in k or "emb" in k], "weight_decay": 0.0},
]
opt = torch.optim.AdamW(groups, lr=1e-4, betas=(0.9, 0.95), eps=1e-8)
inv = 10000.0 ** (-torch.arange(0, Dh, 2, dtype=torch.float32) / Dh)
ang = torch.arange(T, dtype=torch.float32)[:, None] * inv[None, :]
cos, sin = torch.cat([ang.cos(), ang.cos()], -1), torch.cat([ang.sin(), ang.sin()], -1)
mask = torch.full((T, T), -1e9).triu(1)
def rms(x, g):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * g
def rope(x):
    x1, x2 = x[..., : Dh // 2], x[..., Dh // 2 :]
    return x * cos + torch.cat([-x2, x1], -1) * sin
def heads(x):
    return x.view(B, T, H, Dh).transpose(1, 2)
def forward(ids):
    x = P["tok_emb"][ids]
    for l in range(L):
        h = rms(x, P[f"{l}.norm1"])
        q, k, v = rope(heads(h @ P[f"{l}.wq"])), rope(heads(h @ P[f"{l}.wk"])), heads(h @ P[f"{l}.wv"])
        s = (q @ k.transpose(-1, -2)) / math.sqrt(Dh) + mask
        x = x + (s.softmax(-1) @ v).transpose(1, 2).reshape(B, T, D) @ P[f"{l}.wo"]
        u = rms(x, P[f"{l}.norm2"]) @ P[f"{l}.w1"]
        x = x + (u * torch.sigmoid(1.702 * u)) @ P[f"{l}.w2"]
    return rms(x, P["norm_f"]) @ P["lm_head"]
g = torch.Generator().manual_seed(3)
ids, tgt = torch.randint(0, V, (B, T), generator=g), torch.randint(0, V, (B, T), generator=g)
def rope_at(x, c, s):
    x1, x2 = x[..., : Dh // 2], x[..., Dh // 2 :]
    return x * c + torch.cat([-x2, x1], -1) * s
@torch.inference_mode()
def sample(rows, prompt, new, top_p, seed):
    gen = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, V, (rows, prompt), generator=gen)
    S = prompt + new
    kc = [torch.zeros(rows, H, S, Dh) for _ in range(L)]
    vc = [torch.zeros(rows, H, S, Dh) for _ in range(L)]
    def step(tok, past):
        n = tok.shape[1]
        x = P["tok_emb"][tok]
        c, s = cos[past : past + n], sin[past : past + n]
        causal = torch.full((n, past + n), -1e9).triu(past + 1) if n > 1 else None
        for l in range(L):
            h = rms(x, P[f"{l}.norm1"])
            q = rope_at((h @ P[f"{l}.wq"]).view(rows, n, H, Dh).transpose(1, 2), c, s)
            kc[l][:, :, past : past + n] = rope_at((h @ P[f"{l}.wk"]).view(rows, n, H, Dh).transpose(1, 2), c, s)
            vc[l][:, :, past : past + n] = (h @ P[f"{l}.wv"]).view(rows, n, H, Dh).transpose(1, 2)
            att = (q @ kc[l][:, :, : past + n].transpose(-1, -2)) / math.sqrt(Dh)
            if causal is not None:
                att = att + causal
            x = x + (att.softmax(-1) @ vc[l][:, :, : past + n]).transpose(1, 2).reshape(rows, n, D) @ P[f"{l}.wo"]
            u = rms(x, P[f"{l}.norm2"]) @ P[f"{l}.w1"]
            x = x + (u * torch.sigmoid(1.702 * u)) @ P[f"{l}.w2"]
        return rms(x[:, -1], P["norm_f"]) @ P["lm_head"]
    logits = step(tokens, 0)
    made = 0
    for i in range(new):
        # Top-p: keep the most likely tokens up to the first whose running mass reaches p.
        probs, order = torch.softmax(logits, -1).sort(-1, descending=True)
        probs[(probs.cumsum(-1) - probs) >= top_p] = 0
        tok = order.gather(-1, torch.multinomial(probs, 1, generator=gen))
        made += rows
        if i < new - 1:
            logits = step(tok, prompt + i)
    return made
print(json.dumps({"version": torch.__version__, "threads": torch.get_num_threads(), "rawMatmulGflops": raw}), flush=True)
for line in sys.stdin:
    if line.startswith("{"):
        req = json.loads(line)
        torch.set_num_threads(req["threads"])
        t0 = time.perf_counter()
        made = sample(req["batch"], req["prompt"], req["newTokens"], req["topP"], req["seed"])
        ms = (time.perf_counter() - t0) * 1000
        torch.set_num_threads(cfg["threads"])
        print(json.dumps({"ms": ms, "tokens": made}), flush=True)
        continue
    if line.strip() != "step":
        break
    t0 = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    loss = torch.nn.functional.cross_entropy(forward(ids).view(-1, V), tgt.view(-1))
    loss.backward()
    torch.nn.utils.clip_grad_norm_(list(P.values()), 1.0)
    opt.step()
    print(json.dumps({"ms": (time.perf_counter() - t0) * 1000, "loss": loss.item()}), flush=True)
`;

/** The first of `XYP_TORCH_PYTHON`, `python3`, `/usr/bin/python3` (or the given one) that imports torch. */
export function findTorchPython(given?: string): { python?: string; note?: string } {
  const candidates = given ? [given] : [process.env.XYP_TORCH_PYTHON, 'python3', '/usr/bin/python3'].filter((c): c is string => Boolean(c));
  for (const python of candidates) {
    const probe = spawnSync(python, ['-c', 'import torch'], { stdio: 'ignore', timeout: 60_000 });
    if (probe.status === 0) return { python };
  }
  return { note: `no Python with torch among ${candidates.join(', ')} (Debian: apt-get install python3-torch)` };
}

/** A PyTorch training process per model size, driven one step at a time. */
export class TorchRunner {
  private child?: ChildProcessWithoutNullStreams;
  private waiting: ((line: string) => void)[] = [];
  private stderr = '';
  version = '';
  threads = 0;
  rawMatmulGflops = 0;

  constructor(
    private readonly python: string,
    private readonly threadCount: number,
  ) {}

  async start(size: EngineBenchSize): Promise<this> {
    const cfg = { ...size, threads: Math.max(1, Math.min(this.threadCount, os.cpus().length)) };
    const child = spawn(this.python, ['-c', TORCH_SCRIPT, JSON.stringify(cfg)], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
    child.stderr.on('data', (chunk: Buffer) => (this.stderr = (this.stderr + chunk.toString()).slice(-2000)));
    createInterface({ input: child.stdout }).on('line', (line) => this.waiting.shift()?.(line));
    const ready = JSON.parse(await this.next()) as { version: string; threads: number; rawMatmulGflops: number };
    Object.assign(this, ready);
    return this;
  }

  /** One PyTorch training step; resolves to its time in ms, as measured inside Python. */
  async step(): Promise<number> {
    this.child?.stdin.write('step\n');
    return (JSON.parse(await this.next()) as { ms: number }).ms;
  }

  /** One PyTorch sampling run (prefill and every step, timed inside Python); resolves to its tokens/s. */
  async sample(request: { threads: number; batch: number; prompt: number; newTokens: number; topP: number; seed: number }): Promise<number> {
    this.child?.stdin.write(`${JSON.stringify({ cmd: 'sample', ...request })}\n`);
    const { ms, tokens } = JSON.parse(await this.next()) as { ms: number; tokens: number };
    return tokens / (ms / 1000);
  }

  stop(): void {
    this.child?.stdin.end();
    this.child = undefined;
  }

  private next(): Promise<string> {
    const child = this.child;
    if (!child) return Promise.reject(new Error('the PyTorch process is not running'));
    return new Promise((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`PyTorch process exited (${code}): ${this.stderr.trim().split('\n').pop() ?? ''}`));
      child.once('exit', onExit);
      this.waiting.push((line) => {
        child.off('exit', onExit);
        resolve(line);
      });
    });
  }
}
