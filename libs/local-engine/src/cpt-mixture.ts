/**
 * Continued pretraining with the dynamic data mixture in the loop (XuanYuan3 report, 一, 动态数据训练策略).
 *
 * The job's steps are cut into `stages` mixture stages. In each stage:
 *
 * 1. The stage's rows are planned by `planSampling` of `@xyp/mixture` (the sampler `corpus.mix`
 *    users get): each training row of the category rows is a document of `R − 1` counted tokens,
 *    the stage's token budget `steps × batch × (R − 1)` is split by the current weights (largest
 *    remainder), each category draws its rows without replacement in a seeded order (another
 *    pass when they run out: upsampled), and the draws are interleaved by a seeded shuffle. Step i
 *    of the stage trains on draws `i·B … i·B + B − 1`. Attention, targets and positions stay inside
 *    each document piece of a packed row (`cptBatch`).
 * 2. Every `logEvery` steps, one training-loss line per category: the mean NLL over that category's
 *    counted positions since its last line.
 * 3. Every `evalEvery` steps, at the start and at each stage end, the validation loss per category:
 *    the mean NLL over a fixed sample of that category's validation rows (whole packed sequences
 *    never trained on), no dropout.
 * 4. At a stage boundary, `nextMixture` of `@xyp/mixture` — the same decision code as the
 *    `corpus.mix` stage — reads the stage's training-loss lines and the current weights and gives
 *    the next stage's weights, with a reason per category.
 *
 * Everything the loop needs to go on after a crash is in `CptMixtureState`: the stage, the weights,
 * the lines so far and the partial sums; the stage's plan is recomputed from (seed, stage, weights).
 */
import { addCategoryNll, batchNll, categoryMeans, cptBatch, lmLoss, runStepLoop, type SftLogState, type LoopControl, type StepResult, type Trainer } from '@xyp/engine';
import { nextMixture, planSampling, type IndexedDocument, type LossReportLine, type MixtureConfigInput, type SamplingPlan } from '@xyp/mixture';
import { createRng, deriveSeed, shuffleInPlace } from '@xyp/random';
import type { CategoryRows } from '@xyp/training-data';
import { lineChart } from '@xyp/charts';
import { firstToLastLoss } from './category-loss';

/** One loss point of a category: `train` (since the category's previous line) or `validation`. */
export interface CategoryLossPoint {
  kind: 'train' | 'validation';
  step: number;
  category: string;
  loss: number;
  tokens: number;
}

/** What one mixture stage trained with, and what the controller decided at its end. */
export interface MixtureStageRecord {
  stage: number;
  fromStep: number;
  toStep: number;
  weights: Record<string, number>;
  /** Rows drawn per category in the stage's plan, and the categories whose rows repeated. */
  draws: Record<string, number>;
  upsampled: string[];
  /** The controller's decision at the stage end (none after the last stage). */
  decision?: {
    weights: Record<string, number>;
    changes: { category: string; oldWeight: number; newWeight: number; lossReference: number | null; lossNow: number | null; signal: number | null; flags: string[]; reason: string }[];
    notes: string[];
  };
}

export interface CptMixtureState {
  /** Index of the stage in progress (0-based). */
  stage: number;
  weights: Record<string, number>;
  stages: MixtureStageRecord[];
  lines: CategoryLossPoint[];
  /** Training NLL sums per category since each category's last line. */
  sums: Record<string, { nll: number; tokens: number }>;
}

export interface CptMixtureOptions extends LoopControl {
  /** Optimiser steps of the whole job. */
  steps: number;
  stages: number;
  batchSize: number;
  /** Weights of the first stage. */
  weights: Record<string, number>;
  config?: MixtureConfigInput;
  logEvery: number;
  evalEvery: number;
  /** Validation rows scored per category at each evaluation (a fixed seeded sample). */
  validationRows: number;
  seed: number;
  /** State to continue from (a resumed job); updated in place as the loop runs. */
  state?: CptMixtureState;
  /** After each stage boundary's decision (or the last stage's end), awaited. */
  onStage?: (record: MixtureStageRecord) => void | Promise<void>;
}

/** Step at which stage k (0-based) of `stages` ends, for a job of `steps` steps. */
export function stageEnd(steps: number, stages: number, k: number): number {
  return Math.round((steps * (k + 1)) / stages);
}

