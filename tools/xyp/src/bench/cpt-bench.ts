/**
 * CPT data-path bench (`xyp bench cpt`): tokens/s of the CPT stage's loop — category rows from the
 * corpus stage's shards, the mixture sampler's plan, packed-row batches with document masks, the
 * per-category loss bookkeeping — against the engine's raw training step on the same model and one
 * prebuilt batch. Both sides run interleaved in blocks on one fresh model each, medians reported.
 */
import { Trainer, countParams, cptBatch, disposeModel, initBackend, initParams, lmLoss, type BackendOptions } from '@xyp/engine';
import { planStage, trainCptMixture } from '@xyp/local-engine';
import { openBucketShards, readCategoryRows } from '@xyp/training-data';
import { sampleShards } from '../sample-shards';

export interface CptBenchOptions {
  shards?: string;
  layers: number;
  width: number;
  heads: number;
  context: number;
  batch: number;
  /** Steps per block; each block runs `stages` mixture stages on the stage path. */
  steps: number;
  blocks: number;
  backend?: BackendOptions;
  onProgress?: (line: string) => void;
}

export interface CptBenchReport {
  model: { layers: number; width: number; heads: number; context: number; batch: number; params: number };
  backend: string;
  shards: { source: string; categories: number; trainRows: number; tokens: number };
  stepsPerBlock: number;
  blocks: number;
  rawTokensPerSecond: number[];
  stageTokensPerSecond: number[];
  rawMedian: number;
  stageMedian: number;
  /** Stage path tokens/s ÷ raw step tokens/s (medians); target ≥ 0.9. */
  fraction: number;
  /** Milliseconds per step the data path alone takes (plan, batch assembly), measured without training. */
  dataPathMsPerStep: number;
  rawMsPerStep: number;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

export async function runCptBench(options: CptBenchOptions): Promise<CptBenchReport> {
  const say = options.onProgress ?? (() => undefined);
  const info = await initBackend(options.backend);
  let source = options.shards;
  if (!source) {
    source = await sampleShards(say);
  }
  const rows = await readCategoryRows(await openBucketShards(source), { context: options.context, validationFraction: 0.1, seed: 1 });
  const config = { vocabSize: 260, contextLength: options.context, layers: options.layers, width: options.width, heads: options.heads };
  const T = options.context;
  const tokensPerStep = options.batch * T;
  const optim = { lr: 1e-3, warmupSteps: 0, totalSteps: 1_000_000, weightDecay: 0.1, clipNorm: 1 };
  const raw: number[] = [];
  const stage: number[] = [];
  const weights = Object.fromEntries(Object.keys(rows.train).map((c) => [c, 1 / Object.keys(rows.train).length]));
  // Raw: one prebuilt batch, the training step alone.
  const fixed = cptBatch(rows, Object.values(rows.train).flat().slice(0, options.batch));
  const rawModel = initParams(config, 1);
  const rawTrainer = new Trainer(rawModel, optim, 1);
  const stageModel = initParams(config, 1);
  const stageTrainer = new Trainer(stageModel, optim, 1);
  try {
    for (let i = 0; i < 2; i++) rawTrainer.trainStep((seed) => lmLoss(rawModel, fixed, seed).loss);
    for (let b = 0; b < options.blocks; b++) {
      const t0 = performance.now();
      for (let i = 0; i < options.steps; i++) rawTrainer.trainStep((seed) => lmLoss(rawModel, fixed, seed).loss);
      raw.push((options.steps * tokensPerStep) / ((performance.now() - t0) / 1000));
      // Stage path: the CPT loop itself (one mixture stage per block, validation only at its ends).
      const before = stageTrainer.step;
      let measured = 0;
      let started = 0;
      await trainCptMixture(stageTrainer, rows, {
        steps: before + options.steps,
        stages: 1,
        batchSize: options.batch,
        weights,
        logEvery: 2,
        evalEvery: 1_000_000,
        validationRows: 1,
        seed: 1 + b,
        onStep: () => {
          if (started === 0) started = performance.now();
          measured += 1;
        },
      });
      // From the end of the first step to the end of the last: the per-step cost of the loop (the
      // validation before the first step is left out; the one at the stage end, of one row per category, is in).
      stage.push(((measured - 1) * tokensPerStep) / ((performance.now() - started) / 1000));
      say(`block ${b + 1}/${options.blocks}: raw ${Math.round(raw[b])} tok/s, stage path ${Math.round(stage[b])} tok/s`);
    }
    // The data path alone: plan and batches of one stage, no training.
    const t0 = performance.now();
    const plan = planStage(rows, weights, options.steps, options.batch, 1, 0);
    for (let i = 0; i < options.steps; i++) cptBatch(rows, plan.order.slice(i * options.batch, (i + 1) * options.batch).map((e) => e.docIndex));
    const dataPathMsPerStep = (performance.now() - t0) / options.steps;
    const rawMedian = median(raw);
    const stageMedian = median(stage);
    return {
      model: { layers: options.layers, width: options.width, heads: options.heads, context: options.context, batch: options.batch, params: countParams(rawModel.config).total },
      backend: `${info.backend}${info.matmul ? `, matmul ${info.matmul}` : ''}, ${info.threads} thread(s)`,
      shards: { source, categories: Object.keys(rows.train).length, trainRows: Object.values(rows.train).reduce((n, l) => n + l.length, 0), tokens: rows.tokenCount },
      stepsPerBlock: options.steps,
      blocks: options.blocks,
      rawTokensPerSecond: raw.map(Math.round),
      stageTokensPerSecond: stage.map(Math.round),
      rawMedian: Math.round(rawMedian),
      stageMedian: Math.round(stageMedian),
      fraction: Number((stageMedian / rawMedian).toFixed(3)),
      dataPathMsPerStep: Number(dataPathMsPerStep.toFixed(3)),
      rawMsPerStep: Number(((tokensPerStep / rawMedian) * 1000).toFixed(2)),
    };
  } finally {
    rawTrainer.dispose();
    stageTrainer.dispose();
    disposeModel(rawModel);
    disposeModel(stageModel);
  }
}
