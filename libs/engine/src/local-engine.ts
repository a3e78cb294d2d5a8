/**
 * `TrainingEngine` on this library: every job trains on the CPU (TF.js) and commits its checkpoint
 * to the ArtifactStore as `<runId>/<stage>`.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { ArtifactStore } from '@xyp/storage';
import { initBackend, type BackendOptions } from './backend';
import { loadModel, saveTrainer } from './checkpoint';
import { createStoreCheckpoint, openCheckpoint, storeFromEnv, type ArtifactStoreSink } from './checkpoint-store';
import {
  CausalLmSpec,
  GenerateSpec,
  PpoSpec,
  RewardModelSpec,
  SftSpec,
  parseSpec,
  type CausalLmSpecInput,
  type EngineJob,
  type GenerateSpecInput,
  type GeneratedText,
  type JobKind,
  type PpoSpecInput,
  type RewardModelSpecInput,
  type SftSpecInput,
  type TrainingEngine,
} from './engine-interface';
import { generate } from './generate';
import { readCorpusDocuments, readPreferencePairs, readPrompts, readSftExamples } from './local-data';
import { cloneModel, countParams, disposeModel, initParams, type Model } from './model';
import type { OptimConfigInput } from './optim';
import { ppoRound } from './ppo';
import { pairwiseAccuracy, rewardForward, trainRewardModel } from './reward';
import { BYTE_VOCAB_SIZE, ByteTokenizer } from './tokenizer';
import { openBucketShards, readShardRows } from './shard-rows';
import { Trainer, packDocuments, trainCpt, trainSft, type PackedRows, type StepResult } from './train';

export interface LocalEngineOptions {
  /** Where checkpoints are read and written; default: the store the environment configures. */
  store?: ArtifactStore;
  backend?: BackendOptions;
  /** One line per progress report (every `progressEvery` steps). */
  onProgress?: (line: string) => void;
  progressEvery?: number;
}

const encoder = new TextEncoder();

function optimConfig(o: CausalLmSpec['optimizer'], steps: number): OptimConfigInput {
  return {
    lr: o.lr,
    minLr: o.minLr ?? o.lr / 10,
    warmupSteps: Math.min(o.warmupSteps, Math.max(0, steps - 1)),
    totalSteps: Math.max(1, steps),
    weightDecay: o.weightDecay,
    clipNorm: o.clipNorm,
  };
}

function lossSummary(results: StepResult[]): Record<string, number> {
  return { steps: results.length, initialLoss: results[0]?.loss ?? Number.NaN, finalLoss: results[results.length - 1]?.loss ?? Number.NaN };
}

export class LocalEngine implements TrainingEngine {
  readonly name = 'local' as const;
  readonly tokenizer = new ByteTokenizer();
  private resolvedStore: ArtifactStore | undefined;

  constructor(private readonly options: LocalEngineOptions = {}) {}

  get store(): ArtifactStore {
    this.resolvedStore ??= this.options.store ?? storeFromEnv();
    return this.resolvedStore;
  }

  private progress(kind: string, r: StepResult, total: number): void {
    const every = this.options.progressEvery ?? 10;
    if (r.step % every === 0 || r.step === total) this.options.onProgress?.(`${kind} step ${r.step}/${total} loss ${r.loss.toFixed(4)} lr ${r.lr.toExponential(2)}`);
  }

  /**
   * A trainable model from a checkpoint with the heads a job needs. A head the checkpoint lacks
   * (the value head of a reward model or PPO policy grown from an LM) starts from `initParams`;
   * every other weight is copied.
   */
  private async loadInit(ref: string, heads: { lmHead: boolean; valueHead: boolean }, seed: number): Promise<Model> {
    const { sink } = await openCheckpoint(ref, this.store);
    const loaded = await loadModel(sink, true);
    if (loaded.config.lmHead === heads.lmHead && loaded.config.valueHead === heads.valueHead) return loaded;
    const model = initParams({ ...loaded.config, ...heads }, seed);
    for (const [name, param] of Object.entries(model.params)) {
      const source = loaded.params[name];
      if (source) param.assign(source);
    }
    disposeModel(loaded);
    return model;
  }

  private async finish(
    kind: JobKind,
    sink: ArtifactStoreSink,
    trainer: Trainer,
    metrics: Record<string, number>,
    extra: Record<string, unknown> = {},
  ): Promise<EngineJob> {
    await saveTrainer(sink, trainer);
    await sink.commit({ engine: 'local', jobKind: kind, tokenizer: 'byte', config: trainer.model.config, metrics, ...extra });
    return { engine: 'local', kind, status: 'completed', checkpoint: sink.id, metrics };
  }