/** Each category's share of the training rows' counted tokens: the default first-stage weights. */
export function tokenShareWeights(rows: CategoryRows): Record<string, number> {
  const counts: Record<string, number> = {};
  let total = 0;
  for (const [category, list] of Object.entries(rows.train)) {
    let n = 0;
    for (const r of list) {
      const base = r * rows.rowLength;
      for (let t = 0; t + 1 < rows.rowLength; t++) if (rows.docIds[base + t] === rows.docIds[base + t + 1]) n += 1;
    }
    if (n > 0) counts[category] = n;
    total += n;
  }
  return Object.fromEntries(Object.entries(counts).map(([c, n]) => [c, n / total]));
}

/** The stage's plan over the training rows (see the module comment). */
export function planStage(rows: CategoryRows, weights: Record<string, number>, stepsInStage: number, batchSize: number, seed: number, stage: number): SamplingPlan {
  const index: IndexedDocument[] = [];
  for (const [category, list] of Object.entries(rows.train)) for (const r of list) index.push({ category, bucket: rows.rowLength, docIndex: r, tokens: rows.rowLength - 1 });
  const active = Object.fromEntries(Object.entries(weights).filter(([c, w]) => w > 0 && (rows.train[c]?.length ?? 0) > 0));
  const missing = Object.keys(weights).filter((c) => weights[c] > 0 && !(c in active));
  if (missing.length > 0) throw new Error(`CPT mixture: categories ${missing.join(', ')} have weight but no training rows`);
  return planSampling(index, active, { totalTokens: stepsInStage * batchSize * (rows.rowLength - 1), seed: deriveSeed(seed, 'cpt-stage', stage) });
}

/** A fixed sample of each category's validation rows (seeded). */
export function validationSample(rows: CategoryRows, perCategory: number, seed: number): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const [category, list] of Object.entries(rows.validation)) {
    if (list.length === 0) continue;
    out[category] = shuffleInPlace([...list], createRng(deriveSeed(seed, 'validation-sample', category))).slice(0, perCategory).sort((a, b) => a - b);
  }
  return out;
}

/** Mean NLL per category over the sampled validation rows, `batchSize` rows a forward pass. */
export function validationLoss(trainer: Trainer, rows: CategoryRows, sample: Record<string, number[]>, batchSize: number, step: number): CategoryLossPoint[] {
  const points: CategoryLossPoint[] = [];
  const sums: SftLogState = {};
  for (const [category, list] of Object.entries(sample)) {
    for (let i = 0; i < list.length; i += batchSize) {
      const batch = cptBatch(rows, list.slice(i, i + batchSize));
      addCategoryNll(sums, new Array<string>(batch.batch).fill(category), batch, batchNll(trainer.model, batch));
    }
  }
  for (const mean of categoryMeans(sums)) points.push({ kind: 'validation', step, ...mean });
  return points;
}

function flushTrainLines(state: CptMixtureState, step: number): void {
  for (const mean of categoryMeans(state.sums)) state.lines.push({ kind: 'train', step, ...mean });
  state.sums = {};
}

/**
 * Runs (or continues) the CPT mixture loop on `trainer` until the job's `steps` are done or the loop
 * is stopped (`stop`: returns early; the caller checkpoints `state` and hands back).
 */
