/**
 * The four RLHF stages as the workers run them, minus the platform: each takes checkpoint IDs and
 * inputs, runs the same runner (`runCiFilter`, `LocalEngine.runPpo`, `runEvaluation`,
 * `improveRound`) with the same payload defaults (`RlhfCiFilterPayload`, `RlhfPpoPayload`,
 * `RlhfEvaluatePayload`, `RlhfImprovePayload` of `@xyp/contracts`), and returns the files the
 * worker commits (name → body) with the worker's result. The caller decides where the files go
 * (`xyp rlhf` writes them to a directory) and commits a PPO checkpoint itself.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Registry } from 'prom-client';
import {
  RlhfCiFilterPayload,
  RlhfEvaluatePayload,
  RlhfImprovePayload,
  RlhfPpoPayload,
  SUBCATEGORIES,
  type EngineJob,
} from '@xyp/contracts';
import type { BackendOptions } from '@xyp/engine';
import { openPolicyScorer, openTextReward, type JobControl, type LocalEngine } from '@xyp/local-engine';
import { gainChart, peiLoopSummary, peiRoundTable, ratioTrajectoryChart, winTieLossChart, type CiFilterResult, type PeiRound, type WinTieLoss } from '@xyp/rlhf';
import type { z } from 'zod';
import { ciFilterCharts, ciFilterMarkdown, runCiFilter } from './ci-filter';
import { annotationExport, evaluationMarkdown, runEvaluation, type EvaluationOutput, type HumanVerdict } from './evaluate';
import { improveRound, type ImproveOutput } from './improve';
import { judgeEndpointModel, llmPairJudge, type JudgeModel } from './llm-judge';
import { drawPrompts, ppoLogChart } from './ppo';
import { promptsJsonl, type ReadPrompts, type RlhfPrompt } from './prompts';

/** Display names of the subdomains for the charts (ASCII). */
export const SUBDOMAIN_LABELS: Readonly<Record<string, string>> = Object.fromEntries(SUBCATEGORIES.map((s) => [s.id, s.label]));

/** A stage's files: name → body, as the worker commits them. */
export type StageFiles = Record<string, string | Uint8Array>;

type Keys = 'runId' | 'instance';
export type CiFilterSettings = Omit<z.output<typeof RlhfCiFilterPayload>, Keys | 'policyManifestKey' | 'rewardManifestKey' | 'promptsKey'>;
export type PpoSettings = Omit<z.output<typeof RlhfPpoPayload>, Keys | 'policyManifestKey' | 'referenceManifestKey' | 'rewardManifestKey' | 'promptsKey' | 'ratiosKey'>;
export type EvaluateSettings = Omit<z.output<typeof RlhfEvaluatePayload>, Keys | 'policyManifestKey' | 'baselineManifestKey' | 'rewardManifestKey' | 'promptsKey' | 'humanKey'>;
export type ImproveSettings = Omit<z.output<typeof RlhfImprovePayload>, Keys | 'evaluationKey' | 'ratiosKey' | 'alignmentKey' | 'historyKey'>;

const DEFAULTS_RUN = 'stage-defaults';

function strip<T extends Record<string, unknown>>(value: T, keys: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = { ...value };
  for (const k of [...keys, 'runId', 'instance']) delete out[k];
  return out;
}

/** The payload defaults of rlhf.ci-filter, with `overrides` validated by the same schema. */
export function ciFilterSettings(overrides: Partial<CiFilterSettings> = {}): CiFilterSettings {
  const keys = ['policyManifestKey', 'rewardManifestKey', 'promptsKey'];
  return strip(RlhfCiFilterPayload.parse({ runId: DEFAULTS_RUN, policyManifestKey: '-', rewardManifestKey: '-', promptsKey: '-', ...defined(overrides) }), keys) as CiFilterSettings;
}

export function ppoSettings(overrides: Partial<PpoSettings> = {}): PpoSettings {
  const keys = ['policyManifestKey', 'referenceManifestKey', 'rewardManifestKey', 'promptsKey', 'ratiosKey'];
  return strip(RlhfPpoPayload.parse({ runId: DEFAULTS_RUN, policyManifestKey: '-', referenceManifestKey: '-', rewardManifestKey: '-', promptsKey: '-', ratiosKey: '-', ...defined(overrides) }), keys) as PpoSettings;
}

