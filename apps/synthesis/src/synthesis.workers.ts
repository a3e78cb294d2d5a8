import { Inject } from '@nestjs/common';
import { Processor } from '@nestjs/bullmq';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Registry } from 'prom-client';
import { instanceId, type ArtifactEntry, type ParsedPayloadOf, type ResultOf, type TextReward } from '@xyp/contracts';
import type { BackendOptions } from '@xyp/engine';
import type { ResponseCache } from '@xyp/llm';
import { StageRuntime, StageWorker, checkpointOf, withLocalCopies, type StageContext, type StageOutput } from '@xyp/queue';
import { METRICS_REGISTRY } from '@xyp/telemetry';
import { createRewardClient, loadRewardModel, rewardServiceScorer } from '@xyp/reward-serving';
import {
  countInputLines,
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
  type SelfQaRunConfigInput,
  type SynthesisOutput,
  type SynthesisProgress,
  type SynthesisRunResult,
} from '@xyp/synthesis-stages';
import { openJobModels, type OpenedModels } from './models';
import { storeBackedOutput } from './store-output';

export const SYNTHESIS_ENGINE_BACKEND = Symbol('SYNTHESIS_ENGINE_BACKEND');
/** The gateway's response cache (Redis, under the service's queue prefix). */
export const LLM_CACHE = Symbol('LLM_CACHE');
/** `XYP_SYNTHESIS_REWARD_URL`: the RewardService the ensemble scores through; unset: the UFRM in process. */
export const SYNTHESIS_REWARD_URL = Symbol('SYNTHESIS_REWARD_URL');

/**
 * The ensemble's reward: `RewardService.Score` at `url` (the checkpoint loaded there by id with
 * `LoadModel`, beside the service's own), else the checkpoint loaded in process.
 */
async function openReward(checkpoint: string, url: string | undefined, store: StageContext['store'], backend: BackendOptions): Promise<{ score: TextReward; close(): void }> {
  if (!url) {
    const model = await loadRewardModel(checkpoint, { store, backend });
    return { score: model.score, close: () => model.dispose() };
  }
  const client = createRewardClient(url);
  await new Promise<void>((resolve, reject) =>
    client.loadModel({ model: checkpoint, makeCurrent: false, keepPrevious: true }, (error) => (error ? reject(new Error(`RewardService.LoadModel ${checkpoint} at ${url}: ${error.details || error.message}`)) : resolve())),
  );
  return { score: rewardServiceScorer(client, { model: checkpoint }), close: () => client.close() };
}

/** What every generator run takes from the job: the gateway, the output, the cancel signal, progress. */
type GeneratorDeps = { gateway: OpenedModels['gateway']; output: SynthesisOutput; signal: AbortSignal; onProgress: (p: SynthesisProgress) => void };

type GeneratorStage = 'synthesis.selfqa' | 'synthesis.evolve' | 'synthesis.analysis' | 'synthesis.ensemble';

/** The generator's result from its summary. */
function generatorResult(method: ResultOf<'synthesis.selfqa'>['method'], run: SynthesisRunResult): ResultOf<'synthesis.selfqa'> {
  const { accounting, items, inputs, gateway } = run.summary;
  return {
    method,
    inputs,
    kept: accounting.kept,
    dropped: accounting.dropped,
    failed: accounting.failed,
    items,
    byCategory: accounting.byCategory,
    droppedByReason: accounting.droppedByReason,
    failedByReason: accounting.failedByReason,
    calls: Object.fromEntries(Object.entries(gateway).map(([model, s]) => [model, { requests: s.httpRequests, cacheHits: s.cacheHits }])),
  };
}

/** The run configuration (validated by the generator) with the roles the parameters left out filled from the served models. */
function withRoles(stage: GeneratorStage, config: Record<string, unknown>, names: string[]): Record<string, unknown> {
  const given = (config.models ?? {}) as Record<string, unknown>;
  const first = names[0];
  const defaults: Record<GeneratorStage, Record<string, unknown>> = {
    'synthesis.selfqa': { generator: first },
    'synthesis.evolve': { generator: first, judge: first },
    'synthesis.analysis': { generator: first },
    'synthesis.ensemble': { ensemble: names, aggregator: first },
  };
  return { ...config, models: { ...defaults[stage], ...given } };
}

