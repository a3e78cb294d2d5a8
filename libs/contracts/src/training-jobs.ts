/**
 * Training job specs and the one interface over where training runs. Callers build plain specs
 * (zod-validated objects) and call a `TrainingEngine`; `LocalEngine` (`@xyp/local-engine`) runs them
 * on the CPU with the TF.js engine, `ClusterEngine` (`@xyp/cluster`) renders Kubernetes jobs for the
 * real-scale stack (Megatron-LM for CPT/SFT, OpenRLHF on Ray for the reward model and PPO). A spec
 * holds what both need; fields only one engine reads say so.
 */
import { z } from 'zod';
import { StageManifest } from './artifacts';
import { RunId, StageRefFormat } from './ids';

/**
 * Model shape. The local engine builds a fresh model of this shape when there is no `init`; the
 * cluster engine passes it to Megatron-LM (`--num-layers`, `--hidden-size`, ...), where it must
 * match the base checkpoint.
 */
export const Architecture = z.object({
  layers: z.number().int().positive().default(2),
  width: z.number().int().positive().default(64),
  heads: z.number().int().positive().default(4),
  /** Tokens per sequence (`--seq-length`, the bucket length of the Megatron shards). */
  context: z.number().int().positive().default(128),
  /** Cluster only: grouped-query attention groups (`--num-query-groups`); unset means multi-head. */
  queryGroups: z.number().int().positive().optional(),
  /** Cluster only: MLP width (`--ffn-hidden-size`); unset lets Megatron use 4 × width. */
  ffnHidden: z.number().int().positive().optional(),
  /** Cluster only: rotary base (`--rotary-base`; Llama 3 uses 500000). */
  ropeBase: z.number().positive().optional(),
});
export type Architecture = z.output<typeof Architecture>;

export const Optimizer = z.object({
  lr: z.number().positive().default(3e-4),
  minLr: z.number().nonnegative().optional(),
  warmupSteps: z.number().int().nonnegative().default(10),
  weightDecay: z.number().nonnegative().default(0.1),
  clipNorm: z.number().nonnegative().default(1),
});

/** Where a cluster job runs and on what; the local engine ignores it. */
export const Resources = z.object({
  namespace: z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'a DNS-1123 label').default('default'),
  image: z.string().min(1).optional(),
  nodes: z.number().int().positive().default(1),
  gpusPerNode: z.number().int().positive().default(8),
  tensorParallel: z.number().int().positive().default(1),
  pipelineParallel: z.number().int().positive().default(1),
  /** A ReadWriteMany volume holding data and checkpoints, mounted at `mountPath` in every pod. */
  volumeClaim: z.string().min(1).default('xyp-shared'),
  mountPath: z.string().startsWith('/').default('/data'),
  serviceAccount: z.string().min(1).optional(),
});
export type Resources = z.output<typeof Resources>;

/** Megatron indexed-dataset prefixes (`<prefix>.bin` / `<prefix>.idx`) with optional blend weights. */
export const MegatronData = z.array(z.object({ prefix: z.string().min(1), weight: z.number().positive().optional() })).min(1);

/**
 * Local only: packed shards of the corpus stage. `source` is the output directory of `xyp corpus
 * bucket` or the run id of a committed `corpus.bucket` stage; `bucket` the length to read (needed
 * when the run has several non-empty buckets); `maxSequences` reads only the first packed sequences.
 */
export const LocalShards = z.object({
  source: z.string().min(1),
  bucket: z.number().int().positive().optional(),
  maxSequences: z.number().int().positive().optional(),
  /** With `mixture`: the bucket lengths to read (default every non-empty bucket); `bucket` is then ignored. */
  buckets: z.array(z.number().int().positive()).min(1).optional(),
});

/**
 * Local only: continued pretraining with the dynamic data mixture in the loop (`trainCptMixture` of
 * `@xyp/local-engine`). The job's `steps` are cut into `stages`; at each boundary the controller of
 * `@xyp/mixture` (`nextMixture`, as `corpus.mix`) re-sets the per-category sampling weights from the
 * stage's per-category training loss. Needs `data.shards` (the category sidecar labels each packed
 * sequence).
 */
