/**
 * SFT with per-epoch dynamic ratios (XuanYuan3 report, 二: after each epoch the category ratios are
 * re-set from per-category loss — converged or over-fitting categories go down, high-loss ones up).
 *
 * Each epoch draws `examplesPerEpoch` conversations: the count per category is split from the
 * epoch's ratios by largest remainder (`allocateTokens` of `@xyp/mixture`, counting conversations),
 * each category draws its conversations without replacement in a seeded order (another pass when
 * they run out), and the draws are interleaved by a seeded shuffle. The loss counts assistant tokens
 * only (`sftBatch`).
 *
 * Logged per epoch e (1-based) and category: the training loss (mean NLL per assistant token over
 * the epoch's steps) and the held-out loss after the epoch. Epoch 0 is before training: the loss of
 * up to `TRAIN_SAMPLE` training conversations per category and of the held-out set, so the first
 * decision already sees how far each category fell in epoch 1. After every epoch but the last,
 * `nextSftRatios` of `@xyp/mixture` re-sets the ratios from the training lines of every epoch so
 * far, with the held-out lines for its over-fitting test.
 */
import { addCategoryNll, batchNll, categoryMeans, lmLoss, runStepLoop, sftBatch, type SftLogState, type ByteTokenizer, type LoopControl, type SftExample, type StepResult, type Trainer } from '@xyp/engine';
import { allocateTokens, nextSftRatios, type LossReportLine, type MixtureConfigInput } from '@xyp/mixture';
import { createRng, deriveSeed, shuffleInPlace } from '@xyp/random';
import { lineChart } from '@xyp/charts';
import { firstToLastLoss } from './category-loss';

export interface SftEpochLoss {
  kind: 'train' | 'held-out';
  epoch: number;
  category: string;
  loss: number;
  tokens: number;
}

export interface SftEpochRecord {
  epoch: number;
  fromStep: number;
  toStep: number;
  ratios: Record<string, number>;
  /** Conversations drawn per category this epoch. */
  draws: Record<string, number>;
  /** Categories whose conversations repeated within the epoch. */
  upsampled: string[];
  decision?: {
    ratios: Record<string, number>;
    changes: { category: string; oldWeight: number; newWeight: number; lossReference: number | null; lossNow: number | null; signal: number | null; flags: string[]; reason: string }[];
    notes: string[];
  };
}

export interface SftEpochState {
  /** Epochs finished. */
  epoch: number;
  ratios: Record<string, number>;
  epochs: SftEpochRecord[];
  lines: SftEpochLoss[];
  /** Training sums of the epoch in progress. */
  sums: Record<string, { nll: number; tokens: number }>;
}

export interface SftEpochOptions extends LoopControl {
  epochs: number;
  batchSize: number;
  seq: number;
  /** Conversations per epoch (default: the training set's size). */
  examplesPerEpoch: number;
  /** Ratios of the first epoch. */
  ratios: Record<string, number>;
  config?: MixtureConfigInput;
  seed: number;
  state?: SftEpochState;
  onEpoch?: (record: SftEpochRecord) => void | Promise<void>;
}

/** Training conversations per category scored before the first epoch (the epoch-0 training line). */
export const TRAIN_SAMPLE = 64;

/** Steps of one epoch: ⌈examples / batch⌉ (the last batch may be smaller). */
export function stepsPerEpoch(examplesPerEpoch: number, batchSize: number): number {
  return Math.ceil(examplesPerEpoch / batchSize);
}

/** Each category's share of the training conversations: the default first-epoch ratios. */
export function countRatios(examples: readonly SftExample[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const e of examples) counts[e.category] = (counts[e.category] ?? 0) + 1;
  return Object.fromEntries(Object.entries(counts).map(([c, n]) => [c, n / examples.length]));
}