export async function trainCptMixture(trainer: Trainer, rows: CategoryRows, options: CptMixtureOptions): Promise<{ state: CptMixtureState; steps: StepResult[] }> {
  const { steps: total, stages, batchSize } = options;
  if (!Number.isInteger(stages) || stages < 1 || stages > total) throw new Error(`CPT mixture: stages must be an integer in [1, steps = ${total}], got ${stages}`);
  const state: CptMixtureState = options.state ?? { stage: 0, weights: { ...options.weights }, stages: [], lines: [], sums: {} };
  const sample = validationSample(rows, options.validationRows, options.seed);
  if (!state.lines.some((l) => l.kind === 'validation')) state.lines.push(...validationLoss(trainer, rows, sample, batchSize, trainer.step));
  const done: StepResult[] = [];
  while (state.stage < stages) {
    const k = state.stage;
    const from = k === 0 ? 0 : stageEnd(total, stages, k - 1);
    const to = stageEnd(total, stages, k);
    const plan = planStage(rows, state.weights, to - from, batchSize, options.seed, k);
    const run = await runStepLoop(Math.max(0, to - trainer.step), { ...options, totalSteps: total }, trainer.step, () => {
      const at = (trainer.step - from) * batchSize;
      const pick = plan.order.slice(at, at + batchSize).map((e) => e.docIndex);
      const batch = cptBatch(rows, pick);
      const result = trainer.trainStep((seed) => {
        const { loss, nll } = lmLoss(trainer.model, batch, seed);
        addCategoryNll(state.sums, pick.map((row) => rows.categories[rows.rowCategory[row]]), batch, nll.dataSync());
        return loss;
      });
      if (result.step % options.logEvery === 0 || result.step === to) flushTrainLines(state, result.step);
      if (result.step % options.evalEvery === 0 || result.step === to) state.lines.push(...validationLoss(trainer, rows, sample, batchSize, result.step));
      return { result, tokens: batch.batch * batch.seq };
    });
    done.push(...run);
    if (trainer.step < to) return { state, steps: done };
    const draws: Record<string, number> = {};
    for (const e of plan.order.slice(0, (to - from) * batchSize)) draws[e.category] = (draws[e.category] ?? 0) + 1;
    const record: MixtureStageRecord = { stage: k + 1, fromStep: from, toStep: to, weights: { ...state.weights }, draws, upsampled: plan.upsampled };
    if (k + 1 < stages && Object.keys(state.weights).length === 1) {
      record.decision = { weights: { ...state.weights }, changes: [], notes: ['one category: nothing to mix, the weight stays 1'] };
    } else if (k + 1 < stages) {
      const reports: LossReportLine[] = state.lines.filter((l) => l.kind === 'train' && l.step > from && l.step <= to).map(({ step, category, loss, tokens }) => ({ step, category, loss, tokens }));
      const decision = nextMixture(reports, state.weights, options.config ?? {});
      record.decision = {
        weights: decision.weights,
        changes: decision.changes.map((c) => ({ category: c.category, oldWeight: c.oldWeight, newWeight: c.newWeight, lossReference: c.lossReference, lossNow: c.lossNow, signal: c.signal, flags: c.flags, reason: c.reason })),
        notes: decision.notes,
      };
      state.weights = { ...decision.weights };
    }
    state.stages.push(record);
    state.stage += 1;
    await options.onStage?.(record);
  }
  return { state, steps: done };
}

/** Per-category validation loss at the first and the last evaluation. */
export function validationSummary(lines: readonly CategoryLossPoint[]): Record<string, { before: number; after: number; change: number }> {
  return firstToLastLoss(lines.filter((l) => l.kind === 'validation'));
}

/** PNGs of a CPT mixture job: weights per stage, validation and training loss per category. */
export function cptMixtureCharts(state: CptMixtureState, title: string): Record<string, Uint8Array> {
  const categories = [...new Set([...state.stages.flatMap((s) => Object.keys(s.weights)), ...state.lines.map((l) => l.category)])].sort();
  const weightsAt = state.stages.map((s) => ({ stage: s.stage, weights: s.weights }));
  const last = state.stages[state.stages.length - 1];
  if (last?.decision) weightsAt.push({ stage: last.stage + 1, weights: last.decision.weights });
  const byKind = (kind: CategoryLossPoint['kind']) =>
    categories.map((name) => ({ name, points: state.lines.filter((l) => l.kind === kind && l.category === name).map((l) => [l.step, l.loss] as [number, number]) })).filter((s) => s.points.length > 0);
  return {
    'mixture-weights.png': lineChart({
      title: `${title}: sampling weight per stage`,
      xLabel: 'stage',
      yLabel: 'weight',
      series: categories.map((name) => ({ name, points: weightsAt.map((w) => [w.stage, w.weights[name] ?? 0] as [number, number]) })),
    }),
    'validation-loss.png': lineChart({ title: `${title}: validation loss per category`, xLabel: 'step', yLabel: 'loss (nats/token)', series: byKind('validation') }),
    'train-loss.png': lineChart({ title: `${title}: training loss per category`, xLabel: 'step', yLabel: 'loss (nats/token)', series: byKind('train') }),
  };
}
