/**
 * The reward stages run locally, without the platform: what `xyp reward train` and
 * `xyp reward evaluate` do. The same steps as the recipe's reward.prepare → reward.train#pretrain →
 * reward.train#finetune → reward.evaluate instances, and the same checkpoint IDs
 * (`<runId>/reward.train#<instance>`), on the configured store.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PreferenceRecord, type EngineJob, type RewardModelSpecInput, type UfrmWeightsInput } from '@xyp/contracts';
import { LocalEngine } from '@xyp/local-engine';
import { PREFERENCE_COLLECTIONS, readLines, writePreferenceCollections, type IngestCounts, type PreferenceCollection } from '@xyp/preference-data';
import type { ArtifactStore } from '@xyp/storage';
import { alignmentByCategory, alignmentChart, alignmentTables, summarizeSeeds, type AlignmentReport } from '@xyp/ufrm';
import type { BackendOptions } from '@xyp/engine';
import { commitCheckpoint } from '../engine-runtime';

export interface PreparedPairs {
  counts: IngestCounts;
  /** Local JSONL files of each collection (`pretrain`, `finetune`, `train`, `test`, `rejects`). */
  files: Record<PreferenceCollection, string>;
  lines: Record<PreferenceCollection, number>;
}

/** reward.prepare: every input file → the collections, written as JSONL files under `dir`. */
export async function preparePairs(
  inputs: readonly string[],
  dir: string,
  settings: { testFraction: number; seed: number; defaultSet?: 'finance' | 'general'; defaultCategory?: string; dedup?: boolean },
  onProgress?: (line: string) => void,
): Promise<PreparedPairs> {
  await mkdir(dir, { recursive: true });
  // Each collection streams to its file as the ingest goes: memory stays bounded by the ingest's
  // signatures, not by the size of the input.
  const files = {} as Record<PreferenceCollection, string>;
  const lines = {} as Record<PreferenceCollection, number>;
  const streams = {} as Record<PreferenceCollection, WriteStream>;
  for (const collection of PREFERENCE_COLLECTIONS) {
    files[collection] = join(dir, `${collection}.jsonl`);
    lines[collection] = 0;
    streams[collection] = createWriteStream(files[collection]);
  }
  let counts: IngestCounts;
  try {
    counts = await writePreferenceCollections({
      inputs: inputs.map((file) => ({ name: file, lines: readLines(file) })),
      testFraction: settings.testFraction,
      seed: settings.seed,
      defaults: { ...(settings.defaultSet ? { set: settings.defaultSet } : {}), ...(settings.defaultCategory ? { category: settings.defaultCategory } : {}) },
      ...(settings.dedup === false ? { dedup: false } : {}),
      progressEvery: 5000,
      onProgress: (p) => onProgress?.(`read ${p.lines} lines (${(p.bytes / 1e6).toFixed(1)} MB): ${p.accepted} pairs, ${p.rejected} rejected`),
      write: async (collection, line) => {
        lines[collection] += 1;
        if (!streams[collection].write(`${line}\n`)) await once(streams[collection], 'drain');
      },
    });
  } finally {
    await Promise.all(PREFERENCE_COLLECTIONS.map((c) => new Promise<void>((done, fail) => streams[c].end((error?: Error | null) => (error ? fail(error) : done())))));
  }
  return { counts, files, lines };
}

export interface PhaseSettings {
  steps: number;
  batchSize: number;
  lr: number;
  architecture: { layers: number; width: number; heads: number; context: number };
  dropout: number;
  /** How the reward reads a sequence (`RewardModelSpec.pooling`); unset: `last`, or the init checkpoint's. */
  pooling?: 'last' | 'mean';
  weights: UfrmWeightsInput;
  evalEvery: number;
}

export interface TrainedPhase {
  phase: string;
  variant: string;
  seed: number;
  checkpoint: string;
  pairs: number;
  metrics: Record<string, number>;
}

/** One reward.train instance on the local engine, its checkpoint committed. */
export async function trainPhase(
  engine: LocalEngine,
  store: ArtifactStore,
  at: { runId: string; instance: string; phase: string; variant: string; seed: number; init?: string },
  data: { train: string; heldOut?: string },
  settings: PhaseSettings,
): Promise<TrainedPhase> {
  const spec: RewardModelSpecInput = {
    runId: at.runId,
    stage: `reward.train#${at.instance}`,
    steps: settings.steps,
    batchSize: settings.batchSize,
    seed: at.seed,
    init: at.init,
    architecture: settings.architecture,
    dropout: settings.dropout,
    ...(settings.pooling ? { pooling: settings.pooling } : {}),
    weights: settings.weights,
    evalEvery: settings.evalEvery,
    maxLength: settings.architecture.context,
    phase: at.phase,
    optimizer: { lr: settings.lr, warmupSteps: Math.min(10, Math.floor(settings.steps / 10)), weightDecay: 0.01, clipNorm: 1 },
    data: { jsonl: data.train, ...(data.heldOut ? { heldOut: data.heldOut } : {}) },
  };
  const job = (await engine.trainRewardModel(spec)) as Extract<EngineJob, { engine: 'local' }>;
  job.manifest.result = { ...job.manifest.result, checkpoint: job.checkpoint, phase: at.phase, variant: at.variant, seed: at.seed };
  await commitCheckpoint(store, job);
  return { phase: at.phase, variant: at.variant, seed: at.seed, checkpoint: job.checkpoint, pairs: job.metrics.pairs, metrics: job.metrics };
}