export function evaluateSettings(overrides: Partial<EvaluateSettings> = {}): EvaluateSettings {
  const keys = ['policyManifestKey', 'baselineManifestKey', 'rewardManifestKey', 'promptsKey', 'humanKey'];
  return strip(RlhfEvaluatePayload.parse({ runId: DEFAULTS_RUN, policyManifestKey: '-', baselineManifestKey: '-', rewardManifestKey: '-', promptsKey: '-', ...defined(overrides) }), keys) as EvaluateSettings;
}

export function improveSettings(overrides: Partial<ImproveSettings> = {}): ImproveSettings {
  const keys = ['evaluationKey', 'ratiosKey', 'alignmentKey', 'historyKey'];
  return strip(RlhfImprovePayload.parse({ runId: DEFAULTS_RUN, evaluationKey: '-', ratiosKey: '-', alignmentKey: '-', historyKey: '-', ...defined(overrides) }), keys) as ImproveSettings;
}

function defined<T extends Record<string, unknown>>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

const jsonText = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;

// ---------------------------------------------------------------------------------------------
// rlhf.ci-filter

export interface CiFilterStageInput {
  policy: string;
  /** The UFRM reward model's checkpoint ID (or directory). */
  reward: string;
  /** The prompts as `readRlhfPrompts` read them (with the same `subdomainPrefix`). */
  read: ReadPrompts;
  /** The prompt file, for messages. */
  source: string;
  settings: CiFilterSettings;
  backend?: BackendOptions;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number, what: string) => void | Promise<void>;
}

export interface CiFilterStageResult {
  lines: number;
  prompts: number;
  rejected: number;
  kept: number;
  droppedByRule: Record<string, number>;
  bySubdomain: Record<string, Record<string, number>>;
  ratios: Record<string, number>;
  kl: number;
  thresholds: Record<string, unknown>;
}