export const CptMixture = z.object({
  stages: z.number().int().positive().default(3),
  /** First-stage weights per category; default: each category's share of the training tokens. */
  weights: z.record(z.string().min(1), z.number().nonnegative()).optional(),
  /** Controller settings (`MixtureConfig` of `@xyp/mixture`: learningRate, minShare, maxShare, maxStep, ...). */
  config: z.record(z.string(), z.unknown()).default({}),
  /** Share of packed sequences held out for the validation loss (whole sequences). */
  validationFraction: z.number().min(0).lt(1).default(0.1),
  /** Validation rows scored per category at each evaluation. */
  validationRows: z.number().int().positive().default(16),
  /** Validation loss every this many steps (and at the start and each stage end). */
  evalEvery: z.number().int().positive().default(10),
  /** A training-loss line per category every this many steps. */
  logEvery: z.number().int().positive().default(2),
});
export type CptMixture = z.output<typeof CptMixture>;

/**
 * Local only: SFT in epochs whose category ratios are re-set after each epoch (`trainSftEpochs` of
 * `@xyp/local-engine`, `nextSftRatios` of `@xyp/mixture`). The job's steps are
 * `count × ⌈examplesPerEpoch / batchSize⌉`; `steps` is then not given.
 */
export const SftEpochs = z.object({
  count: z.number().int().positive().default(3),
  /** Conversations drawn per epoch (default: the training set's size). */
  examplesPerEpoch: z.number().int().positive().optional(),
  /** First-epoch ratios per category; default: each category's share of the training conversations. */
  ratios: z.record(z.string().min(1), z.number().nonnegative()).optional(),
  config: z.record(z.string(), z.unknown()).default({}),
});
export type SftEpochs = z.output<typeof SftEpochs>;

const JobBase = {
  runId: RunId,
  steps: z.number().int().positive(),
  /** Sequences per optimiser step (Megatron `--global-batch-size`, OpenRLHF `--train_batch_size`). */
  batchSize: z.number().int().positive().default(8),
  /** Cluster only: sequences per GPU per forward pass. */
  microBatchSize: z.number().int().positive().default(1),
  seed: z.number().int().nonnegative().default(1),
  optimizer: Optimizer.default(Optimizer.parse({})),
  resources: Resources.default(Resources.parse({})),
};

export const CausalLmSpec = z.object({
  ...JobBase,
  /** The stage (or stage instance) whose folder holds the checkpoint. */
  stage: StageRefFormat.default('engine.lm'),
  /**
   * Local: a corpus JSONL (`{id, text, category}` lines, byte tokenizer) or `shards`, one bucket of
   * the corpus stage's packed Megatron datasets (`readShardRows`). Cluster: Megatron shards.
   */
  data: z.object({ jsonl: z.string().min(1).optional(), shards: LocalShards.optional(), megatron: MegatronData.optional() }),
  /** Start from this checkpoint (local: checkpoint ID or directory; cluster: Megatron `--load` directory). */
  init: z.string().min(1).optional(),
  architecture: Architecture.default(Architecture.parse({})),
  /** Cluster only: Hugging Face tokenizer (`--tokenizer-model`); the local engine uses bytes. */
  tokenizer: z.string().min(1).optional(),
  mixture: CptMixture.optional(),
});
export type CausalLmSpecInput = z.input<typeof CausalLmSpec>;
export type CausalLmSpec = z.output<typeof CausalLmSpec>;

export const SftSpec = z.object({
  ...JobBase,
  /** Optimiser steps; with `epochs` (local) they follow from the epochs and are not given. */
  steps: z.number().int().positive().optional(),
  stage: StageRefFormat.default('engine.sft'),
  /**
   * Local: `{category, messages}` JSONL, and `heldOut` in the same format (per-category held-out loss
   * after every epoch, the over-fitting test). Cluster: Megatron shards of the packed SFT conversations.
   */
  data: z.object({ jsonl: z.string().min(1).optional(), heldOut: z.string().min(1).optional(), megatron: MegatronData.optional() }),
  epochs: SftEpochs.optional(),
  /** The policy to fine-tune (the CPT checkpoint); local: a fresh model of `architecture` when absent. */
  init: z.string().min(1).optional(),
  architecture: Architecture.default(Architecture.parse({})),
  tokenizer: z.string().min(1).optional(),
  /** Local only: a per-category loss line every this many steps. */
  logEvery: z.number().int().positive().default(10),
});
export type SftSpecInput = z.input<typeof SftSpec>;
export type SftSpec = z.output<typeof SftSpec>;

/**
 * UFRM term weights `L = bt·L_BT + irl·L_IRL + cl·L_CL` and the SimCSE temperature τ (the losses are
 * in `@xyp/ufrm`). OpenRLHF's `train_rm` implements the Bradley-Terry term only.
 */