/** The epoch's draws (indices into `examples`), in training order; see the module comment. */
export function planEpoch(examples: readonly SftExample[], ratios: Record<string, number>, count: number, seed: number, epoch: number): { order: number[]; draws: Record<string, number>; upsampled: string[] } {
  const byCategory = new Map<string, number[]>();
  examples.forEach((e, i) => {
    const list = byCategory.get(e.category);
    if (list) list.push(i);
    else byCategory.set(e.category, [i]);
  });
  const active = Object.fromEntries(Object.entries(ratios).filter(([, w]) => w > 0));
  for (const category of Object.keys(active)) if (!byCategory.has(category)) throw new Error(`SFT ratios: category ${category} has a ratio but no training conversations`);
  const counts = allocateTokens(active, count);
  const order: number[] = [];
  const upsampled: string[] = [];
  for (const [category, n] of Object.entries(counts).sort(([a], [b]) => a.localeCompare(b))) {
    const pool = byCategory.get(category) as number[];
    const rng = createRng(deriveSeed(seed, 'sft-epoch', epoch, category));
    for (let drawn = 0; drawn < n; ) {
      for (const i of shuffleInPlace([...pool], rng)) {
        if (drawn >= n) break;
        order.push(i);
        drawn += 1;
      }
    }
    if (n > pool.length) upsampled.push(category);
  }
  shuffleInPlace(order, createRng(deriveSeed(seed, 'sft-epoch-order', epoch)));
  return { order, draws: counts, upsampled };
}

/** Mean NLL per assistant token per category over `examples` (no dropout, no gradients). */
export function sftCategoryLoss(trainer: Trainer, tokenizer: ByteTokenizer, examples: readonly SftExample[], seq: number, batchSize: number): Record<string, { loss: number; tokens: number }> {
  const sums: SftLogState = {};
  for (let i = 0; i < examples.length; i += batchSize) {
    const batch = sftBatch(examples.slice(i, i + batchSize), tokenizer, seq);
    addCategoryNll(sums, batch.categories, batch, batchNll(trainer.model, batch));
  }
  return Object.fromEntries(categoryMeans(sums).map(({ category, loss, tokens }) => [category, { loss, tokens }]));
}

function heldOutLines(trainer: Trainer, tokenizer: ByteTokenizer, heldOut: readonly SftExample[], options: SftEpochOptions, epoch: number): SftEpochLoss[] {
  return Object.entries(sftCategoryLoss(trainer, tokenizer, heldOut, options.seq, options.batchSize))
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([category, l]) => ({ kind: 'held-out' as const, epoch, category, ...l }));
}

/** The loss lines of one kind as the controller reads them (`step` = epoch). */
export function epochReport(lines: readonly SftEpochLoss[], kind: SftEpochLoss['kind']): LossReportLine[] {
  return lines.filter((l) => l.kind === kind).map((l) => ({ step: l.epoch, category: l.category, loss: l.loss, tokens: l.tokens }));
}