  async trainCausalLm(input: CausalLmSpecInput): Promise<EngineJob> {
    const spec = parseSpec(CausalLmSpec, input, 'causal LM');
    if (spec.data.jsonl && spec.data.shards) throw new Error('causal LM spec: data: give data.jsonl or data.shards, not both');
    if (!spec.data.jsonl && !spec.data.shards) {
      throw new Error(
        'causal LM spec: data.jsonl: the local engine trains on a corpus JSONL or on data.shards (the corpus stage\'s packed shards); data.megatron is read by the cluster engine',
      );
    }
    await initBackend(this.options.backend);
    const sink = await createStoreCheckpoint(this.store, spec.runId, spec.stage);
    const a = spec.architecture;
    const init = spec.init ? await this.loadInit(spec.init, { lmHead: true, valueHead: false }, spec.seed) : undefined;
    let model: Model | undefined = init;
    try {
      // A checkpoint's own context (and vocabulary) wins over the spec's when training continues from it.
      const fresh = (vocabSize: number): Model => initParams({ vocabSize, contextLength: a.context, layers: a.layers, width: a.width, heads: a.heads }, spec.seed);
      let rows: PackedRows;
      let data: Record<string, number>;
      let extra: Record<string, unknown> = {};
      if (spec.data.shards) {
        const shards = await openBucketShards(spec.data.shards.source, this.store);
        // A fresh model takes the vocabulary of the tokenizer that packed the shards (the largest id
        // read when the shards carry no manifest).
        const declared = shards.manifest?.tokenizer;
        const read = await readShardRows(shards, {
          bucket: spec.data.shards.bucket,
          context: model?.config.contextLength ?? a.context,
          vocabSize: model?.config.vocabSize ?? declared?.vocabSize,
          maxSequences: spec.data.shards.maxSequences,
        });
        model ??= fresh(declared?.vocabSize ?? read.maxTokenId + 1);
        rows = read;
        data = { packedSequences: read.packedSequences, pieces: read.pieces, rows: read.rowSequence.length, tokensRead: read.tokenCount };
        extra = { tokenizer: declared?.name ?? 'unknown', shards: { source: shards.id, bucket: read.bucket, maxSequences: spec.data.shards.maxSequences } };
      } else {
        const docs = await readCorpusDocuments(spec.data.jsonl as string, this.tokenizer);
        model ??= fresh(BYTE_VOCAB_SIZE);
        rows = packDocuments(docs, model.config.contextLength, this.tokenizer.eos);
        data = { documents: docs.length };
      }
      const trainer = new Trainer(model, optimConfig(spec.optimizer, spec.steps), spec.seed);
      const started = performance.now();
      try {
        const results = trainCpt(trainer, rows, { steps: spec.steps, batchSize: spec.batchSize, onStep: (r) => this.progress('lm', r, spec.steps) });
        const metrics = {
          ...lossSummary(results),
          ...data,
          tokensTrained: spec.steps * spec.batchSize * (rows.rowLength - 1),
          params: countParams(model.config).total,
          seconds: (performance.now() - started) / 1000,
        };
        return await this.finish('causal-lm', sink, trainer, metrics, extra);
      } finally {
        trainer.dispose();
      }
    } finally {
      if (model) disposeModel(model);
    }
  }

  async trainSft(input: SftSpecInput): Promise<EngineJob> {
    const spec = parseSpec(SftSpec, input, 'SFT');
    if (!spec.data.jsonl) throw new Error('SFT spec: data.jsonl: the local engine trains on a {category, messages} JSONL');
    await initBackend(this.options.backend);
    const sink = await createStoreCheckpoint(this.store, spec.runId, spec.stage);
    const examples = await readSftExamples(spec.data.jsonl);
    const model = await this.loadInit(spec.init, { lmHead: true, valueHead: false }, spec.seed);
    const trainer = new Trainer(model, optimConfig(spec.optimizer, spec.steps), spec.seed);
    const started = performance.now();
    try {
      const { steps, log } = trainSft(trainer, this.tokenizer, examples, {
        steps: spec.steps,
        batchSize: spec.batchSize,
        seq: model.config.contextLength,
        logEvery: spec.logEvery,
        onStep: (r) => this.progress('sft', r, spec.steps),
      });
      await sink.put('sft-category-loss.jsonl', encoder.encode(log.map((l) => JSON.stringify(l)).join('\n') + '\n'));
      const metrics = { ...lossSummary(steps), examples: examples.length, seconds: (performance.now() - started) / 1000 };
      return await this.finish('sft', sink, trainer, metrics, { init: spec.init });
    } finally {
      trainer.dispose();
      disposeModel(model);
    }
  }