/** One generator stage: its models served, its inputs streamed through the run, its files committed. */
abstract class GeneratorWorker<S extends GeneratorStage> extends StageWorker<S> {
  abstract override readonly stage: S;
  protected abstract readonly method: ResultOf<'synthesis.selfqa'>['method'];

  constructor(
    runtime: StageRuntime,
    @Inject(SYNTHESIS_ENGINE_BACKEND) protected readonly backend: BackendOptions,
    @Inject(LLM_CACHE) private readonly cache: ResponseCache,
    @Inject(METRICS_REGISTRY) private readonly metrics: Registry,
  ) {
    super(runtime);
  }

  protected abstract generate(payload: ParsedPayloadOf<S>, input: string, config: Record<string, unknown>, deps: GeneratorDeps, context: StageContext): Promise<SynthesisRunResult>;

  protected async execute(payload: ParsedPayloadOf<S>, context: StageContext): Promise<StageOutput<S>> {
    const id = instanceId(this.stage, context.instance);
    const dir = await mkdtemp(join(tmpdir(), 'xyp-synthesis-'));
    const models = await openJobModels(payload, { store: context.store, backend: this.backend, cache: this.cache, metricsRegistry: this.metrics });
    try {
      const output = await storeBackedOutput(context, id, join(dir, 'out'));
      const config = withRoles(this.stage, payload.config, models.names);
      const run = await withLocalCopies(context.store, { 'input.jsonl': payload.inputKey }, async (paths) => {
        const total = await countInputLines(paths['input.jsonl']);
        const onProgress = (p: SynthesisProgress): void => void context.progress(p.inputs, Math.max(total, p.inputs), 'inputs', `${p.kept} kept, ${p.dropped} dropped, ${p.failed} failed`);
        return this.generate(payload, paths['input.jsonl'], config, { gateway: models.gateway, output, signal: context.signal, onProgress }, context);
      });
      const s = run.summary;
      context.log(`${s.inputs} inputs: ${s.accounting.kept} kept, ${s.accounting.dropped} dropped, ${s.accounting.failed} failed; ${s.items} SFT items`);
      const artifacts: ArtifactEntry[] = [];
      for (const [name, path] of Object.entries({ 'sft.jsonl': run.files.sft, 'outcomes.jsonl': run.files.outcomes, 'summary.json': run.files.summary })) {
        artifacts.push(await context.store.putObject(payload.runId, id, name, await readFile(path), name.endsWith('.json') ? 'application/json' : 'application/x-ndjson'));
      }
      return { result: generatorResult(this.method, run), artifacts } as StageOutput<S>;
    } finally {
      await models.close();
      await rm(dir, { recursive: true, force: true });
    }
  }

}

@Processor('synthesis.selfqa')
export class SynthesisSelfQaWorker extends GeneratorWorker<'synthesis.selfqa'> {
  readonly stage = 'synthesis.selfqa' as const;
  protected readonly method = 'selfqa' as const;
  protected generate(_payload: ParsedPayloadOf<'synthesis.selfqa'>, input: string, config: Record<string, unknown>, deps: GeneratorDeps) {
    return runSelfQa(readInputs('selfqa', input), config as SelfQaRunConfigInput, deps);
  }
}

@Processor('synthesis.evolve')
export class SynthesisEvolveWorker extends GeneratorWorker<'synthesis.evolve'> {
  readonly stage = 'synthesis.evolve' as const;
  protected readonly method = 'evol-instruct' as const;
  protected generate(_payload: ParsedPayloadOf<'synthesis.evolve'>, input: string, config: Record<string, unknown>, deps: GeneratorDeps) {
    return runEvolve(readInputs('evolve', input), config as EvolRunConfigInput, deps);
  }
}