export const UfrmWeights = z.object({
  bt: z.number().nonnegative().default(1),
  irl: z.number().nonnegative().default(0),
  cl: z.number().nonnegative().default(0),
  /** SimCSE temperature τ: similarities are divided by it. */
  tau: z.number().positive().default(0.05),
  /** Subtract each pair's label margin inside L_BT (`−log σ(r_c − r_r − m)`, OpenRLHF `PairWiseLoss(margin)`); pairs without one use 0. */
  margin: z.boolean().default(false),
  /** Reward centering coefficient: `+ center · mean((r_c + r_r)²)` (TRL `center_rewards_coefficient`). */
  center: z.number().nonnegative().default(0),
});
export type UfrmWeights = z.output<typeof UfrmWeights>;
export type UfrmWeightsInput = z.input<typeof UfrmWeights>;

export const RewardModelSpec = z.object({
  ...JobBase,
  /** The stage (or stage instance, `reward.train#finetune`) whose folder holds the checkpoint. */
  stage: StageRefFormat.default('engine.rm'),
  /**
   * Preference pairs, JSONL: `PreferenceRecord` lines (what `@xyp/preference-data` writes) or
   * `{prompt, chosen, rejected}` strings (OpenRLHF `--dataset` with `--prompt_key/--chosen_key/--rejected_key`).
   * `heldOut`, same format: pairs scored for the curves (held-out accuracy, reward means), never trained on.
   */
  data: z.object({ jsonl: z.string().min(1), heldOut: z.string().min(1).optional() }),
  /** Base model (local: checkpoint, or a fresh model of `architecture` when absent; cluster: Hugging Face model path, `--pretrain`). */
  init: z.string().min(1).optional(),
  architecture: Architecture.default(Architecture.parse({})),
  /** Local only: dropout of a fresh model (SimCSE's two views differ by their dropout masks). */
  dropout: z.number().min(0).max(0.9).default(0.1),
  /**
   * Local only: how the reward reads a sequence (the engine's `pooling`): the last token's final
   * hidden state (`last`, OpenRLHF's and TRL's reward models) or the mean over the sequence's tokens
   * (`mean`). Unset: a fresh model uses `last`, an `init` reward model keeps its own.
   */
  pooling: z.enum(['last', 'mean']).optional(),
  weights: UfrmWeights.default(UfrmWeights.parse({})),
  /**
   * Longest prompt + response in tokens (`--max_len`); a longer pair keeps its last tokens
   * (`fitPair` of `@xyp/ufrm`: the prompt loses its start).
   */
  maxLength: z.number().int().positive().default(512),
  /** Local only: held-out accuracy and reward means every this many steps (and at the first and last). */
  evalEvery: z.number().int().positive().default(25),
  /** Local only: what the curves call this job (`pretrain`, `finetune`). */
  phase: z.string().min(1).optional(),
});
export type RewardModelSpecInput = z.input<typeof RewardModelSpec>;
export type RewardModelSpec = z.output<typeof RewardModelSpec>;

export const PpoSpec = z.object({
  ...JobBase,
  stage: StageRefFormat.default('engine.ppo'),
  /** `{prompt}` JSONL (OpenRLHF `--prompt_data` with `--input_key prompt`). */
  /**
   * `{prompt}` JSONL. Local: with `ordered`, round r takes prompts `r·P … r·P + P − 1` in file order
   * (cycling), so a caller that drew them by subdomain ratios gets exactly those; else each round
   * draws P prompts uniformly with the job's seeded generator.
   */
  data: z.object({ jsonl: z.string().min(1), ordered: z.boolean().default(false) }),
  /** Local: the frozen reference policy of the KL (default: the starting policy). */
  reference: z.string().min(1).optional(),
  /** The policy to improve (local: LM checkpoint; cluster: `--pretrain`). */
  policy: z.string().min(1),
  /** The reward model (local: checkpoint with a value head; cluster: `--reward_pretrain`). */
  rewardModel: z.string().min(1),
  /** PPO rounds (local) / episodes (cluster `--num_episodes`); `steps` is ignored for PPO. */
  rounds: z.number().int().positive().default(1),
  promptsPerRound: z.number().int().positive().default(8),
  samplesPerPrompt: z.number().int().positive().default(4),
  maxTokens: z.number().int().positive().default(32),
  promptMaxLength: z.number().int().positive().default(1024),
  klCoef: z.number().nonnegative().default(0.01),
  /**
   * Per-token KL estimator of the reward penalty `−β·KL_t` and the reported KL (OpenRLHF
   * `--kl_estimator`): k1 = log π − log π_ref, k3 = exp(d) − d − 1 with d = log π_ref − log π.
   */
  klEstimator: z.enum(['k1', 'k3']).default('k1'),
  /**
   * Local only: the KL bound, nats per response (the policy against the reference, as measured on
   * each round's rollouts). A round whose rollouts are above it makes no update, the policy goes back
   * to the weights it had before the previous round's update (whose rollouts were within it), and
   * the job ends there (`klBound` in the result). Unset: no bound.
   */
  maxKl: z.number().positive().optional(),
  temperature: z.number().positive().default(1),
  topP: z.number().positive().max(1).default(1),
  clip: z.number().positive().default(0.2),
  valueClip: z.number().positive().default(0.2),
  gamma: z.number().min(0).max(1).default(1),
  lambda: z.number().min(0).max(1).default(0.95),
  epochs: z.number().int().positive().default(1),
}).omit({ steps: true });
export type PpoSpecInput = z.input<typeof PpoSpec>;
export type PpoSpec = z.output<typeof PpoSpec>;

