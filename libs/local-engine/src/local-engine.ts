/**
 * `TrainingEngine` on the TF.js engine: every job trains on the CPU and writes its checkpoint into the
 * ArtifactStore under `<runId>/<stage>`. It commits nothing: each job returns the stage manifest that
 * lists the checkpoint's files (`EngineJob.manifest`), and the caller commits it (the CLI, a stage
 * worker), which is what makes the checkpoint exist.
 */
import {
  CausalLmSpec,
  GenerateSpec,
  PpoSpec,
  RewardModelSpec,
  SftSpec,
  parseSpec,
  type CausalLmSpecInput,
  type CptMixture,
  type EngineJob,
  type GenerateSpecInput,
  type PreferenceRecord,
  type PreferenceSet,
  type GeneratedText,
  type JobKind,
  type PpoSpecInput,
  type RewardModelSpecInput,
  type SftSpecInput,
  type TextReward,
  type TrainingEngine,
} from '@xyp/contracts';
import {
  BYTE_VOCAB_SIZE,
  ByteTokenizer,
  Trainer,
  checkpointManifest,
  cloneModel,
  countParams,
  createStoreCheckpoint,
  disposeModel,
  generate,
  initBackend,
  initParams,
  loadModel,
  loadTrainer,
  openCheckpoint,
  packDocuments,
  parseCheckpointRef,
  saveTrainer,
  trainCpt,
  trainSft,
  yieldToEventLoop,
  type ArtifactStoreSink,
  type BackendOptions,
  type CategoryLossLine,
  type LoopControl,
  type Model,
  type OptimConfigInput,
  type PackedRows,
  type SftLogState,
  type StepResult,
  type TrainProgress,
} from '@xyp/engine';
import { HandedBackError } from '@xyp/offload';
import { PpoConfig, ppoRound, type PpoRoundResult, type RewardFn } from '@xyp/ppo';
import { openBucketShards, readCategoryRows, readCorpusDocuments, readPreferencePairs, readPrompts, readShardRows, readSftExamples } from '@xyp/training-data';
import { cptMixtureCharts, tokenShareWeights, trainCptMixture, validationSummary, type CptMixtureState } from './cpt-mixture';
import { countRatios, heldOutSummary, sftEpochCharts, stepsPerEpoch, trainSftEpochs, type SftEpochState } from './sft-epochs';
import { fitPair, pairRewards, textRewardScorer, tokenizeRecord, trainRewardModel, type PreferencePair } from '@xyp/ufrm';
import { mean, rewardCurvesCharts, type RewardCurvePoint, type RewardEvalPoint } from './reward-curves';
import type { ArtifactStore } from '@xyp/storage';
import { ResumeSink, checkMarker, type JobControl, type ResumeMarker } from './job-control';

/** One scored preference pair (`LocalEngine.scorePreferences`). */
export interface ScoredPreference {
  id: string;
  category: string;
  set: PreferenceSet;
  chosen: number;
  rejected: number;
}

export interface LocalEngineOptions {
  /**
   * Where checkpoints and shards are read and checkpoints written: a store, or a function that makes
   * it when a job first needs one (`generate` from a checkpoint directory needs none).
   */
  store?: ArtifactStore | (() => ArtifactStore);
  backend?: BackendOptions;
  /** One line per progress report (every `progressEvery` steps, and the last). */
  onProgress?: (line: string) => void;
  progressEvery?: number;
}

/** PPO's job control: also the reward function to score rollouts with (default: the spec's reward model, in process). */
export interface PpoJobControl extends JobControl {
  /** Texts in, scores out: a `RewardService.Score` client (`rewardServiceScorer`), say. */
  reward?: TextReward;
}

/**
 * One job's run of the training loop: progress to both listeners, resume checkpoints on the cadence
 * the control asks for, and the hand-back on drain.
 */
interface Session {
  /** Loop control for `trainCpt`, `trainSft`, `trainRewardModel`: cancel, drain, progress, checkpoints. */
  loop(label: string): LoopControl;
  /** Writes a resume checkpoint now and reports its marker. */
  save(): Promise<ResumeMarker>;
  /** Whether the cadence asks for a checkpoint. */
  due(): boolean;
  /** Writes a resume checkpoint and throws `HandedBackError` with its marker. */
  handBack(): Promise<never>;
  /** The last marker written (or resumed from). */
  readonly marker: ResumeMarker | undefined;
  readonly initialLoss: number;
  readonly finalLoss: number;
  /** Seconds trained, over every attempt. */
  seconds(): number;
  report(progress: TrainProgress): Promise<void>;
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

export class LocalEngine implements TrainingEngine {
  readonly name = 'local' as const;
  readonly tokenizer = new ByteTokenizer();
  private resolvedStore: ArtifactStore | undefined;

  constructor(private readonly options: LocalEngineOptions = {}) {}

  get store(): ArtifactStore {
    if (!this.resolvedStore) {
      const given = this.options.store;
      if (!given) throw new Error('LocalEngine: no artifact store given (options.store)');
      this.resolvedStore = typeof given === 'function' ? given() : given;
    }
    return this.resolvedStore;
  }