@Processor('synthesis.analysis')
export class SynthesisAnalysisWorker extends GeneratorWorker<'synthesis.analysis'> {
  readonly stage = 'synthesis.analysis' as const;
  protected readonly method = 'expert-seeded' as const;
  protected async generate(payload: ParsedPayloadOf<'synthesis.analysis'>, input: string, config: Record<string, unknown>, deps: GeneratorDeps, context: StageContext) {
    const exemplars = await withLocalCopies(context.store, { 'exemplars.jsonl': payload.exemplarsKey }, (paths) => readAnalysisExemplars(paths['exemplars.jsonl']));
    return runAnalysis(readInputs('analysis', input), config as AnalysisRunConfigInput, { ...deps, exemplars });
  }
}

@Processor('synthesis.ensemble')
export class SynthesisEnsembleWorker extends GeneratorWorker<'synthesis.ensemble'> {
  readonly stage = 'synthesis.ensemble' as const;
  protected readonly method = 'ensemble' as const;

  constructor(
    runtime: StageRuntime,
    @Inject(SYNTHESIS_ENGINE_BACKEND) backend: BackendOptions,
    @Inject(LLM_CACHE) cache: ResponseCache,
    @Inject(METRICS_REGISTRY) metrics: Registry,
    @Inject(SYNTHESIS_REWARD_URL) private readonly rewardUrl: string | undefined,
  ) {
    super(runtime, backend, cache, metrics);
  }
  protected async generate(payload: ParsedPayloadOf<'synthesis.ensemble'>, input: string, config: Record<string, unknown>, deps: GeneratorDeps, context: StageContext) {
    const { checkpoint } = await checkpointOf(context.store, payload.rewardManifestKey, 'reward');
    const reward = await openReward(checkpoint, this.rewardUrl, context.store, this.backend);
    try {
      return await runEnsemble(readInputs('ensemble', input), config as EnsembleRunConfigInput, { ...deps, reward: reward.score });
    } finally {
      reward.close();
    }
  }
}

/** synthesis.merge: the join of the generator branches (`mergeSynthesis`): one SFT dataset, duplicates removed. */
@Processor('synthesis.merge')
export class SynthesisMergeWorker extends StageWorker<'synthesis.merge'> {
  readonly stage = 'synthesis.merge' as const;

  constructor(runtime: StageRuntime) {
    super(runtime);
  }

  protected async execute(payload: ParsedPayloadOf<'synthesis.merge'>, context: StageContext): Promise<StageOutput<'synthesis.merge'>> {
    const id = instanceId(this.stage, context.instance);
    const dir = await mkdtemp(join(tmpdir(), 'xyp-synthesis-merge-'));
    try {
      const files = Object.fromEntries(payload.sources.map((s, i) => [`${i}-sft.jsonl`, s.key]));
      const summary = await withLocalCopies(context.store, files, (paths) =>
        mergeSynthesis(
          payload.sources.map((_, i) => paths[`${i}-sft.jsonl`]),
          { out: dir, dedup: { nearDuplicateThreshold: payload.nearDuplicateThreshold } },
        ),
      );
      context.log(`${summary.items} items: ${summary.kept} kept, ${summary.exactDuplicates} exact and ${summary.nearDuplicates} near duplicates removed`);
      const artifacts: ArtifactEntry[] = [];
      for (const [name, path] of Object.entries({ 'sft.jsonl': summary.files.sft, 'duplicates.jsonl': summary.files.duplicates, 'merge.json': summary.files.merge })) {
        artifacts.push(await context.store.putObject(payload.runId, id, name, await readFile(path), name.endsWith('.json') ? 'application/json' : 'application/x-ndjson'));
      }
      return {
        result: {
          inputs: summary.items,
          kept: summary.kept,
          exactDuplicates: summary.exactDuplicates,
          nearDuplicates: summary.nearDuplicates,
          byCategory: Object.fromEntries(Object.entries(summary.byCategory).map(([c, counts]) => [c, counts.kept])),
          bySource: Object.fromEntries(payload.sources.map((source, i) => [source.instance, summary.inputs[i]?.items ?? 0])),
          byGenerator: Object.fromEntries(Object.entries(summary.byGenerator).map(([generator, counts]) => [generator, { items: counts.items, kept: counts.kept }])),
        },
        artifacts,
      };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
}