export async function ciFilterStage(engine: LocalEngine, input: CiFilterStageInput): Promise<{ result: CiFilterStageResult; kept: RlhfPrompt[]; dropped: CiFilterResult['dropped']; files: StageFiles }> {
  const { read, settings } = input;
  if (read.prompts.length === 0) {
    throw new Error(`rlhf.ci-filter: prompts: ${input.source}: no prompt${settings.subdomainPrefix ? ` with a subdomain starting "${settings.subdomainPrefix}"` : ''} (${read.lines} lines, ${read.rejects.length} rejected, ${read.skipped} of other subdomains)`);
  }
  const reward = await openTextReward(input.reward, engine.store, input.backend);
  try {
    const out = await runCiFilter(engine, {
      policy: input.policy,
      reward: reward.reward,
      prompts: read.prompts,
      samples: settings.samples,
      maxTokens: settings.maxTokens,
      temperature: settings.temperature,
      seed: settings.seed,
      filter: { minStd: settings.minStd, upper: settings.upper, lower: settings.lower, keep: { fraction: settings.keepFraction }, seed: settings.seed },
      signal: input.signal,
      onProgress: input.onProgress,
    });
    const ratios = { ratios: out.ratios, kl: settings.klStart };
    const files: StageFiles = {
      'prompts.jsonl': promptsJsonl(out.kept),
      'ratios.json': jsonText(ratios),
      'history.json': jsonText([{ round: 0, ratios: out.ratios, kl: settings.klStart }]),
      'ci-filter.json': jsonText({ ...out.result, scored: out.scored.map(({ responses: _r, ...s }) => s) }),
      'ci-filter.md': ciFilterMarkdown(out.result),
      'rejects.jsonl': read.rejects.map((r) => JSON.stringify(r)).join('\n') + (read.rejects.length ? '\n' : ''),
      ...ciFilterCharts(out.scored),
    };
    const droppedByRule: Record<string, number> = {};
    for (const d of out.result.dropped) droppedByRule[d.rule] = (droppedByRule[d.rule] ?? 0) + 1;
    return {
      result: {
        lines: read.lines,
        prompts: read.prompts.length,
        rejected: read.rejects.length,
        kept: out.kept.length,
        droppedByRule,
        bySubdomain: out.result.bySubdomain as unknown as Record<string, Record<string, number>>,
        ratios: out.ratios,
        kl: settings.klStart,
        thresholds: out.result.thresholds as unknown as Record<string, unknown>,
      },
      kept: out.kept,
      dropped: out.result.dropped,
      files,
    };
  } finally {
    reward.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// rlhf.ppo

export interface PpoStageInput {
  runId: string;
  /** The stage instance, e.g. `rlhf.ppo#round-1`: the checkpoint is `<runId>/<stage>`. */
  stage: string;
  policy: string;
  reference: string;
  rewardModel: string;
  /** The filtered prompts (rlhf.ci-filter's `prompts.jsonl`). */
  prompts: readonly RlhfPrompt[];
  ratios: Record<string, number>;
  kl: number;
  settings: PpoSettings;
  /** Where the drawn prompts file (`drawn.jsonl`) is written for the engine. */
  workDir: string;
  control?: JobControl;
}

export interface PpoStageOutput {
  job: Extract<EngineJob, { engine: 'local' }>;
  /** Per PPO round: mean reward, KL, entropy, … (`ppo-log.jsonl`). */
  log: Record<string, unknown>[];
  draws: Record<string, number>;
  files: StageFiles;
}

/** The round's PPO; the returned job's checkpoint is not committed (`commitManifest` of the job's manifest does). */
export async function ppoStage(engine: LocalEngine, input: PpoStageInput): Promise<PpoStageOutput> {
  const s = input.settings;
  if (input.prompts.length === 0) throw new Error(`${input.stage}: prompts: no prompt`);
  const drawn = drawPrompts(input.prompts, input.ratios, s.rounds * s.promptsPerRound, s.seed);
  const drawnFile = join(input.workDir, 'drawn.jsonl');
  await writeFile(drawnFile, drawn.draws.map((p) => JSON.stringify({ prompt: p.prompt })).join('\n') + '\n');
  const job = await engine.runPpo(
    {
      runId: input.runId,
      stage: input.stage,
      policy: input.policy,
      reference: input.reference,
      rewardModel: input.rewardModel,
      data: { jsonl: drawnFile, ordered: true },
      rounds: s.rounds,
      promptsPerRound: s.promptsPerRound,
      samplesPerPrompt: s.samplesPerPrompt,
      maxTokens: s.maxTokens,
      klCoef: input.kl,
      klEstimator: s.klEstimator,
      maxKl: s.maxKl,
      temperature: s.temperature,
      epochs: s.epochs,
      seed: s.seed,
      optimizer: { lr: s.lr, warmupSteps: 0, weightDecay: 0, clipNorm: 1 },
    },
    input.control ?? {},
  );
  if (job.engine !== 'local') throw new Error(`${input.stage}: the local engine returned a cluster job`);
  const log = ((job.manifest.result as { rounds?: unknown[] }).rounds ?? []) as Record<string, unknown>[];
  job.manifest.result = { ...job.manifest.result, ratios: input.ratios, kl: input.kl, draws: drawn.bySubdomain };
  return {
    job,
    log,
    draws: drawn.bySubdomain,
    files: {
      'ratios.json': jsonText({ ratios: input.ratios, kl: input.kl }),
      'ppo-log.jsonl': log.map((r) => JSON.stringify(r)).join('\n') + '\n',
      'ppo.png': ppoLogChart(log, input.stage),
      'drawn.jsonl': drawn.draws.map((p) => JSON.stringify({ id: p.id, subdomain: p.subdomain, prompt: p.prompt })).join('\n') + '\n',
    },
  };
}

// ---------------------------------------------------------------------------------------------
// rlhf.evaluate

export interface EvaluateStageInput {
  policy: string;
  baseline: string;
  reward: string;
  read: ReadPrompts;
  source: string;
  human?: ReadonlyMap<string, HumanVerdict>;
  settings: EvaluateSettings;
  /** With `settings.judge` `llm`: the endpoint's API key (the caller reads it from the environment variable `judgeApiKeyEnv`). */
  judgeApiKey?: string;
  /** Where the LLM judge's gateway records its `xyp_llm_*` metrics (the service's registry); default its own. */
  metricsRegistry?: Registry;
  backend?: BackendOptions;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number, what: string) => void | Promise<void>;
}

export interface EvaluateStageResult {
  judge: string;
  prompts: number;
  overall: EvaluationOutput['overall'];
  bySubdomain: EvaluationOutput['bySubdomain'];
  maxKl: number;
  klWithinBound: boolean;
}

export async function evaluateStage(engine: LocalEngine, input: EvaluateStageInput): Promise<{ out: EvaluationOutput; result: EvaluateStageResult; files: StageFiles }> {
  const { read, settings: s } = input;
  if (read.prompts.length === 0) throw new Error(`rlhf.evaluate: prompts: ${input.source}: no held-out prompt (${read.lines} lines, ${read.rejects.length} rejected, ${read.skipped} of other subdomains)`);
  let judgeModel: JudgeModel | undefined;
  if (s.judge === 'llm') {
    if (!s.judgeBaseUrl || !s.judgeModel) throw new Error('rlhf.evaluate: judge llm needs judgeBaseUrl and judgeModel');
    if (s.judgeApiKeyEnv && !input.judgeApiKey) throw new Error(`rlhf.evaluate: judgeApiKeyEnv: ${s.judgeApiKeyEnv} is not set`);
    if (!/^https?:\/\//i.test(s.judgeBaseUrl)) throw new Error(`rlhf.evaluate: judgeBaseUrl must be an http(s) URL, got ${s.judgeBaseUrl}`);
    // The endpoint of the payload as a one-model gateway registry: the gateway's retries are the only ones.
    judgeModel = judgeEndpointModel({ baseUrl: s.judgeBaseUrl, model: s.judgeModel, apiKey: input.judgeApiKey }, input.metricsRegistry ? { metricsRegistry: input.metricsRegistry } : {});
  }
  const judge = judgeModel ? llmPairJudge(judgeModel) : undefined;
  const store = engine.store;
  // Opening makes no request: a judge gateway left unclosed by a failure here holds no connection.
  const reward = await openTextReward(input.reward, store, input.backend);
  const policyScorer = await openPolicyScorer(input.policy, store, { backend: input.backend });
  const referenceScorer = await openPolicyScorer(input.baseline, store, { backend: input.backend });
  try {
    const out = await runEvaluation(engine, {
      policy: input.policy,
      baseline: input.baseline,
      policyScorer: policyScorer.scorer,
      referenceScorer: referenceScorer.scorer,
      reward: reward.reward,
      prompts: read.prompts,
      maxTokens: s.maxTokens,
      temperature: s.temperature,
      klSamples: s.klSamples,
      klMaxTokens: s.klMaxTokens,
      seed: s.seed,
      tieMargin: s.tieMargin,
      human: input.human,
      judge,
      judgeName: judge ? `llm:${s.judgeModel}` : undefined,
      signal: input.signal,
      onProgress: input.onProgress,
    });
    const klWithinBound = out.overall.kl <= s.maxKl;
    const exported = annotationExport(out.pairs);
    const models = { policy: input.policy, baseline: input.baseline };
    return {
      out,
      result: { judge: out.judge, prompts: read.prompts.length, overall: out.overall, bySubdomain: out.bySubdomain, maxKl: s.maxKl, klWithinBound },
      files: {
        'evaluation.json': jsonText({ ...models, judge: out.judge, overall: out.overall, bySubdomain: out.bySubdomain, maxKl: s.maxKl, pairs: out.pairs }),
        'evaluation.md': `${evaluationMarkdown(out, models)}\nKL bound: ${s.maxKl} nats per response; ${klWithinBound ? 'within it' : 'ABOVE it'} (${out.overall.kl.toFixed(3)}).\n`,
        'pairs.csv': exported.csv,
        'pairs.jsonl': exported.jsonl,
        'win-tie-loss.png': winTieLossChart(out.bySubdomain, { labels: SUBDOMAIN_LABELS, title: `${input.policy} vs ${input.baseline}` }),
      },
    };
  } finally {
    reward.dispose();
    policyScorer.dispose();
    referenceScorer.dispose();
    judgeModel?.gateway.close();
  }
}

// ---------------------------------------------------------------------------------------------
// rlhf.improve

/** The loop so far: round 0 (the CI filter's ratios and KL), then one `PeiRound` per improve step. */
export type PeiHistory = ({ round: 0; ratios: Record<string, number>; kl: number } | PeiRound)[];

export interface ImproveStageInput {
  round: number;
  /** evaluation.json of the round (its `bySubdomain`, `overall` with the measured `kl`, and the bound `maxKl`). */
  evaluation: { bySubdomain: Record<string, WinTieLoss>; overall: WinTieLoss & { kl?: number }; maxKl?: number };
  /** The ratios and KL the round's PPO trained with. */
  used: { ratios: Record<string, number>; kl: number };
  /** UFRM alignment rate per subdomain (`alignmentRates`). */
  alignment: Record<string, number>;
  history: PeiHistory;
  settings: ImproveSettings;
}

export interface ImproveStageOutput {
  out: ImproveOutput;
  peiRound: PeiRound;
  /** Every evaluate-improve round so far, this one last. */
  rounds: PeiRound[];
  history: PeiHistory;
  result: {
    round: number;
    ratios: Record<string, number>;
    kl: number;
    moves: { subdomain: string; ppoTier: string; rmTier: string; action: string; before: number; after: number }[];
    decision: { continue: boolean; reason: string };
  };
  files: StageFiles;
}

export function improveStage(input: ImproveStageInput): ImproveStageOutput {
  const { round, evaluation, used, alignment, settings: p } = input;
  const out = improveRound({
    round,
    maxRounds: p.maxRounds,
    ratios: used.ratios,
    kl: used.kl,
    gains: Object.fromEntries(Object.keys(used.ratios).map((s) => [s, evaluation.bySubdomain[s]?.netWinRate ?? null])),
    alignment,
    ppoTiers: p.ppoTiers,
    rmTiers: p.rmTiers,
    grid: { up: p.up, upUp: p.upUp, down: p.down, downDown: p.downDown, minRatio: p.minRatio },
    klFactor: p.klFactor,
    klMin: p.klMin,
    epsilon: p.epsilon,
    ...(evaluation.maxKl !== undefined && typeof evaluation.overall.kl === 'number' ? { measuredKl: { kl: evaluation.overall.kl, bound: evaluation.maxKl } } : {}),
  });
  const subs = Object.keys(used.ratios);
  const peiRound: PeiRound = {
    round,
    kl: used.kl,
    nextKl: out.kl.after,
    judged: { overall: evaluation.overall, bySubdomain: Object.fromEntries(subs.filter((s) => evaluation.bySubdomain[s]).map((s) => [s, evaluation.bySubdomain[s]])) },
    rmAlignment: Object.fromEntries(subs.map((s) => [s, alignment[s]])),
    ppoTiers: out.ppo.tiers,
    rmTiers: out.rm.tiers,
    grid: out.grid,
    stop: out.decision,
  };
  const rounds = [...(input.history.filter((h) => 'grid' in h) as PeiRound[]), peiRound];
  const history = [...input.history, peiRound];
  const labels = { labels: SUBDOMAIN_LABELS };
  return {
    out,
    peiRound,
    rounds,
    history,
    result: {
      round,
      ratios: out.grid.ratios,
      kl: out.kl.after,
      moves: out.grid.records.map((r) => ({ subdomain: r.subdomain, ppoTier: r.ppoTier, rmTier: r.rmTier, action: r.action, before: r.before, after: r.after })),
      decision: { continue: out.decision.continue, reason: out.decision.reason },
    },
    files: {
      'ratios.json': jsonText({ ratios: out.grid.ratios, kl: out.kl.after }),
      'history.json': jsonText(history),
      'improve.json': jsonText({ round, ...out }),
      'improve.md': `${peiRoundTable(peiRound, labels)}\n\n${out.notes.map((n) => `- ${n}`).join('\n')}\n\n${peiLoopSummary(rounds, labels)}\n`,
      'ratios.png': ratioTrajectoryChart(rounds, labels),
      'gains.png': gainChart(rounds, labels),
    },
  };
}
