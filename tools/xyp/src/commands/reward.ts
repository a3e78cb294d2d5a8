import { resolve, join } from 'node:path';
import type { Command } from 'commander';
import { newRunId } from '@xyp/engine';
import { exitWithError, printResult, progress } from '../cli-output';
import { configuredBackend, configuredStore } from '../engine-runtime';
import { alignmentOf, localEngine, preparePairs, pretrainOnPairs, readRecords, trainPhase, writeAlignmentReport, type PhaseSettings, type TrainedPhase } from '../reward/reward-runs';

/** The bundled sample preference pairs (finance and general, every subcategory; `tools/sample-data/generate-preferences.ts`). */
export const SAMPLE_PREFERENCES = resolve(__dirname, '../../../../data/sample/preferences.jsonl');

function int(flag: string, value: string, min = 1): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${flag} must be an integer ≥ ${min}, got ${value}`);
  return n;
}

function number(flag: string, value: string, min = 0, max = Number.POSITIVE_INFINITY): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < min || n > max) throw new Error(`--${flag} must be a number in [${min}, ${max}], got ${value}`);
  return n;
}

function pooling(value: string): 'last' | 'mean' {
  if (value !== 'last' && value !== 'mean') throw new Error(`--pooling must be last or mean, got ${value}`);
  return value;
}

interface TrainOptions {
  sample?: boolean;
  pairs?: string[];
  phase: string;
  init?: string;
  seeds: string;
  seed: string;
  lmSteps?: string;
  ablation?: boolean;
  steps: string;
  finetuneSteps?: string;
  batch: string;
  lr: string;
  layers: string;
  width: string;
  heads: string;
  context: string;
  dropout: string;
  pooling: string;
  wBt: string;
  wIrl: string;
  wCl: string;
  tau: string;
  margin?: boolean;
  center: string;
  evalEvery: string;
  testFraction: string;
  splitSeed: string;
  defaultSet?: string;
  defaultCategory?: string;
  runId?: string;
  out?: string;
  json?: boolean;
}

interface EvaluateOptions {
  model: string[];
  variant?: string[];
  pairs: string[];
  defaultSet?: string;
  defaultCategory?: string;
  out?: string;
  json?: boolean;
}

const rate = (x: { mean: number; std: number } | undefined) => (x ? `${(100 * x.mean).toFixed(1)} ± ${(100 * x.std).toFixed(1)}%` : '—');

/**
 * `xyp reward train` and `xyp reward evaluate`: the UFRM reward model, locally. `train` prepares the
 * pairs (any common layout; validated, de-duplicated, split by prompt hash), trains phase 1
 * (`reward.train#pretrain`, the general pairs) and phase 2 (`reward.train#finetune`, the finance
 * pairs, from phase 1's checkpoint), and scores its held-out split; `evaluate` scores any pairs file.
 */