/**
 * A causal-LM warm-up for a fresh reward model (the seed's reward model starts from a pretrained
 * LLM): the texts of the training pairs only — each conversation with its chosen and its rejected
 * response — never the held-out ones. Returns the committed LM checkpoint to start phase 1 from.
 */
export async function pretrainOnPairs(engine: LocalEngine, store: ArtifactStore, at: { runId: string; seed: number }, trainFile: string, dir: string, settings: PhaseSettings & { lmSteps: number }): Promise<{ checkpoint: string; metrics: Record<string, number> }> {
  const corpus = join(dir, 'pretrain-corpus.jsonl');
  const out = createWriteStream(corpus);
  let n = 0;
  for (const record of await readRecords(trainFile)) {
    const conversation = record.prompt.map((t) => `${t.role}: ${t.content}\n`).join('');
    for (const response of [record.chosen[0].content, record.rejected[0].content]) {
      if (!out.write(`${JSON.stringify({ id: `${record.id}-${n++}`, text: `${conversation}assistant: ${response}`, category: record.category })}\n`)) await once(out, 'drain');
    }
  }
  await new Promise<void>((done) => out.end(done));
  const job = (await engine.trainCausalLm({
    runId: at.runId,
    stage: 'reward.lm-warmup',
    steps: settings.lmSteps,
    batchSize: settings.batchSize,
    seed: at.seed,
    architecture: settings.architecture,
    optimizer: { lr: 2e-3, warmupSteps: Math.min(20, Math.floor(settings.lmSteps / 10)), weightDecay: 0.1, clipNorm: 1 },
    data: { jsonl: corpus },
  })) as Extract<EngineJob, { engine: 'local' }>;
  await commitCheckpoint(store, job);
  return { checkpoint: job.checkpoint, metrics: job.metrics };
}

/** Reads `PreferenceRecord` lines (a prepared collection). */
export async function readRecords(file: string): Promise<PreferenceRecord[]> {
  const records: PreferenceRecord[] = [];
  for await (const line of readLines(file)) if (line.trim() !== '') records.push(PreferenceRecord.parse(JSON.parse(line)));
  return records;
}

export interface ModelAlignment {
  model: string;
  variant: string;
  report: AlignmentReport;
  truncated: number;
}

/** Scores `records` with each model and computes its alignment report. */
export async function alignmentOf(engine: LocalEngine, models: readonly { model: string; variant: string }[], records: readonly PreferenceRecord[], onProgress?: (line: string) => void): Promise<ModelAlignment[]> {
  const out: ModelAlignment[] = [];
  for (const { model, variant } of models) {
    const { scored, truncated } = await engine.scorePreferences(model, records, {
      onProgress: (done, total) => {
        if (done === total || done % 512 === 0) onProgress?.(`scored ${done}/${total} pairs with ${model}`);
      },
    });
    out.push({ model, variant, truncated, report: alignmentByCategory(scored) });
  }
  return out;
}

/** The seed's two tables and the chart of several models grouped by variant; files written under `dir`. */
export async function writeAlignmentReport(results: readonly ModelAlignment[], dir: string): Promise<{ markdown: string; json: unknown; files: string[]; variants: { name: string; seeds: number; overall: { mean: number; std: number }; finance?: { mean: number; std: number }; general?: { mean: number; std: number } }[] }> {
  const groups = new Map<string, AlignmentReport[]>();
  for (const r of results) groups.set(r.variant, [...(groups.get(r.variant) ?? []), r.report]);
  const variants = [...groups].map(([name, seeds]) => ({ name, seeds }));
  const tables = alignmentTables(variants);
  await mkdir(dir, { recursive: true });
  const files = [join(dir, 'alignment.json'), join(dir, 'alignment.md'), join(dir, 'alignment.png')];
  await writeFile(files[0], `${JSON.stringify(tables.json, null, 2)}\n`);
  await writeFile(files[1], tables.markdown);
  await writeFile(files[2], alignmentChart(variants));
  return {
    markdown: tables.markdown,
    json: tables.json,
    files,
    variants: variants.map(({ name, seeds }) => {
      const s = summarizeSeeds(seeds);
      const pick = (x: { mean: number; std: number } | undefined) => (x ? { mean: x.mean, std: x.std } : undefined);
      return { name, seeds: seeds.length, overall: { mean: s.overall.mean, std: s.overall.std }, finance: pick(s.bySet.finance?.macro), general: pick(s.bySet.general?.macro) };
    }),
  };
}

export function localEngine(store: ArtifactStore, backend: BackendOptions, onProgress: (line: string) => void): LocalEngine {
  return new LocalEngine({ store, backend, onProgress, progressEvery: 25 });
}