  async trainRewardModel(input: RewardModelSpecInput): Promise<EngineJob> {
    const spec = parseSpec(RewardModelSpec, input, 'reward model');
    await initBackend(this.options.backend);
    const sink = await createStoreCheckpoint(this.store, spec.runId, spec.stage);
    const model = await this.loadInit(spec.init, { lmHead: false, valueHead: true }, spec.seed);
    const limit = Math.min(spec.maxLength, model.config.contextLength);
    const all = await readPreferencePairs(spec.data.jsonl, this.tokenizer);
    const pairs = all.filter((p) => p.prompt.length + Math.max(p.chosen.length, p.rejected.length) <= limit);
    if (pairs.length === 0) throw new Error(`reward model spec: data.jsonl: no pair fits ${limit} tokens (prompt + response)`);
    const trainer = new Trainer(model, optimConfig(spec.optimizer, spec.steps), spec.seed);
    const started = performance.now();
    try {
      const accuracyBefore = pairwiseAccuracy(model, pairs);
      const results = trainRewardModel(trainer, pairs, {
        steps: spec.steps,
        batchSize: spec.batchSize,
        weights: spec.weights,
        onStep: (r) => this.progress('rm', r, spec.steps),
      });
      const metrics = {
        ...lossSummary(results),
        pairs: pairs.length,
        pairsTooLong: all.length - pairs.length,
        accuracyBefore,
        accuracyAfter: pairwiseAccuracy(model, pairs),
        seconds: (performance.now() - started) / 1000,
      };
      return await this.finish('reward-model', sink, trainer, metrics, { init: spec.init, weights: spec.weights });
    } finally {
      trainer.dispose();
      disposeModel(model);
    }
  }

  async runPpo(input: PpoSpecInput): Promise<EngineJob> {
    const spec = parseSpec(PpoSpec, input, 'PPO');
    await initBackend(this.options.backend);
    const sink = await createStoreCheckpoint(this.store, spec.runId, spec.stage);
    const policy = await this.loadInit(spec.policy, { lmHead: true, valueHead: true }, spec.seed);
    const reference = cloneModel(policy);
    const { sink: rmSink } = await openCheckpoint(spec.rewardModel, this.store);
    const rewardModel = await loadModel(rmSink, false);
    const trainer = new Trainer(policy, optimConfig(spec.optimizer, spec.rounds * spec.epochs * 2), spec.seed);
    try {
      if (!rewardModel.params.value_w) throw new Error(`PPO spec: rewardModel: checkpoint ${spec.rewardModel} has no value head`);
      const room = policy.config.contextLength - spec.maxTokens;
      const prompts = (await readPrompts(spec.data.jsonl))
        .map((p) => this.tokenizer.encodeChat([{ role: 'user', content: p }], true).ids)
        .filter((ids) => ids.length <= Math.min(room, spec.promptMaxLength));
      if (prompts.length === 0) throw new Error(`PPO spec: data.jsonl: no prompt fits ${room} tokens (context − maxTokens)`);
      const rmContext = rewardModel.config.contextLength;
      // The reward model scores prompt·response; longer sequences keep their last `rmContext` tokens.
      const reward = (prompt: number[], response: number[]): number =>
        tf.tidy(() => rewardForward(rewardModel, [[...prompt, ...response].slice(-rmContext)]).r.dataSync()[0]);
      const rounds = [];
      const started = performance.now();
      for (let round = 0; round < spec.rounds; round++) {
        const batch = Array.from({ length: spec.promptsPerRound }, () => prompts[trainer.rng.int(prompts.length)]);
        const r = ppoRound(trainer, reference, batch, reward, {
          klCoef: spec.klCoef,
          gamma: spec.gamma,
          lambda: spec.lambda,
          clip: spec.clip,
          valueClip: spec.valueClip,
          epochs: spec.epochs,
          samplesPerPrompt: spec.samplesPerPrompt,
          temperature: spec.temperature,
          topP: spec.topP,
          maxTokens: spec.maxTokens,
          eos: this.tokenizer.eos,
        });
        rounds.push(r);
        this.options.onProgress?.(`ppo round ${round + 1}/${spec.rounds} reward ${r.meanReward.toFixed(4)} kl ${r.meanKl.toFixed(4)}`);
      }
      const metrics = {
        rounds: rounds.length,
        firstMeanReward: rounds[0].meanReward,
        lastMeanReward: rounds[rounds.length - 1].meanReward,
        lastMeanKl: rounds[rounds.length - 1].meanKl,
        seconds: (performance.now() - started) / 1000,
      };
      return await this.finish('ppo', sink, trainer, metrics, { policy: spec.policy, rewardModel: spec.rewardModel });
    } finally {
      trainer.dispose();
      disposeModel(policy);
      disposeModel(reference);
      disposeModel(rewardModel);
    }
  }

  async generate(input: GenerateSpecInput): Promise<GeneratedText[]> {
    const spec = parseSpec(GenerateSpec, input, 'generate');
    await initBackend(this.options.backend);
    const { sink } = await openCheckpoint(spec.checkpoint, this.store);
    const model = await loadModel(sink, false);
    try {
      const prompts = spec.prompts.map((p) => (spec.chat ? this.tokenizer.encodeChat([{ role: 'user', content: p }], true).ids : this.tokenizer.encode(p)));
      const samples = generate(model, prompts, {
        n: spec.n,
        temperature: spec.temperature,
        topP: spec.topP,
        maxTokens: spec.maxTokens,
        stop: spec.stop.map((s) => this.tokenizer.encode(s)),
        eos: this.tokenizer.eos,
        seed: spec.seed,
      });
      return samples.map((s) => ({ prompt: s.prompt, text: this.tokenizer.decode(s.tokens), finishReason: s.finishReason, tokens: s.tokens.length }));
    } finally {
      disposeModel(model);
    }
  }
}