export function registerReward(reward: Command): void {
  reward
    .command('train')
    .description('Train the UFRM reward model in two phases (general, then finance) on the local engine; prints the model ID and per-phase figures')
    .option('--sample', 'train on the bundled sample pairs (data/sample/preferences.jsonl)')
    .option('--pairs <files...>', 'preference JSONL files: {prompt, chosen, rejected} (strings or chat lists), HH-RLHF {chosen, rejected} dialogues, or message lists with a shared prefix')
    .option('--phase <phase>', 'both (pretrain, then finetune from it), pretrain, or finetune (needs --init)', 'both')
    .option('--init <checkpoint>', 'start from this reward model or LM checkpoint (ID or directory)')
    .option('--seeds <n>', 'train this many seeds (1, 2, …) and report mean ± std', '1')
    .option('--lm-steps <n>', 'first warm a fresh model up as a causal LM on the training pairs\' texts (never the held-out ones) for n steps, as the seed\'s reward model starts from a pretrained LLM')
    .option('--seed <n>', 'the first seed', '1')
    .option('--ablation', 'also train the BT-only single-phase baseline on the same pairs with the same step budget')
    .option('--steps <n>', 'optimiser steps of phase 1 (and of phase 2 unless --finetune-steps)', '150')
    .option('--finetune-steps <n>', 'optimiser steps of phase 2')
    .option('--batch <n>', 'pairs per step', '16')
    .option('--lr <x>', 'peak learning rate', '1e-3')
    .option('--layers <n>', 'transformer layers (fresh model)', '2')
    .option('--width <n>', 'model width (fresh model)', '64')
    .option('--heads <n>', 'attention heads (fresh model)', '4')
    .option('--context <n>', 'tokens (bytes) per sequence; longer pairs keep their last tokens', '256')
    .option('--dropout <x>', 'dropout of a fresh model (the SimCSE views differ by it)', '0.1')
    .option('--pooling <how>', 'how the reward reads a sequence: last (its last token\'s hidden state) or mean (the mean over its tokens)', 'last')
    .option('--w-bt <x>', 'Bradley-Terry weight', '1')
    .option('--w-irl <x>', 'inverse-RL weight', '0.5')
    .option('--w-cl <x>', 'SimCSE contrastive weight', '0.1')
    .option('--tau <x>', 'SimCSE temperature', '0.1')
    .option('--margin', 'subtract each pair\'s margin inside the BT term')
    .option('--center <x>', 'reward-centering coefficient', '0')
    .option('--eval-every <n>', 'held-out accuracy on the curves every n steps', '25')
    .option('--test-fraction <x>', 'share of prompts held out', '0.2')
    .option('--split-seed <n>', 'salt of the prompt-hash split', '0')
    .option('--default-set <set>', 'finance or general, for pairs that name neither a set nor a known subcategory')
    .option('--default-category <c>', 'category of pairs that name none')
    .option('--run-id <id>', 'run id of the checkpoints (default: rm-<time>-<random>)')
    .option('--out <dir>', 'where the prepared pairs and the report go (default: .xyp/reward/<runId>)')
    .option('--json', 'print one JSON object')
    .action(async (o: TrainOptions) => {
      try {
        const inputs = [...(o.sample ? [SAMPLE_PREFERENCES] : []), ...(o.pairs ?? [])];
        if (inputs.length === 0) throw new Error('give --sample or --pairs FILE…');
        if (!['both', 'pretrain', 'finetune'].includes(o.phase)) throw new Error(`--phase must be both, pretrain or finetune, got ${o.phase}`);
        if (o.phase === 'finetune' && !o.init) throw new Error('--phase finetune needs --init (the phase-1 checkpoint)');
        if (o.defaultSet && o.defaultSet !== 'finance' && o.defaultSet !== 'general') throw new Error(`--default-set must be finance or general, got ${o.defaultSet}`);
        const runId = o.runId ?? newRunId('rm');
        const out = resolve(o.out ?? join('.xyp', 'reward', runId));
        const steps = int('steps', o.steps);
        const settings: PhaseSettings = {
          steps,
          batchSize: int('batch', o.batch),
          lr: number('lr', o.lr, 1e-9),
          architecture: { layers: int('layers', o.layers), width: int('width', o.width), heads: int('heads', o.heads), context: int('context', o.context, 8) },
          dropout: number('dropout', o.dropout, 0, 0.9),
          pooling: pooling(o.pooling),
          weights: { bt: number('w-bt', o.wBt), irl: number('w-irl', o.wIrl), cl: number('w-cl', o.wCl), tau: number('tau', o.tau, 1e-6), margin: Boolean(o.margin), center: number('center', o.center) },
          evalEvery: int('eval-every', o.evalEvery),
        };
        const finetuneSteps = o.finetuneSteps ? int('finetune-steps', o.finetuneSteps) : steps;
        const prepared = await preparePairs(
          inputs,
          join(out, 'pairs'),
          { testFraction: number('test-fraction', o.testFraction, 0, 0.9), seed: int('split-seed', o.splitSeed, 0), defaultSet: o.defaultSet as 'finance' | 'general' | undefined, defaultCategory: o.defaultCategory },
          progress,
        );
        const c = prepared.counts;
        progress(`pairs: ${c.lines} lines, ${c.accepted} accepted (${c.train} train: ${prepared.lines.pretrain} pretrain, ${prepared.lines.finetune} finetune; ${c.test} held out), ${c.rejected.total} rejected (${c.duplicates.exact} duplicates, ${c.duplicates.near} near duplicates) → ${out}`);
        if (c.train === 0) throw new Error(`no training pairs (${c.rejected.total} of ${c.lines} lines rejected; see ${prepared.files.rejects})`);
        const heldOut = c.test > 0 ? prepared.files.test : undefined;
        const store = configuredStore();
        const engine = localEngine(store, configuredBackend(), progress);
        const firstSeed = int('seed', o.seed, 0);
        const seeds = Array.from({ length: int('seeds', o.seeds) }, (_, i) => firstSeed + i);
        const trained: TrainedPhase[] = [];
        const finals: { model: string; variant: string }[] = [];
        for (const seed of seeds) {
          const suffix = seeds.length > 1 ? `-s${seed}` : '';
          let current = o.init;
          if (o.lmSteps && !o.init) {
            progress(`seed ${seed}: causal-LM warm-up on the training pairs' texts`);
            const lm = await pretrainOnPairs(engine, store, { runId: seeds.length > 1 ? `${runId}-s${seed}` : runId, seed }, prepared.files.train, join(out, 'pairs'), { ...settings, lmSteps: int('lm-steps', o.lmSteps) });
            progress(`seed ${seed}: LM ${lm.checkpoint}, loss ${lm.metrics.initialLoss.toFixed(3)} → ${lm.metrics.finalLoss.toFixed(3)}`);
            current = lm.checkpoint;
          }
          const runPretrain = o.phase !== 'finetune' && prepared.lines.pretrain > 0;
          const runFinetune = o.phase !== 'pretrain' && prepared.lines.finetune > 0;
          if (!runPretrain && !runFinetune) throw new Error(`no pairs for --phase ${o.phase}: ${prepared.lines.pretrain} pretrain and ${prepared.lines.finetune} finetune pairs`);
          if (runPretrain) {
            progress(`seed ${seed}: phase 1 (pretrain) on ${prepared.lines.pretrain} pairs`);
            const p = await trainPhase(engine, store, { runId, instance: `pretrain${suffix}`, phase: 'pretrain', variant: 'ufrm', seed, init: current }, { train: prepared.files.pretrain, heldOut }, settings);
            trained.push(p);
            current = p.checkpoint;
          }
          if (runFinetune) {
            progress(`seed ${seed}: phase 2 (finetune) on ${prepared.lines.finetune} pairs${current ? `, from ${current}` : ''}`);
            const p = await trainPhase(engine, store, { runId, instance: `finetune${suffix}`, phase: 'finetune', variant: 'ufrm', seed, init: current }, { train: prepared.files.finetune, heldOut }, { ...settings, steps: finetuneSteps });
            trained.push(p);
            current = p.checkpoint;
          }
          finals.push({ model: current as string, variant: 'ufrm' });
          if (o.ablation) {
            const budget = (runPretrain ? steps : 0) + (runFinetune ? finetuneSteps : 0);
            progress(`seed ${seed}: BT-only single phase on ${c.train} pairs, ${budget} steps`);
            const b = await trainPhase(
              engine,
              store,
              { runId, instance: `bt-only${suffix}`, phase: 'single', variant: 'bt-only', seed, init: o.lmSteps && !o.init ? `${seeds.length > 1 ? `${runId}-s${seed}` : runId}/reward.lm-warmup` : o.init },
              { train: prepared.files.train, heldOut },
              { ...settings, steps: budget, weights: { bt: 1, irl: 0, cl: 0, tau: settings.weights.tau, margin: settings.weights.margin, center: 0 } },
            );
            trained.push(b);
            finals.push({ model: b.checkpoint, variant: 'bt-only' });
          }
        }
        let evaluation: Awaited<ReturnType<typeof writeAlignmentReport>> | undefined;
        if (heldOut) {
          const records = await readRecords(heldOut);
          evaluation = await writeAlignmentReport(await alignmentOf(engine, finals, records, progress), join(out, 'report'));
        }
        const model = finals[0].model;
        const result = {
          model,
          runId,
          models: finals,
          pairs: { lines: c.lines, accepted: c.accepted, rejected: c.rejected.total, rejectedByReason: c.rejected.byReason, duplicates: c.duplicates, train: c.train, test: c.test, pretrain: prepared.lines.pretrain, finetune: prepared.lines.finetune },
          heldOut: heldOut ?? null,
          rejects: prepared.files.rejects,
          phases: trained,
          evaluation: evaluation ? { variants: evaluation.variants, files: evaluation.files } : null,
        };
        printResult(result, Boolean(o.json), (r: typeof result) =>
          [
            `model ${r.model}`,
            ...r.phases.map((p) => `  ${p.variant} ${p.phase} seed ${p.seed}: ${p.checkpoint} — ${p.pairs} pairs, ${p.metrics.steps} steps, held-out accuracy ${fmt(p.metrics.heldOutAccuracyBefore)} → ${fmt(p.metrics.heldOutAccuracyAfter)}`),
            ...(evaluation ? ['', evaluation.markdown] : []),
            `held-out pairs: ${r.heldOut ?? 'none'}`,
          ].join('\n'),
        );
      } catch (error) {
        exitWithError(error);
      }
    });

  reward
    .command('evaluate')
    .description('Alignment rate (share of pairs with score(chosen) > score(rejected)) of reward models on a preference file, per subcategory, with 95% intervals')
    .requiredOption('--model <ids...>', 'reward-model checkpoints (IDs or directories)')
    .option('--variant <names...>', 'a name per --model; models of one name are seeds of one method (mean ± std)')
    .requiredOption('--pairs <files...>', 'preference JSONL in any layout `xyp reward train` reads; every valid line is scored (no split, no de-duplication)')
    .option('--default-set <set>', 'finance or general, for pairs that name neither')
    .option('--default-category <c>', 'category of pairs that name none')
    .option('--out <dir>', 'where alignment.json/.md/.png go (default: .xyp/reward/eval-<time>)')
    .option('--json', 'print one JSON object')
    .action(async (o: EvaluateOptions) => {
      try {
        if (o.variant && o.variant.length !== o.model.length) throw new Error(`--variant: give one name per --model (${o.model.length}), got ${o.variant.length}`);
        if (o.defaultSet && o.defaultSet !== 'finance' && o.defaultSet !== 'general') throw new Error(`--default-set must be finance or general, got ${o.defaultSet}`);
        const out = resolve(o.out ?? join('.xyp', 'reward', newRunId('eval')));
        const prepared = await preparePairs(o.pairs, join(out, 'pairs'), { testFraction: 0, seed: 0, defaultSet: o.defaultSet as 'finance' | 'general' | undefined, defaultCategory: o.defaultCategory, dedup: false }, progress);
        const c = prepared.counts;
        if (c.accepted === 0) throw new Error(`no valid pairs in ${o.pairs.join(', ')} (${c.rejected.total} of ${c.lines} lines rejected; see ${prepared.files.rejects})`);
        if (c.rejected.total > 0) progress(`${c.rejected.total} of ${c.lines} lines rejected (see ${prepared.files.rejects})`);
        const records = await readRecords(prepared.files.train);
        const store = configuredStore();
        const engine = localEngine(store, configuredBackend(), progress);
        const models = o.model.map((model, i) => ({ model, variant: o.variant?.[i] ?? model }));
        const results = await alignmentOf(engine, models, records, progress);
        const report = await writeAlignmentReport(results, out);
        const first = results[0];
        const result = {
          model: first.model,
          pairs: first.report.overall.pairs,
          lines: c.lines,
          rejected: c.rejected.total,
          rejectedByReason: Object.fromEntries(Object.entries(c.rejected.byReason).filter(([, n]) => n > 0)),
          rejects: prepared.files.rejects,
          truncated: first.truncated,
          alignmentRate: { rate: first.report.overall.rate, ci95: first.report.overall.ci95, aligned: first.report.overall.aligned, ties: first.report.overall.ties },
          bySet: first.report.bySet,
          categories: first.report.categories,
          models: results.map((r) => ({ model: r.model, variant: r.variant, pairs: r.report.overall.pairs, alignmentRate: { rate: r.report.overall.rate, ci95: r.report.overall.ci95 } })),
          variants: report.variants,
          files: report.files,
        };
        printResult(result, Boolean(o.json), (r: typeof result) =>
          [
            `${r.model}: ${r.alignmentRate.aligned}/${r.pairs} pairs aligned, ${(100 * r.alignmentRate.rate).toFixed(1)}% (95% CI ${(100 * r.alignmentRate.ci95[0]).toFixed(1)}–${(100 * r.alignmentRate.ci95[1]).toFixed(1)}%)`,
            ...r.variants.map((v) => `  ${v.name} (${v.seeds} seed${v.seeds > 1 ? 's' : ''}): overall ${rate(v.overall)}, finance ${rate(v.finance)}, general ${rate(v.general)}`),
            '',
            report.markdown,
          ].join('\n'),
        );
      } catch (error) {
        exitWithError(error);
      }
    });
}

function fmt(x: number | undefined): string {
  return x === undefined || Number.isNaN(x) ? '—' : `${(100 * x).toFixed(1)}%`;
}
