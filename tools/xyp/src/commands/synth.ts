/**
 * `xyp synth selfqa|evolve|analysis|ensemble|merge`: the SFT data synthesis stages of
 * `@xyp/synthesis-stages` in process, against the endpoints of a model registry (`--models`, YAML
 * or JSON, `loadModelRegistry` of `@xyp/llm`). Each generator streams `--input` through the LLM
 * gateway into `--out` (committed chunks under `parts/`, then `sft.jsonl`, `outcomes.jsonl`,
 * `summary.json`); a rerun with the same `--out` resumes after the committed chunks, and with the
 * same `--cache` (a directory or `redis://…`) replays the rest from the response cache. The
 * ensemble scores with a reward model: a running `RewardService` (`--reward host:port`) or a
 * checkpoint loaded in process (`--reward-checkpoint ID|DIR`). Progress on stderr, the summary on
 * stdout (one JSON object with --json). SIGINT stops a run after its committed chunks.
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { Redis } from 'ioredis';
import type { TextReward } from '@xyp/contracts';
import { parseCheckpointRef } from '@xyp/engine';
import { DirectoryResponseCache, LlmGateway, RedisResponseCache, loadModelRegistry, type ResponseCache } from '@xyp/llm';
import { createRewardClient, loadRewardModel, rewardServiceScorer } from '@xyp/reward-serving';
import {
  countInputLines,
  directoryOutput,
  mergeSynthesis,
  readAnalysisExemplars,
  readInputs,
  runAnalysis,
  runEnsemble,
  runEvolve,
  runSelfQa,
  type AnalysisRunConfigInput,
  type EnsembleRunConfigInput,
  type EvolRunConfigInput,
  type MergeSummary,
  type SelfQaRunConfigInput,
  type SynthesisFiles,
  type SynthesisProgress,
  type SynthesisSummary,
} from '@xyp/synthesis-stages';
import { exitWithError, printResult, progress } from '../cli-output';
import { existingFile, fraction, positiveInt, positiveNumber } from '../flags';
import { configuredBackend, configuredStore } from '../engine-runtime';

export type SynthKind = 'selfqa' | 'evolve' | 'analysis' | 'ensemble';

/** Every flag of the generator commands (commander's camel-cased names). */
export interface SynthOptions {
  input: string;
  models: string;
  out: string;
  exemplars?: string;
  reward?: string;
  rewardCheckpoint?: string;
  concurrency?: string;
  chunkSize?: string;
  seed?: string;
  temperature?: string;
  maxTokens?: string;
  cache?: string;
  generator?: string;
  judge?: string;
  ensemble?: string;
  aggregator?: string;
  instructions?: string;
  minSupport?: string;
  jsonSchema?: boolean;
  rounds?: string;
  maxDepth?: string;
  exemplarsPerTopic?: string;
  threshold?: string;
  thresholdQuantile?: string;
  maxSurvivors?: string;
  json?: boolean;
}

export type SynthReport = SynthesisSummary & { files: SynthesisFiles };

function finite(flag: string, value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new Error(`--${flag} must be a number, got ${value}`);
  return n;
}

function integer(flag: string, value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n)) throw new Error(`--${flag} must be an integer, got ${value}`);
  return n;
}

function oneOf(name: string, models: readonly string[], flag: string): string {
  if (!models.includes(name)) throw new Error(`--${flag}: no model named ${name} in --models (models: ${models.join(', ')})`);
  return name;
}

/**
 * The generator's run configuration from the flags: roles default to the registry's first model
 * (the ensemble to every model), everything else to the lib's defaults.
 */