  /** The store, when `ref` names a store checkpoint (a checkpoint directory needs none). */
  private storeFor(ref: string): ArtifactStore | undefined {
    return parseCheckpointRef(ref).kind === 'store' ? this.store : undefined;
  }

  /** The trainer of a resume marker, after checking that the marker belongs to this job. */
  private async resumeTrainer(control: JobControl, kind: JobKind, runId: string, stage: string): Promise<{ marker: ResumeMarker; trainer: Trainer } | undefined> {
    if (!control.resume) return undefined;
    const marker = checkMarker(control.resume, kind, runId, stage);
    const trainer = await loadTrainer(new ResumeSink(this.store, runId, stage, marker.files));
    return { marker, trainer };
  }

  private session(kind: JobKind, at: { runId: string; stage: string }, trainer: Trainer, control: JobControl, totalSteps: number, extra: () => Record<string, unknown> = () => ({})): Session {
    const resumed = control.resume?.state ?? {};
    let marker = control.resume;
    let initialLoss = typeof resumed.initialLoss === 'number' ? resumed.initialLoss : Number.NaN;
    let finalLoss = typeof resumed.finalLoss === 'number' ? resumed.finalLoss : Number.NaN;
    const before = typeof resumed.seconds === 'number' ? resumed.seconds : 0;
    const started = performance.now();
    let savedStep = trainer.step;
    let savedAt = started;
    const every = this.options.progressEvery ?? 10;
    const seconds = (): number => before + (performance.now() - started) / 1000;
    const save = async (): Promise<ResumeMarker> => {
      const sink = new ResumeSink(this.store, at.runId, at.stage);
      await saveTrainer(sink, trainer);
      marker = {
        version: 1,
        kind,
        runId: at.runId,
        stage: at.stage,
        step: trainer.step,
        totalSteps,
        files: sink.files,
        state: { initialLoss, finalLoss, seconds: seconds(), ...extra() },
        savedAt: new Date().toISOString(),
      };
      savedStep = trainer.step;
      savedAt = performance.now();
      await control.onCheckpoint?.(marker);
      return marker;
    };
    const due = (): boolean => {
      const steps = control.checkpointEverySteps;
      const secs = control.checkpointEverySeconds;
      return (steps !== undefined && trainer.step - savedStep >= steps) || (secs !== undefined && (performance.now() - savedAt) / 1000 >= secs);
    };
    const report = async (progress: TrainProgress): Promise<void> => {
      if (progress.done % every === 0 || progress.done === progress.total) this.options.onProgress?.(progress.message);
      await control.onProgress?.({ ...progress, job: kind });
    };
    return {
      loop: (label) => ({
        signal: control.signal,
        stop: control.drain,
        totalSteps,
        label,
        onStep: async (r: StepResult) => {
          if (Number.isNaN(initialLoss)) initialLoss = r.loss;
          finalLoss = r.loss;
          if (r.step < totalSteps && due()) await save();
        },
        onProgress: report,
      }),
      save,
      due,
      handBack: async () => {
        throw new HandedBackError(await save(), `${kind} ${at.runId}/${at.stage} handed back at step ${trainer.step}/${totalSteps}`);
      },
      get marker() {
        return marker;
      },
      get initialLoss() {
        return initialLoss;
      },
      get finalLoss() {
        return finalLoss;
      },
      seconds,
      report,
    };
  }

  /**
   * A trainable model from a checkpoint with the heads a job needs. A head the checkpoint lacks
   * (the value head of a reward model or PPO policy grown from an LM) starts from `initParams`;
   * every other weight is copied.
   */
  private async loadInit(ref: string, heads: { lmHead: boolean; valueHead: boolean; pooling?: 'last' | 'mean' }, seed: number): Promise<Model> {
    const { sink } = await openCheckpoint(ref, this.store);
    const loaded = await loadModel(sink, true);
    const pooling = heads.pooling ?? loaded.config.pooling;
    if (loaded.config.lmHead === heads.lmHead && loaded.config.valueHead === heads.valueHead) {
      // Pooling changes no weight: the checkpoint's model reads its reward the way the job asks.
      loaded.config = { ...loaded.config, pooling };
      return loaded;
    }
    const model = initParams({ ...loaded.config, lmHead: heads.lmHead, valueHead: heads.valueHead, pooling }, seed);
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
    const manifest = checkpointManifest(sink, { engine: 'local', jobKind: kind, tokenizer: 'byte', config: trainer.model.config, metrics, ...extra });
    return { engine: 'local', kind, status: 'completed', checkpoint: sink.id, metrics, manifest };
  }