export const GenerateSpec = z.object({
  checkpoint: z.string().min(1),
  prompts: z.array(z.string()).min(1),
  /** Wrap each prompt as one user message in the chat template. */
  chat: z.boolean().default(false),
  n: z.number().int().positive().default(1),
  temperature: z.number().min(0).default(1),
  topP: z.number().positive().max(1).default(1),
  maxTokens: z.number().int().positive().default(64),
  stop: z.array(z.string().min(1)).default([]),
  seed: z.number().int().nonnegative().default(0),
});
export type GenerateSpecInput = z.input<typeof GenerateSpec>;
export type GenerateSpec = z.output<typeof GenerateSpec>;

/** A Kubernetes object as rendered (apiVersion, kind, metadata, spec). */
export interface KubernetesObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: Record<string, unknown>;
}

export type JobKind = 'causal-lm' | 'sft' | 'reward-model' | 'ppo';

/** What a training call returns, whichever engine ran it. */
export type EngineJob =
  | {
      engine: 'local';
      kind: JobKind;
      status: 'completed';
      /** The checkpoint ID (`<runId>/<stage>`) the job wrote. */
      checkpoint: string;
      metrics: Record<string, number>;
      /**
       * The stage manifest that lists the checkpoint's files, not yet committed: the engine writes
       * objects only. The caller (a stage worker, the CLI) commits it with `commitManifest`, and only
       * then does the checkpoint exist.
       */
      manifest: StageManifest;
    }
  | {
      engine: 'cluster';
      kind: JobKind;
      /** `rendered`: dry run, manifests built and validated, nothing submitted. */
      status: 'rendered';
      /** Where the job will write its checkpoint inside the shared volume. */
      checkpoint: string;
      manifests: KubernetesObject[];
      /** The manifests as one multi-document YAML, ready for `kubectl apply -f -`. */
      yaml: string;
    }
  | {
      engine: 'cluster';
      kind: JobKind;
      /** `succeeded`: submitted, watched to success, its outputs copied into the store. */
      status: 'succeeded';
      /** Where the job wrote its checkpoint inside the shared volume. */
      checkpoint: string;
      manifests: KubernetesObject[];
      yaml: string;
      /** The object the job ran as. */
      submitted: { kind: string; namespace: string; name: string; uid?: string };
      /** Numbers from the job's `metrics.json`, when it wrote one. */
      metrics: Record<string, number>;
      /** The stage manifest listing the ingested outputs, not yet committed (as for the local engine). */
      manifest: StageManifest;
    };

export interface GeneratedText {
  prompt: number;
  text: string;
  finishReason: 'stop' | 'length';
  tokens: number;
}

export interface TrainingEngine {
  readonly name: 'local' | 'cluster';
  trainCausalLm(spec: CausalLmSpecInput): Promise<EngineJob>;
  trainSft(spec: SftSpecInput): Promise<EngineJob>;
  trainRewardModel(spec: RewardModelSpecInput): Promise<EngineJob>;
  runPpo(spec: PpoSpecInput): Promise<EngineJob>;
  generate(spec: GenerateSpecInput): Promise<GeneratedText[]>;
}

/** Parses a spec, reporting the first problem by path: `<what>: <path>: <message>`. */
export function parseSpec<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  throw new Error(`${what} spec: ${issue.path.map(String).join('.') || '(root)'}: ${issue.message}`);
}