export function synthConfig(kind: SynthKind, o: SynthOptions, models: readonly string[]): SelfQaRunConfigInput | EvolRunConfigInput | AnalysisRunConfigInput | EnsembleRunConfigInput {
  const first = models[0];
  const sampling = {
    ...(o.temperature !== undefined ? { temperature: finite('temperature', o.temperature) } : {}),
    ...(o.maxTokens !== undefined ? { max_tokens: positiveInt('max-tokens', o.maxTokens) } : {}),
    ...(o.seed !== undefined ? { seed: integer('seed', o.seed) } : {}),
  };
  const base = {
    ...(o.concurrency !== undefined ? { concurrency: positiveInt('concurrency', o.concurrency) } : {}),
    ...(o.chunkSize !== undefined ? { chunkSize: positiveInt('chunk-size', o.chunkSize) } : {}),
    ...(o.seed !== undefined ? { seed: integer('seed', o.seed) } : {}),
    ...(Object.keys(sampling).length > 0 ? { sampling } : {}),
  };
  const generator = oneOf(o.generator ?? first, models, 'generator');
  switch (kind) {
    case 'selfqa':
      return {
        ...base,
        models: { generator },
        ...(o.instructions !== undefined ? { instructionsPerDocument: positiveInt('instructions', o.instructions) } : {}),
        ...(o.minSupport !== undefined ? { filter: { minSupport: fraction('min-support', o.minSupport) } } : {}),
        ...(o.jsonSchema ? { jsonSchema: true } : {}),
      };
    case 'evolve':
      return {
        ...base,
        models: { generator, judge: oneOf(o.judge ?? first, models, 'judge') },
        pool: { ...(o.rounds !== undefined ? { maxRounds: positiveInt('rounds', o.rounds) } : {}), ...(o.maxDepth !== undefined ? { maxDepth: positiveInt('max-depth', o.maxDepth) } : {}) },
      };
    case 'analysis':
      return { ...base, models: { generator }, ...(o.exemplarsPerTopic !== undefined ? { exemplarsPerTopic: positiveInt('exemplars-per-topic', o.exemplarsPerTopic) } : {}) };
    case 'ensemble': {
      if (o.threshold !== undefined && o.thresholdQuantile !== undefined) throw new Error('give --threshold or --threshold-quantile, not both');
      const q = o.thresholdQuantile !== undefined ? Number(o.thresholdQuantile) : 0.5;
      if (!(q >= 0 && q <= 1)) throw new Error(`--threshold-quantile must be a number in [0, 1], got ${o.thresholdQuantile}`);
      const threshold = o.threshold !== undefined ? { absolute: finite('threshold', o.threshold) } : { quantile: q };
      const ensemble = (o.ensemble ? o.ensemble.split(',').map((n) => n.trim()).filter(Boolean) : [...models]).map((n) => oneOf(n, models, 'ensemble'));
      return {
        ...base,
        models: { ensemble, aggregator: oneOf(o.aggregator ?? first, models, 'aggregator') },
        selection: { threshold, ...(o.maxSurvivors !== undefined ? { maxSurvivors: positiveInt('max-survivors', o.maxSurvivors) } : {}) },
      };
    }
  }
}

/** `--cache`: a directory, or `redis://…` (keys under `xyp:llm-cache`). */
function openCache(spec: string | undefined): { cache?: ResponseCache; close(): Promise<void> } {
  if (!spec) return { close: async () => undefined };
  if (/^rediss?:\/\//.test(spec)) {
    const redis = new Redis(spec, { maxRetriesPerRequest: 2, lazyConnect: false });
    return { cache: new RedisResponseCache(redis, { prefix: 'xyp:llm-cache' }), close: async () => void (await redis.quit().catch(() => redis.disconnect())) };
  }
  return { cache: new DirectoryResponseCache(resolve(spec)), close: async () => undefined };
}

/** `--reward ADDRESS` (RewardService over gRPC) or `--reward-checkpoint ID|DIR` (in process). */
async function openReward(o: SynthOptions, log: (line: string) => void): Promise<{ reward: TextReward; close(): void }> {
  if ((o.reward === undefined) === (o.rewardCheckpoint === undefined)) throw new Error('synth ensemble needs a reward model: --reward host:port (a RewardService) or --reward-checkpoint ID|DIR, one of the two');
  if (o.reward !== undefined) {
    const client = createRewardClient(o.reward);
    return { reward: rewardServiceScorer(client), close: () => client.close() };
  }
  const ref = o.rewardCheckpoint as string;
  log(`loading reward model ${ref}`);
  const store = parseCheckpointRef(ref).kind === 'store' ? configuredStore() : undefined;
  const served = await loadRewardModel(ref, { store, backend: configuredBackend() });
  return { reward: served.score, close: () => served.dispose() };
}

function progressLine(kind: SynthKind, total: number) {
  return (p: SynthesisProgress) => `synth ${kind}: ${p.inputs}/${total} inputs (kept ${p.kept}, dropped ${p.dropped}, failed ${p.failed}), ${p.items} items${p.skipped ? ' [already committed]' : ''}`;
}