  /**
   * Causal-LM training (CPT) on a corpus JSONL or the corpus stage's packed shards. Step-wise under
   * `control` (`JobControl`): cancel, drain and hand back, progress, resume checkpoints, resume.
   */
  async trainCausalLm(input: CausalLmSpecInput, control: JobControl = {}): Promise<EngineJob> {
    const spec = parseSpec(CausalLmSpec, input, 'causal LM');
    if (spec.data.jsonl && spec.data.shards) throw new Error('causal LM spec: data: give data.jsonl or data.shards, not both');
    if (!spec.data.jsonl && !spec.data.shards) {
      throw new Error(
        'causal LM spec: data.jsonl: the local engine trains on a corpus JSONL or on data.shards (the corpus stage\'s packed shards); data.megatron is read by the cluster engine',
      );
    }
    if (spec.mixture) return this.trainCptWithMixture(spec, spec.mixture, control);
    await initBackend(this.options.backend);
    const sink = await createStoreCheckpoint(this.store, spec.runId, spec.stage);
    const a = spec.architecture;
    const resumed = await this.resumeTrainer(control, 'causal-lm', spec.runId, spec.stage);
    let model: Model | undefined = resumed?.trainer.model ?? (spec.init ? await this.loadInit(spec.init, { lmHead: true, valueHead: false }, spec.seed) : undefined);
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
        rows = packDocuments(docs, model.config.contextLength, this.tokenizer.eosId);
        data = { documents: docs.length };
      }
      const trainer = resumed?.trainer ?? new Trainer(model, optimConfig(spec.optimizer, spec.steps), spec.seed);
      try {
        const session = this.session('causal-lm', spec, trainer, control, spec.steps);
        await trainCpt(trainer, rows, { steps: Math.max(0, spec.steps - trainer.step), batchSize: spec.batchSize, ...session.loop('lm') });
        if (trainer.step < spec.steps) await session.handBack();
        const metrics = {
          steps: trainer.step,
          initialLoss: session.initialLoss,
          finalLoss: session.finalLoss,
          ...data,
          tokensTrained: spec.steps * spec.batchSize * (rows.rowLength - 1),
          params: countParams(model.config).total,
          seconds: session.seconds(),
        };
        return await this.finish('causal-lm', sink, trainer, metrics, extra);
      } finally {
        trainer.dispose();
      }
    } finally {
      if (model) disposeModel(model);
    }
  }

  /**
   * CPT with the data mixture in the loop (`trainCptMixture`): the shards' rows by category, a
   * validation split of whole packed sequences, stages whose weights the mixture controller re-sets.
   * Besides the checkpoint it writes `category-loss.jsonl` (training and validation loss per category),
   * `mixture.json` (every stage's weights, draws and the controller's decision with its reasons),
   * `weights.json` (the weights the next stage would use) and three PNGs. The loop's state is in every
   * resume checkpoint, so a resumed job goes on mid-stage.
   */
  private async trainCptWithMixture(spec: CausalLmSpec, mixture: CptMixture, control: JobControl): Promise<EngineJob> {
    if (!spec.data.shards) throw new Error("causal LM spec: mixture: needs data.shards (the corpus stage's packed shards, whose category sidecar labels every packed sequence)");
    await initBackend(this.options.backend);
    const sink = await createStoreCheckpoint(this.store, spec.runId, spec.stage);
    const a = spec.architecture;
    const resumed = await this.resumeTrainer(control, 'causal-lm', spec.runId, spec.stage);
    let model: Model | undefined = resumed?.trainer.model ?? (spec.init ? await this.loadInit(spec.init, { lmHead: true, valueHead: false }, spec.seed) : undefined);
    try {
      const shards = await openBucketShards(spec.data.shards.source, this.store);
      const declared = shards.manifest?.tokenizer;
      const rows = await readCategoryRows(shards, {
        context: model?.config.contextLength ?? a.context,
        vocabSize: model?.config.vocabSize ?? declared?.vocabSize,
        buckets: spec.data.shards.buckets ?? (spec.data.shards.bucket ? [spec.data.shards.bucket] : undefined),
        validationFraction: mixture.validationFraction,
        seed: spec.seed,
        maxSequencesPerBucket: spec.data.shards.maxSequences,
      });
      model ??= initParams({ vocabSize: declared?.vocabSize ?? rows.maxTokenId + 1, contextLength: a.context, layers: a.layers, width: a.width, heads: a.heads }, spec.seed);
      const trainer = resumed?.trainer ?? new Trainer(model, optimConfig(spec.optimizer, spec.steps), spec.seed);
      try {
        const weights = mixture.weights ?? tokenShareWeights(rows);
        // The loop mutates this state in place; every resume checkpoint saves it as it is then.
        const state: CptMixtureState = structuredClone(resumed?.marker.state.mixture as CptMixtureState | undefined) ?? { stage: 0, weights: { ...weights }, stages: [], lines: [], sums: {} };
        const session = this.session('causal-lm', spec, trainer, control, spec.steps, () => ({ mixture: state }));
        const result = await trainCptMixture(trainer, rows, {
          steps: spec.steps,
          stages: mixture.stages,
          batchSize: spec.batchSize,
          weights,
          config: mixture.config,
          logEvery: mixture.logEvery,
          evalEvery: mixture.evalEvery,
          validationRows: mixture.validationRows,
          seed: spec.seed,
          state,
          ...session.loop('cpt'),
          onStage: (record) => this.options.onProgress?.(`cpt stage ${record.stage}/${mixture.stages} done at step ${record.toStep}${record.decision ? `: next weights ${Object.entries(record.decision.weights).map(([c, w]) => `${c} ${w.toFixed(3)}`).join(', ')}` : ''}`),
        });
        if (trainer.step < spec.steps) await session.handBack();
        const final = result.state;
        const lastDecision = final.stages[final.stages.length - 1]?.decision?.weights;
        await sink.put('category-loss.jsonl', encoder.encode(final.lines.map((l) => JSON.stringify(l)).join('\n') + '\n'));
        const validation = validationSummary(final.lines);
        await sink.put('mixture.json', encoder.encode(`${JSON.stringify({ stages: final.stages, config: mixture.config, validation }, null, 2)}\n`));
        await sink.put('weights.json', encoder.encode(`${JSON.stringify(lastDecision ?? final.weights, null, 2)}\n`));
        for (const [name, png] of Object.entries(cptMixtureCharts(final, 'CPT'))) await sink.put(name, png);
        const metrics = {
          steps: trainer.step,
          initialLoss: session.initialLoss,
          finalLoss: session.finalLoss,
          stages: mixture.stages,
          categories: Object.keys(validation).length,
          categoriesImproved: Object.values(validation).filter((v) => v.change < 0).length,
          packedSequences: rows.packedSequences,
          trainRows: Object.values(rows.train).reduce((n, l) => n + l.length, 0),
          validationRows: Object.values(rows.validation).reduce((n, l) => n + l.length, 0),
          tokensRead: rows.tokenCount,
          tokensTrained: spec.steps * spec.batchSize * (rows.rowLength - 1),
          params: countParams(model.config).total,
          seconds: session.seconds(),
        };
        return await this.finish('causal-lm', sink, trainer, metrics, {
          tokenizer: declared?.name ?? 'unknown',
          shards: { source: shards.id, buckets: rows.buckets },
          validation,
          weights: { first: weights, next: lastDecision ?? final.weights },
          stages: final.stages.map((st) => ({ stage: st.stage, fromStep: st.fromStep, toStep: st.toStep, weights: st.weights, draws: st.draws, changes: st.decision?.changes.map(({ reason: _reason, ...c }) => c) ?? [] })),
        });
      } finally {
        trainer.dispose();
      }
    } finally {
      if (model) disposeModel(model);
    }
  }

  /**
   * SFT from an `init` checkpoint. With `epochs`, the epoch loop with dynamic ratios
   * (`trainSftEpochs`): per-category training and held-out loss per epoch, ratios re-set after each
   * epoch; it writes `sft-epochs.json`, `sft-category-loss.jsonl` and three PNGs. Without, `steps`
   * steps on uniformly drawn conversations with a per-category loss line every `logEvery` steps.
   * Either way the loss counts assistant tokens only and the loop's state survives a resume.
   */
  async trainSft(input: SftSpecInput, control: JobControl = {}): Promise<EngineJob> {
    const spec = parseSpec(SftSpec, input, 'SFT');
    if (!spec.data.jsonl) throw new Error('SFT spec: data.jsonl: the local engine trains on a {category, messages} JSONL');
    if (!spec.epochs && spec.steps === undefined) throw new Error('SFT spec: steps: give steps, or epochs');
    if (spec.epochs && spec.steps !== undefined) throw new Error('SFT spec: steps: with epochs the steps follow from them; leave steps out');
    await initBackend(this.options.backend);
    const sink = await createStoreCheckpoint(this.store, spec.runId, spec.stage);
    const examples = await readSftExamples(spec.data.jsonl);
    const heldOut = spec.data.heldOut ? await readSftExamples(spec.data.heldOut) : [];
    const examplesPerEpoch = spec.epochs?.examplesPerEpoch ?? examples.length;
    const steps = spec.epochs ? spec.epochs.count * stepsPerEpoch(examplesPerEpoch, spec.batchSize) : (spec.steps as number);
    const resumed = await this.resumeTrainer(control, 'sft', spec.runId, spec.stage);
    const a = spec.architecture;
    const model =
      resumed?.trainer.model ??
      (spec.init
        ? await this.loadInit(spec.init, { lmHead: true, valueHead: false }, spec.seed)
        : initParams({ vocabSize: this.tokenizer.vocabSize, contextLength: a.context, layers: a.layers, width: a.width, heads: a.heads }, spec.seed));
    const trainer = resumed?.trainer ?? new Trainer(model, optimConfig(spec.optimizer, steps), spec.seed);
    try {
      if (spec.epochs) {
        const epochs = spec.epochs;
        const ratios = epochs.ratios ?? countRatios(examples);
        // The loop mutates this state in place; every resume checkpoint saves it as it is then.
        const state: SftEpochState = structuredClone(resumed?.marker.state.epochs as SftEpochState | undefined) ?? { epoch: 0, ratios: { ...ratios }, epochs: [], lines: [], sums: {} };
        const session = this.session('sft', spec, trainer, control, steps, () => ({ epochs: state }));
        const result = await trainSftEpochs(trainer, this.tokenizer, examples, heldOut, {
          epochs: epochs.count,
          batchSize: spec.batchSize,
          seq: model.config.contextLength,
          examplesPerEpoch,
          ratios,
          config: epochs.config,
          seed: spec.seed,
          state,
          ...session.loop('sft'),
          onEpoch: (record) => {
            const next = record.decision ? `: next ratios ${Object.entries(record.decision.ratios).map(([c, w]) => `${c} ${w.toFixed(3)}`).join(', ')}` : '';
            this.options.onProgress?.(`sft epoch ${record.epoch}/${epochs.count} done at step ${record.toStep}${next}`);
          },
        });
        if (trainer.step < steps) await session.handBack();
        const final = result.state;
        const heldOutLoss = heldOutSummary(final.lines);
        await sink.put('sft-category-loss.jsonl', encoder.encode(final.lines.map((l) => JSON.stringify(l)).join('\n') + '\n'));
        await sink.put('sft-epochs.json', encoder.encode(`${JSON.stringify({ epochs: final.epochs, config: epochs.config, heldOut: heldOutLoss }, null, 2)}\n`));
        for (const [name, png] of Object.entries(sftEpochCharts(final, 'SFT'))) await sink.put(name, png);
        const metrics = {
          steps: trainer.step,
          epochs: epochs.count,
          initialLoss: session.initialLoss,
          finalLoss: session.finalLoss,
          examples: examples.length,
          heldOutExamples: heldOut.length,
          categories: Object.keys(countRatios(examples)).length,
          categoriesImproved: Object.values(heldOutLoss).filter((v) => v.change < 0).length,
          seconds: session.seconds(),
        };
        return await this.finish('sft', sink, trainer, metrics, { init: spec.init ?? null, heldOut: heldOutLoss, ratios: { first: ratios, last: final.epochs[final.epochs.length - 1]?.ratios ?? ratios },
          epochs: final.epochs.map((ep) => ({ epoch: ep.epoch, ratios: ep.ratios, draws: ep.draws, changes: ep.decision?.changes.map(({ reason: _reason, ...c }) => c) ?? [] })),
        });
      }
      const log: CategoryLossLine[] = [...((resumed?.marker.state.log as CategoryLossLine[] | undefined) ?? [])];
      const logState: SftLogState = structuredClone((resumed?.marker.state.logState as SftLogState | undefined) ?? {});
      const session = this.session('sft', spec, trainer, control, steps, () => ({ log, logState }));
      await trainSft(trainer, this.tokenizer, examples, {
        steps: Math.max(0, steps - trainer.step),
        batchSize: spec.batchSize,
        seq: model.config.contextLength,
        logEvery: spec.logEvery,
        logState,
        onLog: (line) => log.push(line),
        ...session.loop('sft'),
      });
      if (trainer.step < steps) await session.handBack();
      await sink.put('sft-category-loss.jsonl', encoder.encode(log.map((l) => JSON.stringify(l)).join('\n') + '\n'));
      const metrics = { steps: trainer.step, initialLoss: session.initialLoss, finalLoss: session.finalLoss, examples: examples.length, seconds: session.seconds() };
      return await this.finish('sft', sink, trainer, metrics, { init: spec.init ?? null });
    } finally {
      trainer.dispose();
      disposeModel(model);
    }
  }

  /**
   * The UFRM reward model, from an `init` checkpoint (its LM weights copied, a fresh value head) or a
   * fresh model of `architecture`. Pairs longer than `maxLength` keep their last tokens (`fitPair`).
   * Besides the checkpoint it writes the job's curves: every step's loss terms and batch statistics,
   * and every `evalEvery` steps the accuracy on a fixed sample of the training pairs and on
   * `data.heldOut` with the mean chosen and rejected reward (`curves.jsonl`, `curves.png`). Control
   * as `trainCausalLm`.
   */
  async trainRewardModel(input: RewardModelSpecInput, control: JobControl = {}): Promise<EngineJob> {
    const spec = parseSpec(RewardModelSpec, input, 'reward model');
    await initBackend(this.options.backend);
    const sink = await createStoreCheckpoint(this.store, spec.runId, spec.stage);
    const resumed = await this.resumeTrainer(control, 'reward-model', spec.runId, spec.stage);
    const a = spec.architecture;
    const model =
      resumed?.trainer.model ??
      (spec.init
        ? await this.loadInit(spec.init, { lmHead: false, valueHead: true, ...(spec.pooling ? { pooling: spec.pooling } : {}) }, spec.seed)
        : initParams(
            { vocabSize: this.tokenizer.vocabSize, contextLength: a.context, layers: a.layers, width: a.width, heads: a.heads, dropout: spec.dropout, lmHead: false, valueHead: true, pooling: spec.pooling ?? 'last' },
            spec.seed,
          ));
    let trainer: Trainer | undefined = resumed?.trainer;
    try {
      const limit = Math.min(spec.maxLength, model.config.contextLength);
      const read = async (file: string, what: string) => {
        const all = await readPreferencePairs(file, this.tokenizer);
        return { pairs: all.map((p) => fitPair(p, limit)), truncated: all.filter((p) => p.prompt.length + Math.max(p.chosen.length, p.rejected.length) > limit).length, what };
      };
      const train = await read(spec.data.jsonl, 'data.jsonl');
      const heldOut = spec.data.heldOut ? await read(spec.data.heldOut, 'data.heldOut') : undefined;
      trainer ??= new Trainer(model, optimConfig(spec.optimizer, spec.steps), spec.seed);
      // A fixed sample of the training pairs (every k-th), so train and held-out accuracy are comparable.
      const stride = Math.max(1, Math.floor(train.pairs.length / 256));
      const trainSample = train.pairs.filter((_, i) => i % stride === 0);
      const state = resumed?.marker.state ?? {};
      const curves: RewardCurvePoint[] = [...((state.curves as RewardCurvePoint[] | undefined) ?? [])];
      const phase = spec.phase ?? spec.stage;
      const evaluate = (step: number): RewardEvalPoint => {
        const measure = (pairs: PreferencePair[]) => {
          const r = pairRewards(model, pairs);
          let aligned = 0;
          for (let i = 0; i < pairs.length; i++) if (r.chosen[i] > r.rejected[i]) aligned += 1;
          return { accuracy: aligned / pairs.length, chosenMean: mean(r.chosen), rejectedMean: mean(r.rejected) };
        };
        const t = measure(trainSample);
        const h = heldOut ? measure(heldOut.pairs) : undefined;
        return {
          kind: 'eval',
          phase,
          step,
          trainAccuracy: t.accuracy,
          heldOutAccuracy: h?.accuracy ?? null,
          chosenMean: (h ?? t).chosenMean,
          rejectedMean: (h ?? t).rejectedMean,
        };
      };
      if (!curves.some((c) => c.kind === 'eval')) curves.push(evaluate(trainer.step));
      const first = curves.find((c): c is RewardEvalPoint => c.kind === 'eval') as RewardEvalPoint;
      const session = this.session('reward-model', spec, trainer, control, spec.steps, () => ({ curves }));
      const current = trainer;
      await trainRewardModel(trainer, train.pairs, {
        steps: Math.max(0, spec.steps - trainer.step),
        batchSize: spec.batchSize,
        weights: spec.weights,
        ...session.loop('rm'),
        onTerms: (t) => {
          curves.push({ kind: 'step', phase, ...t });
          if (t.step % spec.evalEvery === 0 && t.step < spec.steps) curves.push(evaluate(t.step));
        },
      });
      if (trainer.step < spec.steps) await session.handBack();
      const last = curves[curves.length - 1];
      if (last.kind !== 'eval' || last.step !== current.step) curves.push(evaluate(current.step));
      const final = curves[curves.length - 1] as RewardEvalPoint;
      await sink.put('curves.jsonl', encoder.encode(curves.map((c) => JSON.stringify(c)).join('\n') + '\n'));
      for (const [name, png] of Object.entries(rewardCurvesCharts(curves, `reward model ${phase}`))) await sink.put(name, png);
      const metrics: Record<string, number> = {
        steps: trainer.step,
        initialLoss: session.initialLoss,
        finalLoss: session.finalLoss,
        pairs: train.pairs.length,
        pairsTruncated: train.truncated,
        accuracyBefore: first.trainAccuracy,
        accuracyAfter: final.trainAccuracy,
        seconds: session.seconds(),
      };
      if (heldOut) {
        metrics.heldOutPairs = heldOut.pairs.length;
        metrics.heldOutAccuracyBefore = first.heldOutAccuracy ?? Number.NaN;
        metrics.heldOutAccuracyAfter = final.heldOutAccuracy ?? Number.NaN;
      }
      return await this.finish('reward-model', sink, trainer, metrics, { init: spec.init ?? null, weights: spec.weights, phase, maxLength: limit });
    } finally {
      trainer?.dispose();
      disposeModel(model);
    }
  }

  /**
   * PPO rounds against a frozen copy of the starting policy. Rollouts are scored as texts (the prompt
   * and the decoded response) by `control.reward`, by default the spec's reward model in process;
   * behind `RewardService.Score` the same function scores the same way. Cancel stops within one
   * decoding step, the reward call or one update. Resume checkpoints are written at round ends; a
   * drain mid-round abandons that round and hands back the last round-end marker.
   */
  async runPpo(input: PpoSpecInput, control: PpoJobControl = {}): Promise<EngineJob> {
    const spec = parseSpec(PpoSpec, input, 'PPO');
    await initBackend(this.options.backend);
    const sink = await createStoreCheckpoint(this.store, spec.runId, spec.stage);
    const resumed = await this.resumeTrainer(control, 'ppo', spec.runId, spec.stage);
    const start = await this.loadInit(spec.policy, { lmHead: true, valueHead: true }, spec.seed);
    const policy = resumed?.trainer.model ?? start;
    // The frozen reference is the starting policy (a resumed policy has moved away from it).
    const reference = spec.reference ? await this.loadInit(spec.reference, { lmHead: true, valueHead: false }, spec.seed) : resumed ? start : cloneModel(start);
    const trainer = resumed?.trainer ?? new Trainer(policy, optimConfig(spec.optimizer, spec.rounds * spec.epochs * 2), spec.seed);
    let rewardModel: Model | undefined;
    try {
      let scorer = control.reward;
      if (!scorer) {
        const { sink: rmSink } = await openCheckpoint(spec.rewardModel, this.store);
        rewardModel = await loadModel(rmSink, false);
        if (!rewardModel.params.value_w) throw new Error(`PPO spec: rewardModel: checkpoint ${spec.rewardModel} has no value head`);
        scorer = textRewardScorer(rewardModel, this.tokenizer);
      }
      const room = policy.config.contextLength - spec.maxTokens;
      const prompts = (await readPrompts(spec.data.jsonl))
        .map((text) => ({ text, ids: this.tokenizer.encodeChat([{ role: 'user', content: text }], true).ids }))
        .filter((p) => p.ids.length <= Math.min(room, spec.promptMaxLength));
      if (prompts.length === 0) throw new Error(`PPO spec: data.jsonl: no prompt fits ${room} tokens (context − maxTokens)`);
      const config = {
        klCoef: spec.klCoef,
        klEstimator: spec.klEstimator,
        gamma: spec.gamma,
        lambda: spec.lambda,
        clip: spec.clip,
        valueClip: spec.valueClip,
        epochs: spec.epochs,
        samplesPerPrompt: spec.samplesPerPrompt,
        temperature: spec.temperature,
        topP: spec.topP,
        maxTokens: spec.maxTokens,
        eos: this.tokenizer.eosId,
      };
      const totalSteps = spec.rounds * spec.epochs * PpoConfig.parse(config).minibatches;
      const rounds: PpoRoundResult[] = [...((resumed?.marker.state.rounds as PpoRoundResult[] | undefined) ?? [])];
      const session = this.session('ppo', spec, trainer, control, totalSteps, () => ({ rounds, round: rounds.length }));
      const roundSignal = control.drain && control.signal ? AbortSignal.any([control.signal, control.drain]) : (control.drain ?? control.signal);
      const tokenizer = this.tokenizer;
      const text = scorer;
      // With a KL bound: the weights each round starts from (`current`) and those of the round before
      // (`previous`), to go back to when a round's rollouts show the last update took the policy past it.
      let previous: Model | undefined;
      let current: Model | undefined;
      let klBound: { maxKl: number; exceededAtRound: number; kept: string; keptUpdates: number; keptMeanKl: number } | undefined;
      try {
        for (let round = rounds.length; round < spec.rounds; round++) {
          control.signal?.throwIfAborted();
          if (control.drain?.aborted) await session.handBack();
          const batch = spec.data.ordered
            ? Array.from({ length: spec.promptsPerRound }, (_, i) => prompts[(round * spec.promptsPerRound + i) % prompts.length])
            : Array.from({ length: spec.promptsPerRound }, () => prompts[trainer.rng.nextInt(prompts.length)]);
          const reward: RewardFn = (rollouts, options) =>
            text(rollouts.map((r) => ({ prompt: batch[r.promptIndex].text, response: tokenizer.decodeText(r.response) })), options);
          if (spec.maxKl !== undefined) {
            if (previous) disposeModel(previous);
            previous = current;
            current = cloneModel(policy);
          }
          let r: PpoRoundResult;
          try {
            r = await ppoRound(trainer, reference, batch.map((p) => p.ids), reward, config, {
              signal: roundSignal,
              totalSteps,
              label: `ppo round ${round + 1}/${spec.rounds}`,
              onProgress: session.report,
              ...(spec.maxKl !== undefined ? { maxKl: spec.maxKl } : {}),
            });
          } catch (error) {
            // Drained mid-round: the round is dropped; the next attempt redoes it from the last round end.
            if (control.drain?.aborted && !control.signal?.aborted) throw new HandedBackError(session.marker, `ppo ${spec.runId}/${spec.stage} handed back in round ${round + 1}`);
            throw error;
          }
          rounds.push(r);
          this.options.onProgress?.(`ppo round ${round + 1}/${spec.rounds} reward ${r.meanReward.toFixed(4)} kl ${r.meanKl.toFixed(4)}`);
          if (r.overKlBound) {
            // Round `round + 1` sampled from the weights round `round` made: go back to the weights that
            // round started from (its rollouts were within the bound), or keep the starting policy.
            const kept =
              round === 0
                ? 'the starting policy is already above the bound: no update made'
                : previous
                  ? `the weights before round ${round}'s update kept (its rollouts were within the bound)`
                  : `no weights from before round ${round}'s update in this attempt (resumed): the policy after it kept`;
            const reverted = round > 0 && previous !== undefined;
            if (reverted) for (const [name, param] of Object.entries(policy.params)) param.assign((previous as Model).params[name]);
            // Updates in the returned weights, and the KL measured on the rollouts of those weights.
            const keptUpdates = reverted ? round - 1 : round;
            klBound = { maxKl: spec.maxKl as number, exceededAtRound: round + 1, kept, keptUpdates, keptMeanKl: rounds[keptUpdates].meanKl };
            this.options.onProgress?.(`ppo round ${round + 1}/${spec.rounds}: KL ${r.meanKl.toFixed(4)} above the bound ${spec.maxKl}: ${kept}; stopped`);
            break;
          }
          if (round + 1 < spec.rounds && session.due()) await session.save();
        }
      } finally {
        // The snapshots go whether the rounds ended, stopped at the bound or failed.
        for (const snapshot of [previous, current]) if (snapshot) disposeModel(snapshot);
      }
      const metrics = {
        rounds: rounds.length,
        firstMeanReward: rounds[0].meanReward,
        lastMeanReward: rounds[rounds.length - 1].meanReward,
        lastMeanKl: rounds[rounds.length - 1].meanKl,
        lastEntropy: rounds[rounds.length - 1].entropy,
        lastClipFraction: rounds[rounds.length - 1].clipFraction,
        lastMeanResponseLength: rounds[rounds.length - 1].meanResponseLength,
        seconds: session.seconds(),
        // With a KL bound: the rounds whose updates the returned weights hold, and the KL measured
        // on the rollouts of those weights (the round after the last kept update).
        ...(spec.maxKl !== undefined ? { klBoundStop: klBound ? 1 : 0, keptUpdates: klBound?.keptUpdates ?? rounds.length, ...(klBound ? { keptMeanKl: klBound.keptMeanKl } : {}) } : {}),
      };
      return await this.finish('ppo', sink, trainer, metrics, {
        policy: spec.policy,
        rewardModel: spec.rewardModel,
        reference: spec.reference ?? spec.policy,
        klCoef: spec.klCoef,
        klEstimator: spec.klEstimator,
        rounds: rounds.map((r, i) => ({ round: i + 1, meanReward: r.meanReward, meanKl: r.meanKl, entropy: r.entropy, clipFraction: r.clipFraction, valueLoss: r.valueLoss, policyLoss: r.policyLoss, meanResponseLength: r.meanResponseLength, rollouts: r.rollouts, ...(r.overKlBound ? { overKlBound: true } : {}) })),
        ...(spec.maxKl !== undefined ? { maxKl: spec.maxKl, klBound: klBound ?? null } : {}),
      });
    } finally {
      trainer.dispose();
      disposeModel(policy);
      disposeModel(reference);
      if (resumed && spec.reference) disposeModel(start);
      if (rewardModel) disposeModel(rewardModel);
    }
  }

  /**
   * Scores preference pairs with a reward model (checkpoint ID or directory): the reward of each
   * pair's chosen and rejected response, read as in training (`tokenizeRecord`, cut to the model's
   * context by `fitPair`), 32 pairs a forward pass with the event loop served and `signal` checked
   * between passes. What `reward.evaluate` and `xyp reward evaluate` compute alignment rates from.
   */
  async scorePreferences(
    ref: string,
    records: readonly Pick<PreferenceRecord, 'id' | 'prompt' | 'chosen' | 'rejected' | 'category' | 'set'>[],
    options: { signal?: AbortSignal; onProgress?: (done: number, total: number) => void | Promise<void> } = {},
  ): Promise<{ model: string; scored: ScoredPreference[]; truncated: number }> {
    await initBackend(this.options.backend);
    const { ref: parsed, sink } = await openCheckpoint(ref, this.storeFor(ref));
    const model = await loadModel(sink, false);
    try {
      if (!model.params.value_w) throw new Error(`reward model ${parsed.id}: the checkpoint has no value head (not a reward model)`);
      const limit = model.config.contextLength;
      const scored: ScoredPreference[] = [];
      let truncated = 0;
      const size = 32;
      for (let start = 0; start < records.length; start += size) {
        options.signal?.throwIfAborted();
        const chunk = records.slice(start, start + size);
        const pairs = chunk.map((record) => {
          const pair = tokenizeRecord(this.tokenizer, record);
          const fitted = fitPair(pair, limit);
          if (fitted !== pair) truncated += 1;
          return fitted;
        });
        const r = pairRewards(model, pairs, size);
        chunk.forEach((record, i) => scored.push({ id: record.id, category: record.category, set: record.set, chosen: r.chosen[i], rejected: r.rejected[i] }));
        await options.onProgress?.(Math.min(records.length, start + size), records.length);
        await yieldToEventLoop();
      }
      return { model: parsed.id, scored, truncated };
    } finally {
      disposeModel(model);
    }
  }

  async generate(input: GenerateSpecInput): Promise<GeneratedText[]> {
    const spec = parseSpec(GenerateSpec, input, 'generate');
    await initBackend(this.options.backend);
    const { sink } = await openCheckpoint(spec.checkpoint, this.storeFor(spec.checkpoint));
    const model = await loadModel(sink, false);
    try {
      // A prompt longer than the context leaves for the reply keeps its last tokens (the template's
      // generation prompt stays at the end).
      const room = model.config.contextLength - spec.maxTokens;
      if (room < 1) throw new Error(`generate spec: maxTokens: ${spec.maxTokens} leaves no room for a prompt in the model's context of ${model.config.contextLength}`);
      const prompts = spec.prompts
        .map((p) => (spec.chat ? this.tokenizer.encodeChat([{ role: 'user', content: p }], true).ids : this.tokenizer.encode(p)))
        .map((ids) => (ids.length > room ? ids.slice(ids.length - room) : ids));
      const samples = generate(model, prompts, {
        n: spec.n,
        temperature: spec.temperature,
        topP: spec.topP,
        maxTokens: spec.maxTokens,
        stop: spec.stop.map((s) => this.tokenizer.encode(s)),
        eos: this.tokenizer.eosId,
        seed: spec.seed,
      });
      return samples.map((s) => ({ prompt: s.prompt, text: this.tokenizer.decodeText(s.tokens), finishReason: s.finishReason, tokens: s.tokens.length }));
    } finally {
      disposeModel(model);
    }
  }
}
