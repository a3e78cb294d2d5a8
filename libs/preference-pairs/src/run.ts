/**
 * The whole stage as one call over texts: config, prompts and human labels in; the two preference
 * collections (`pretrain.jsonl`: general pairs, `finetune.jsonl`: finance pairs), the sampled
 * responses, the dropped pairs and the summary out. A stage worker reads the inputs from its store,
 * calls `runRewardPairs` and writes what it returns.
 */
import { PreferenceRecord, type PreferencePhase } from '@xyp/contracts';
import type { BackendOptions, CheckpointObjectStore } from '@xyp/engine';
import { buildPreferencePairs, type BuildPairsOutput, type PairsSummary } from './build-pairs';
import { parsePairsConfig, type PairsConfig } from './config';
import { endpointModel, type PairsEndpoint } from './endpoint';
import { inputError } from './errors';
import { HumanLabels } from './human-labels';
import { JudgeLabeller } from './judge';
import { toJsonl } from './jsonl';
import type { Labeller } from './labeller';
import { parsePrompts } from './prompts';
import { LocalCheckpointSource, OpenAiChatSource, namedSetting, type ResponseSource } from './sources';
import { VerifiableLabeller } from './verifiable-labeller';

export interface RunRewardPairsInput {
  config: { text: string; file?: string } | PairsConfig;
  prompts: { text: string; file?: string };
  humanLabels?: { text: string; file?: string };
  /** Payload values that win over the config's. */
  overrides?: { seed?: number; minMargin?: number; samplesPerSetting?: number; maxPairsPerPrompt?: number };
  /** Reads local `<runId>/<stage>` checkpoints. */
  store?: CheckpointObjectStore;
  backend?: BackendOptions;
  /** Resolves `apiKeyEnv` names; undefined when unset. */
  secret?: (name: string) => string | undefined;
  /** Sources to use instead of the config's (tests, callers with their own). */
  sources?: ResponseSource[];
  signal?: AbortSignal;
  onProgress?: (done: number, total: number, unit: string, message: string) => Promise<void> | void;
}

export interface RewardPairsOutput extends BuildPairsOutput {
  /** By phase: general → pretrain, finance → finetune. */
  collections: Record<PreferencePhase, PreferenceRecord[]>;
  files: { 'pretrain.jsonl': string; 'finetune.jsonl': string; 'samples.jsonl': string; 'dropped.jsonl': string; 'summary.json': string };
  summary: PairsSummary & { humanLabelsUnmatched: number; collections: Record<PreferencePhase, number> };
}

/** Records split into the two UFRM collections by their phase. */
export function splitByPhase(records: readonly PreferenceRecord[]): Record<PreferencePhase, PreferenceRecord[]> {
  return { pretrain: records.filter((r) => r.phase === 'pretrain'), finetune: records.filter((r) => r.phase === 'finetune') };
}

function apiKey(env: string | undefined, secret: RunRewardPairsInput['secret'], file: string, field: string): string | undefined {
  if (!env) return undefined;
  const key = secret?.(env);
  if (!key) throw inputError(file, undefined, field, `environment variable ${env} is not set`);
  return key;
}

/** A config endpoint's gateway settings (its key resolved apart). */
function endpointOf(e: NonNullable<PairsConfig['judge']> | Extract<PairsConfig['sources'][number], { kind: 'openai' }>, apiKey: string | undefined): PairsEndpoint {
  const { baseUrl, model, timeoutMs, retries, backoffMs, maxConcurrency, requestsPerMinute, tokensPerMinute } = e;
  return { baseUrl, model, apiKey, timeoutMs, retries, backoffMs, maxConcurrency, requestsPerMinute, tokensPerMinute };
}

/** The config's sources; an `openai` source is a one-model LLM gateway (model named by the source id), closed with the source. */
export function sourcesOf(config: PairsConfig, input: Pick<RunRewardPairsInput, 'store' | 'backend' | 'secret'>, file = 'reward-pairs.json'): ResponseSource[] {
  const keys = config.sources.map((s, i) => (s.kind === 'openai' ? apiKey(s.apiKeyEnv, input.secret, file, `sources.${i}.apiKeyEnv`) : undefined));
  return config.sources.map((s, i) =>
    s.kind === 'local'
      ? new LocalCheckpointSource({ id: s.id, checkpoint: s.checkpoint, store: input.store, backend: input.backend })
      : OpenAiChatSource.forEndpoint({ id: s.id, ...endpointOf(s, keys[i]) }),
  );
}