/** Runs one generator command (the action without the exit); `log` gets the progress lines. */
export async function runSynthCommand(kind: SynthKind, o: SynthOptions, options: { log?: (line: string) => void; signal?: AbortSignal } = {}): Promise<SynthReport> {
  const log = options.log ?? progress;
  const input = existingFile('input', o.input);
  const registry = loadModelRegistry(existingFile('models', o.models));
  const config = synthConfig(kind, o, registry.models.map((m) => m.name));
  if (kind === 'analysis' && !o.exemplars) throw new Error('synth analysis needs --exemplars FILE (expert analyses JSONL)');
  const exemplars = kind === 'analysis' ? await readAnalysisExemplars(existingFile('exemplars', o.exemplars as string)) : [];
  let reward: { reward: TextReward; close(): void } | undefined;
  const cache = openCache(o.cache);
  const gateway = new LlmGateway({ models: registry, cache: cache.cache });
  try {
    if (kind === 'ensemble') reward = await openReward(o, log);
    const total = await countInputLines(input);
    const line = progressLine(kind, total);
    const deps = { gateway, output: directoryOutput(resolve(o.out)), signal: options.signal, onProgress: (p: SynthesisProgress) => log(line(p)) };
    log(`synth ${kind}: ${total} input line(s) from ${o.input}, models ${registry.models.map((m) => m.name).join(', ')}, output ${o.out}`);
    const result =
      kind === 'selfqa'
        ? await runSelfQa(readInputs('selfqa', input), config as SelfQaRunConfigInput, deps)
        : kind === 'evolve'
          ? await runEvolve(readInputs('evolve', input), config as EvolRunConfigInput, deps)
          : kind === 'analysis'
            ? await runAnalysis(readInputs('analysis', input), config as AnalysisRunConfigInput, { ...deps, exemplars })
            : await runEnsemble(readInputs('ensemble', input), config as EnsembleRunConfigInput, { ...deps, reward: (reward as { reward: TextReward }).reward });
    return { ...result.summary, files: result.files };
  } finally {
    gateway.close();
    reward?.close();
    await cache.close();
  }
}

function human(r: SynthReport): string {
  const a = r.accounting;
  const reasons = (counts: Record<string, number>) => Object.entries(counts).map(([k, n]) => `${k} ${n}`).join(', ') || 'none';
  const calls = Object.entries(r.gateway).map(([model, s]) => `  ${model}: ${s.answered} calls over HTTP, ${s.cacheHits} cache hits, ${s.promptTokens + s.completionTokens} tokens, $${s.costUsd.toFixed(4)}, mean ${Math.round(s.latencyMs.mean)} ms`);
  return [
    `synth ${r.generator}: ${a.inputs} inputs → ${a.kept} kept (${r.items} SFT items), ${a.dropped} dropped, ${a.failed} failed`,
    `  dropped: ${reasons(a.droppedByReason)}`,
    `  failed: ${reasons(a.failedByReason)}`,
    `  chunks: ${r.chunks.total} of ${r.chunks.chunkSize} (${r.chunks.committedBefore} already committed)`,
    ...calls,
    `  ${r.files.sft}`,
  ].join('\n');
}

function mergeHuman(r: MergeSummary): string {
  return [`synth merge: ${r.items} items from ${r.inputs.length} input(s) → ${r.kept} kept, ${r.exactDuplicates} exact and ${r.nearDuplicates} near duplicates removed`, ...Object.entries(r.byCategory).map(([c, n]) => `  ${c}: ${n.kept}/${n.items}`), `  ${r.files.sft}`].join('\n');
}

function generatorCommand(synth: Command, kind: SynthKind, description: string): Command {
  return synth
    .command(kind)
    .description(description)
    .requiredOption('--input <file>', 'the inputs, JSONL (formats in libs/synthesis-stages/README.md)')
    .requiredOption('--models <file>', 'the model registry, YAML or JSON {models: [{name, baseUrl, model, ...}]}')
    .requiredOption('--out <dir>', 'the output directory (a rerun on it resumes)')
    .option('--concurrency <n>', 'inputs worked on at once (default 32)')
    .option('--chunk-size <n>', 'inputs per committed chunk (default 64)')
    .option('--seed <n>', 'seed of the draws and of the requests (default 0)')
    .option('--temperature <t>', 'sampling temperature (default 0.7)')
    .option('--max-tokens <n>', 'max tokens per reply (default 1024)')
    .option('--cache <dir|redis://...>', 'the response cache: a directory, or a Redis URL')
    .option('--json', 'print one JSON object: the summary and the files');
}