/** Runs (or continues) SFT epochs; returns early when stopped (`stop`), with the state to checkpoint. */
export async function trainSftEpochs(
  trainer: Trainer,
  tokenizer: ByteTokenizer,
  train: readonly SftExample[],
  heldOut: readonly SftExample[],
  options: SftEpochOptions,
): Promise<{ state: SftEpochState; steps: StepResult[] }> {
  if (train.length === 0) throw new Error('SFT: no training conversations');
  const per = stepsPerEpoch(options.examplesPerEpoch, options.batchSize);
  const total = per * options.epochs;
  const state: SftEpochState = options.state ?? { epoch: 0, ratios: { ...options.ratios }, epochs: [], lines: [], sums: {} };
  if (!state.lines.some((l) => l.epoch === 0)) {
    // Epoch 0, before training: the loss of up to TRAIN_SAMPLE conversations per category of the
    // training set (the reference the first decision compares epoch 1 with), and of the held-out set.
    const byCategory = new Map<string, SftExample[]>();
    for (const e of train) {
      const list = byCategory.get(e.category);
      if (!list) byCategory.set(e.category, [e]);
      else if (list.length < TRAIN_SAMPLE) list.push(e);
    }
    const start = sftCategoryLoss(trainer, tokenizer, [...byCategory.values()].flat(), options.seq, options.batchSize);
    for (const [category, l] of Object.entries(start).sort(([a], [b]) => a.localeCompare(b))) state.lines.push({ kind: 'train', epoch: 0, category, ...l });
    if (heldOut.length > 0) state.lines.push(...heldOutLines(trainer, tokenizer, heldOut, options, 0));
  }
  const done: StepResult[] = [];
  while (state.epoch < options.epochs) {
    const e = state.epoch + 1;
    const from = state.epoch * per;
    const to = from + per;
    const plan = planEpoch(train, state.ratios, options.examplesPerEpoch, options.seed, e);
    const run = await runStepLoop(Math.max(0, to - trainer.step), { ...options, totalSteps: total }, trainer.step, () => {
      const at = (trainer.step - from) * options.batchSize;
      const picked = plan.order.slice(at, at + options.batchSize).map((i) => train[i]);
      const batch = sftBatch(picked, tokenizer, options.seq);
      const result = trainer.trainStep((seed) => {
        const { loss, nll } = lmLoss(trainer.model, batch, seed);
        addCategoryNll(state.sums, batch.categories, batch, nll.dataSync());
        return loss;
      });
      return { result, tokens: batch.batch * batch.seq };
    });
    done.push(...run);
    if (trainer.step < to) return { state, steps: done };
    for (const mean of categoryMeans(state.sums)) state.lines.push({ kind: 'train', epoch: e, ...mean });
    state.sums = {};
    if (heldOut.length > 0) state.lines.push(...heldOutLines(trainer, tokenizer, heldOut, options, e));
    const record: SftEpochRecord = { epoch: e, fromStep: from, toStep: to, ratios: { ...state.ratios }, draws: plan.draws, upsampled: plan.upsampled };
    if (e < options.epochs && Object.keys(state.ratios).length === 1) {
      record.decision = { ratios: { ...state.ratios }, changes: [], notes: ['one category: nothing to mix, the ratio stays 1'] };
    } else if (e < options.epochs) {
      const decision = nextSftRatios(epochReport(state.lines, 'train'), state.ratios, options.config ?? {}, heldOut.length > 0 ? epochReport(state.lines, 'held-out') : undefined);
      record.decision = {
        ratios: decision.weights,
        changes: decision.changes.map((c) => ({ category: c.category, oldWeight: c.oldWeight, newWeight: c.newWeight, lossReference: c.lossReference, lossNow: c.lossNow, signal: c.signal, flags: c.flags, reason: c.reason })),
        notes: decision.notes,
      };
      state.ratios = { ...decision.weights };
    }
    state.epochs.push(record);
    state.epoch = e;
    await options.onEpoch?.(record);
  }
  return { state, steps: done };
}

/** Per-category held-out loss before the first epoch and after the last. */
export function heldOutSummary(lines: readonly SftEpochLoss[]): Record<string, { before: number; after: number; change: number }> {
  return firstToLastLoss(lines.filter((l) => l.kind === 'held-out'));
}

/** PNGs of an SFT job: ratios per epoch, training and held-out loss per category per epoch. */
export function sftEpochCharts(state: SftEpochState, title: string): Record<string, Uint8Array> {
  const categories = [...new Set([...Object.keys(state.ratios), ...state.lines.map((l) => l.category)])].sort();
  const ratiosAt = state.epochs.map((r) => ({ epoch: r.epoch, ratios: r.ratios }));
  const series = (kind: SftEpochLoss['kind']) =>
    categories.map((name) => ({ name, points: state.lines.filter((l) => l.kind === kind && l.category === name).map((l) => [l.epoch, l.loss] as [number, number]) })).filter((s) => s.points.length > 0);
  return {
    'sft-ratios.png': lineChart({ title: `${title}: category ratio per epoch`, xLabel: 'epoch', yLabel: 'ratio', series: categories.map((name) => ({ name, points: ratiosAt.map((r) => [r.epoch, r.ratios[name] ?? 0] as [number, number]) })) }),
    'sft-train-loss.png': lineChart({ title: `${title}: training loss per category`, xLabel: 'epoch', yLabel: 'loss (nats/token)', series: series('train') }),
    'sft-held-out-loss.png': lineChart({ title: `${title}: held-out loss per category`, xLabel: 'epoch', yLabel: 'loss (nats/token)', series: series('held-out') }),
  };
}