/** The labellers in precedence order; the judge is a one-model LLM gateway (model `judge`), closed with `close()`. */
export function labellersOf(config: PairsConfig, human: HumanLabels | undefined, input: Pick<RunRewardPairsInput, 'secret' | 'overrides'>, file = 'reward-pairs.json'): Labeller[] {
  const order = config.labellers ?? ['human', 'verifiable', ...(config.judge ? (['judge'] as const) : [])];
  // Imported human labels take precedence over every other labeller, whatever the order says.
  const names = [...(human ? (['human'] as const) : []), ...order.filter((n) => n !== 'human')];
  const judgeKey = names.includes('judge') && config.judge ? apiKey(config.judge.apiKeyEnv, input.secret, file, 'judge.apiKeyEnv') : undefined;
  return names.map((name): Labeller => {
    if (name === 'human') return human as HumanLabels;
    if (name === 'verifiable') return new VerifiableLabeller(config.verifiable);
    const j = config.judge as NonNullable<PairsConfig['judge']>;
    return new JudgeLabeller({
      endpoint: endpointModel('judge', endpointOf(j, judgeKey)),
      ownsGateway: true,
      promptVersion: j.promptVersion,
      votes: j.votes,
      temperature: j.temperature,
      maxTokens: j.maxTokens,
      margin: j.margin,
      minMargin: input.overrides?.minMargin ?? j.minMargin,
      seed: input.overrides?.seed ?? config.seed,
    });
  });
}

export async function runRewardPairs(input: RunRewardPairsInput): Promise<RewardPairsOutput> {
  const configFile = 'text' in input.config ? (input.config.file ?? 'reward-pairs.json') : 'reward-pairs.json';
  const config = 'text' in input.config ? parsePairsConfig(input.config.text, configFile) : input.config;
  const prompts = parsePrompts(input.prompts.text, { file: input.prompts.file ?? 'prompts.jsonl', defaultSet: config.defaultSet });
  const human = input.humanLabels ? HumanLabels.parse(input.humanLabels.text, input.humanLabels.file ?? 'human-labels.jsonl') : undefined;
  const labellers = labellersOf(config, human, input, configFile);
  let sources: ResponseSource[];
  try {
    sources = input.sources ?? sourcesOf(config, input, configFile);
  } catch (error) {
    await Promise.all(labellers.map((l) => l.close?.()));
    throw error;
  }
  const seed = input.overrides?.seed ?? config.seed;
  try {
    const built = await buildPreferencePairs({
      prompts,
      sources,
      settings: config.settings.map(namedSetting),
      samplesPerSetting: input.overrides?.samplesPerSetting ?? config.samplesPerSetting,
      labellers,
      seed,
      pairing: config.pairing,
      maxPairsPerPrompt: input.overrides?.maxPairsPerPrompt ?? config.maxPairsPerPrompt,
      concurrency: config.concurrency,
      signal: input.signal,
      onProgress: input.onProgress,
    });
    // Every record is checked against the contract before anything is written.
    const records = built.records.map((r) => PreferenceRecord.parse(r));
    const collections = splitByPhase(records);
    const summary = {
      ...built.summary,
      humanLabelsUnmatched: human?.unmatched().length ?? 0,
      collections: { pretrain: collections.pretrain.length, finetune: collections.finetune.length },
    };
    return {
      ...built,
      records,
      collections,
      summary,
      files: {
        'pretrain.jsonl': toJsonl(collections.pretrain),
        'finetune.jsonl': toJsonl(collections.finetune),
        'samples.jsonl': toJsonl(built.responses),
        'dropped.jsonl': toJsonl(built.dropped),
        'summary.json': `${JSON.stringify(summary, null, 2)}\n`,
      },
    };
  } finally {
    await Promise.all([...(input.sources ? [] : sources.map((s) => s.close?.())), ...labellers.map((l) => l.close?.())]);
  }
}