function action(kind: SynthKind) {
  return async (o: SynthOptions) => {
    const controller = new AbortController();
    process.once('SIGINT', () => {
      progress(`synth ${kind}: stopping after the committed chunks (SIGINT)`);
      controller.abort(new Error('interrupted (SIGINT); a rerun with the same --out resumes'));
    });
    try {
      const report = await runSynthCommand(kind, o, { signal: controller.signal });
      printResult(report, o.json === true, human);
      process.exit(0);
    } catch (error) {
      exitWithError(error);
    }
  };
}

/** `xyp synth …` (module comment). */
export function registerSynth(program: Command): void {
  const synth = program.command('synth').description('SFT data synthesis: SelfQA, Evol-Instruct, expert-seeded analysis, the multi-model ensemble with UFRM, and the merge');
  generatorCommand(synth, 'selfqa', 'SelfQA: instructions generated from knowledge documents {id, category, text|data}, answered from the same document, filtered')
    .option('--generator <name>', 'the model that asks and answers (default: the first model)')
    .option('--instructions <n>', 'instructions per document (default 5)')
    .option('--min-support <x>', 'support score an answer needs, in [0, 1) (default 0.5)')
    .option('--json-schema', 'also send the instruction list\'s JSON schema as response_format (vLLM, SGLang, OpenAI; not xyp serve)')
    .action(action('selfqa'));
  generatorCommand(synth, 'evolve', 'Evol-Instruct: seed instructions {id, category, instruction} or chat lines evolved in depth and breadth, eliminated by the paper\'s rules')
    .option('--generator <name>', 'the model that rewrites and answers (default: the first model)')
    .option('--judge <name>', 'the equality judge (default: the first model)')
    .option('--rounds <n>', 'evolution rounds (default 4)')
    .option('--max-depth <n>', 'generations per seed at most (default 4)')
    .action(action('evolve'));
  generatorCommand(synth, 'analysis', 'expert-seeded analysis: topics {id, category, topic, material?} written in the format and depth of expert exemplars')
    .option('--exemplars <file>', 'expert analyses JSONL {id, category, topic, analysis, material?}')
    .option('--generator <name>', 'the model that writes (default: the first model)')
    .option('--exemplars-per-topic <n>', 'exemplars shown per topic (default 3)')
    .action(action('analysis'));
  generatorCommand(synth, 'ensemble', 'the multi-model ensemble: every model answers each query {id, category, query}, the reward model scores, the survivors of the threshold are fused')
    .option('--reward <address>', 'a running RewardService, host:port (gRPC)')
    .option('--reward-checkpoint <id|dir>', 'a reward-model checkpoint, loaded in process (store ID or directory)')
    .option('--ensemble <a,b,c>', 'the answering models (default: every model)')
    .option('--aggregator <name>', 'the fusing model (default: the first model)')
    .option('--threshold <x>', 'an absolute score threshold')
    .option('--threshold-quantile <q>', 'a per-category quantile threshold, in [0, 1] (default 0.5)')
    .option('--max-survivors <n>', 'at most this many answers fused')
    .action(action('ensemble'));
  synth
    .command('merge')
    .description('the join: generator outputs concatenated, exact and near duplicates removed, counted per category')
    .requiredOption('--inputs <dirs...>', 'generator output directories (their sft.jsonl), or sft.jsonl files')
    .requiredOption('--out <dir>', 'the output directory (sft.jsonl, duplicates.jsonl, merge.json)')
    .option('--near-threshold <x>', 'estimated Jaccard similarity of a near duplicate, in (0, 1] (default 0.8)')
    .option('--json', 'print merge.json')
    .action(async (o: { inputs: string[]; out: string; nearThreshold?: string; json?: boolean }) => {
      try {
        const near = o.nearThreshold !== undefined ? positiveNumber('near-threshold', o.nearThreshold) : undefined;
        if (near !== undefined && near > 1) throw new Error(`--near-threshold must be in (0, 1], got ${o.nearThreshold}`);
        const summary = await mergeSynthesis(o.inputs.map((p) => resolve(p)), { out: resolve(o.out), ...(near !== undefined ? { dedup: { nearDuplicateThreshold: near } } : {}) });
        printResult(summary, o.json === true, mergeHuman);
        process.exit(0);
      } catch (error) {
        exitWithError(error);
      }
    });
}
