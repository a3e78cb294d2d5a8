/**
 * Kubernetes manifests for the real-scale stack:
 *
 * - CPT and SFT: a Kubeflow `PyTorchJob` (kubeflow.org/v1) running Megatron-LM's `pretrain_gpt.py`
 *   under `torchrun`. The training operator sets `PET_NNODES`, `PET_NODE_RANK`, `PET_MASTER_ADDR`,
 *   `PET_MASTER_PORT` and, from `spec.nprocPerNode`, `PET_NPROC_PER_NODE`; torchrun reads its
 *   arguments from those `PET_*` variables, so the command carries none of them.
 * - Reward model and PPO: a KubeRay `RayJob` (ray.io/v1) running OpenRLHF. PPO's entrypoint is
 *   `python3 -m openrlhf.cli.train_ppo_ray`, which places actor, critic, reference, reward model
 *   and vLLM engines on the Ray cluster itself. `openrlhf.cli.train_rm` is a DeepSpeed script, not
 *   a Ray program: it runs under the `deepspeed` launcher on one node, and `entrypointNumGpus`
 *   makes Ray schedule the entrypoint onto a GPU worker.
 *
 * Flags are those of Megatron-LM's `megatron/training/arguments.py` and OpenRLHF's
 * `openrlhf/cli/train_rm.py` and `train_ppo_ray.py` argument parsers.
 */
import type { Architecture, CausalLmSpec, KubernetesObject, PpoSpec, Resources, RewardModelSpec, SftSpec } from '@xyp/contracts';
import { joinPosix } from './posix-path';

export interface RenderOptions {
  /** Where Megatron-LM is checked out inside the image (`pretrain_gpt.py` lives there). */
  megatronDir: string;
  /** Ray version of the image, for `rayClusterSpec.rayVersion`. */
  rayVersion: string;
}

/** What `ClusterEngine` renders with unless told otherwise. */
export const DEFAULT_RENDER_OPTIONS: RenderOptions = { megatronDir: '/opt/megatron-lm', rayVersion: '2.41.0' };

/**
 * Per-job changes to a Megatron job, for jobs that are one part of a longer run (the stages of a
 * CPT mixture plan): its own name and `--save` directory, and an LR schedule over `lrDecayIters`
 * iterations instead of this job's `--train-iters`.
 */
export interface MegatronJobOverrides {
  /** `metadata.name` (default `<runId>-cpt` / `<runId>-sft`, with the stage's instance: `jobName`). */
  name?: string;
  /** `--save` directory (default `checkpointDir(resources, runId, stage)`). */
  save?: string;
  /**
   * `--lr-decay-iters`: the length of the whole run's cosine schedule; warm-up is then capped by it
   * rather than by `steps`, so every part renders the same schedule (Megatron asserts a resumed
   * checkpoint's scheduler matches the arguments).
   */
  lrDecayIters?: number;
  /** Extra labels on the object. */
  labels?: Record<string, string>;
}

const LABEL_PREFIX = 'xyp.io';

/** 32-bit FNV-1a over the UTF-16 code units of `text`. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return hash;
}

/**
 * A DNS-1035 name within KubeRay's 47-character limit for RayJobs (the stricter of the two CRDs):
 * `<runId>-<suffix>`, and for a stage instance (`rlhf.ppo#round-2`) `<runId>-<suffix>-<instance>`,
 * so that the instances of one stage in one run (PEI rounds, reward phases and seeds) get jobs of
 * their own. An instance that is not already a short DNS label (lower case, digits, `-`, at most
 * 16 characters) is cut to one and followed by 6 hex digits of its 32-bit FNV-1a hash, so two
 * instances do not share a name; the run id gives up characters first.
 */
export function jobName(runId: string, suffix: string, stage?: string): string {
  const instance = stage?.includes('#') ? stage.slice(stage.indexOf('#') + 1) : '';
  let tail = suffix;
  if (instance) {
    const label = instance.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 16).replace(/-+$/, '');
    tail += label === instance ? `-${label}` : `-${label ? `${label}-` : ''}${fnv1a(instance).toString(16).padStart(8, '0').slice(0, 6)}`;
  }
  const room = 47 - tail.length - 1;
  return `${runId.slice(0, room).replace(/-+$/, '')}-${tail}`;
}

function metadata(name: string, r: Resources, runId: string, stage: string): KubernetesObject['metadata'] {
  return {
    name,
    namespace: r.namespace,
    // A label value cannot hold `#`: a stage instance (`reward.train#finetune`) is labelled `reward.train.finetune`.
    labels: { 'app.kubernetes.io/managed-by': 'xyp', [`${LABEL_PREFIX}/run-id`]: runId, [`${LABEL_PREFIX}/stage`]: stage.replace('#', '.') },
  };
}

/** A path inside the shared volume: relative paths are taken from its mount point. */
export function onVolume(r: Resources, path: string): string {
  return path.startsWith('/') ? path : joinPosix(r.mountPath, path);
}

export function checkpointDir(r: Resources, runId: string, stage: string): string {
  // As in the store: `reward.train#finetune` → `reward.train/finetune`.
  return joinPosix(r.mountPath, 'checkpoints', runId, ...stage.split('#'));
}

function requireImage(r: Resources, what: string): string {
  if (!r.image) throw new Error(`${what} spec: resources.image: the cluster engine needs a container image`);
  return r.image;
}

interface PodOptions {
  containerName: string;
  image: string;
  command?: string[];
  gpus: number;
  ports?: { containerPort: number; name: string }[];
  env?: { name: string; value: string }[];
}

/** A pod template with the shared volume and a memory-backed `/dev/shm` (NCCL and dataloaders need more than the 64 MiB default). */
function podTemplate(r: Resources, o: PodOptions): Record<string, unknown> {
  const container: Record<string, unknown> = {
    name: o.containerName,
    image: o.image,
    ...(o.command ? { command: o.command } : {}),
    ...(o.env ? { env: o.env } : {}),
    ...(o.ports ? { ports: o.ports } : {}),
    resources: o.gpus > 0 ? { limits: { 'nvidia.com/gpu': o.gpus }, requests: { 'nvidia.com/gpu': o.gpus } } : { requests: { cpu: '2', memory: '8Gi' } },
    volumeMounts: [
      { name: 'shared', mountPath: r.mountPath },
      { name: 'dshm', mountPath: '/dev/shm' },
    ],
  };
  return {
    spec: {
      ...(r.serviceAccount ? { serviceAccountName: r.serviceAccount } : {}),
      containers: [container],
      volumes: [
        { name: 'shared', persistentVolumeClaim: { claimName: r.volumeClaim } },
        { name: 'dshm', emptyDir: { medium: 'Memory' } },
      ],
    },
  };
}

/** Megatron's parallel layout checks (`megatron/training/arguments.py` asserts the same). */
function checkMegatronLayout(what: string, a: Architecture, r: Resources, batchSize: number, microBatchSize: number): number {
  const world = r.nodes * r.gpusPerNode;
  const modelParallel = r.tensorParallel * r.pipelineParallel;
  if (world % modelParallel !== 0) throw new Error(`${what} spec: resources: ${world} GPUs are not divisible by tensor × pipeline parallel = ${modelParallel}`);
  const dataParallel = world / modelParallel;
  if (a.heads % r.tensorParallel !== 0) throw new Error(`${what} spec: architecture.heads ${a.heads} is not divisible by resources.tensorParallel ${r.tensorParallel}`);
  if (a.layers % r.pipelineParallel !== 0) throw new Error(`${what} spec: architecture.layers ${a.layers} is not divisible by resources.pipelineParallel ${r.pipelineParallel}`);
  if (batchSize % (microBatchSize * dataParallel) !== 0) {
    throw new Error(`${what} spec: batchSize ${batchSize} is not divisible by microBatchSize × data parallel = ${microBatchSize} × ${dataParallel}`);
  }
  return dataParallel;
}

/** `--data-path`: `prefix ...`, or `weight prefix ...` when any weight is given (Megatron's blend syntax; weights to 6 significant digits). */
function dataPathArgs(r: Resources, data: { prefix: string; weight?: number }[]): string[] {
  const weighted = data.some((d) => d.weight !== undefined);
  return data.flatMap((d) => (weighted ? [arg(d.weight ?? 1), onVolume(r, d.prefix)] : [onVolume(r, d.prefix)]));
}

/** `pretrain_gpt.py` arguments for a Llama-style model (RMSNorm, SwiGLU, RoPE, untied embeddings, no biases). */
export function megatronArgs(spec: CausalLmSpec | SftSpec, what: string, finetune: boolean, overrides: MegatronJobOverrides = {}): string[] {
  const r = spec.resources;
  const a = spec.architecture;
  if (!spec.data.megatron) throw new Error(`${what} spec: data.megatron: the cluster engine trains on Megatron shards (prefixes of .bin/.idx pairs)`);
  if (!spec.tokenizer) throw new Error(`${what} spec: tokenizer: the cluster engine needs a Hugging Face tokenizer directory (--tokenizer-model)`);
  // The local engine's in-the-loop mixtures re-set weights from losses during one job; on the
  // cluster each mixture stage (or SFT epoch) is a job of its own with a weighted data.megatron.
  if ('mixture' in spec && spec.mixture !== undefined) {
    throw new Error(`${what} spec: mixture: re-setting the mixture inside one job is local only; on the cluster render one job per stage with renderCptMixturePlan`);
  }
  if ('epochs' in spec && spec.epochs !== undefined) {
    throw new Error(
      `${what} spec: epochs: per-epoch SFT ratios are re-set by the local engine only; on the cluster give steps and data.megatron weighted per category (megatronCategoryBlend of the ratios), one job per epoch`,
    );
  }
  const steps = spec.steps;
  if (steps === undefined) throw new Error(`${what} spec: steps: the cluster engine needs the number of optimiser steps (--train-iters)`);
  checkMegatronLayout(what, a, r, spec.batchSize, spec.microBatchSize);
  const o = spec.optimizer;
  const { lrDecayIters } = overrides;
  if (lrDecayIters !== undefined && !(Number.isInteger(lrDecayIters) && lrDecayIters >= steps)) {
    throw new Error(`${what} spec: lrDecayIters ${lrDecayIters} must be an integer of at least steps (${steps})`);
  }
  const args = [
    ['--tensor-model-parallel-size', r.tensorParallel],
    ['--pipeline-model-parallel-size', r.pipelineParallel],
    ['--num-layers', a.layers],
    ['--hidden-size', a.width],
    ['--num-attention-heads', a.heads],
    ...(a.queryGroups ? [['--group-query-attention'], ['--num-query-groups', a.queryGroups]] : []),
    ...(a.ffnHidden ? [['--ffn-hidden-size', a.ffnHidden]] : []),
    ['--seq-length', a.context],
    ['--max-position-embeddings', a.context],
    ['--position-embedding-type', 'rope'],
    ...(a.ropeBase ? [['--rotary-base', a.ropeBase]] : []),
    ['--normalization', 'RMSNorm'],
    ['--swiglu'],
    ['--untie-embeddings-and-output-weights'],
    ['--disable-bias-linear'],
    ['--micro-batch-size', spec.microBatchSize],
    ['--global-batch-size', spec.batchSize],
    ['--train-iters', steps],
    ['--lr', o.lr],
    ['--min-lr', o.minLr ?? o.lr / 10],
    ['--lr-decay-style', 'cosine'],
    ...(lrDecayIters !== undefined ? [['--lr-decay-iters', lrDecayIters]] : []),
    ['--lr-warmup-iters', Math.min(o.warmupSteps, lrDecayIters ?? steps)],
    ['--weight-decay', o.weightDecay],
    ['--clip-grad', o.clipNorm],
    ['--bf16'],
    ['--seed', spec.seed],
    ['--data-path', ...dataPathArgs(r, spec.data.megatron)],
    // All data trains; with no validation split, evaluation is off.
    ['--split', '100,0,0'],
    ['--eval-iters', 0],
    ['--tokenizer-type', 'HuggingFaceTokenizer'],
    ['--tokenizer-model', onVolume(r, spec.tokenizer)],
    ['--save', overrides.save ?? checkpointDir(r, spec.runId, spec.stage)],
    ['--save-interval', Math.max(1, Math.min(1000, steps))],
    ['--log-interval', 1],
    ...(spec.init ? [['--load', onVolume(r, spec.init)]] : []),
    // Fine-tuning starts at iteration 0 without the base run's optimizer and RNG state.
    ...(finetune ? [['--finetune']] : []),
  ];
  return args.flat().map(arg);
}

/** A command-line value: numbers to 6 significant digits (`3e-4 / 10` prints as 0.00003, not 0.000030000000000000004). */
function arg(value: string | number): string {
  return typeof value === 'number' && !Number.isInteger(value) ? String(Number(value.toPrecision(6))) : String(value);
}

export function renderPyTorchJob(spec: CausalLmSpec | SftSpec, kind: 'cpt' | 'sft', options: RenderOptions, overrides: MegatronJobOverrides = {}): KubernetesObject {
  const what = kind === 'cpt' ? 'causal LM' : 'SFT';
  const r = spec.resources;
  const image = requireImage(r, what);
  const args = megatronArgs(spec, what, kind === 'sft', overrides);
  const template = podTemplate(r, {
    containerName: 'pytorch',
    image,
    command: ['torchrun', joinPosix(options.megatronDir, 'pretrain_gpt.py'), ...args],
    gpus: r.gpusPerNode,
    // Megatron requires one CUDA connection per device for its tensor-parallel communication overlap.
    env: [{ name: 'CUDA_DEVICE_MAX_CONNECTIONS', value: '1' }],
  });
  const replicas: Record<string, unknown> = { Master: { replicas: 1, restartPolicy: 'OnFailure', template } };
  if (r.nodes > 1) replicas.Worker = { replicas: r.nodes - 1, restartPolicy: 'OnFailure', template };
  const meta = metadata(overrides.name ?? jobName(spec.runId, kind, spec.stage), r, spec.runId, spec.stage);
  if (overrides.labels) meta.labels = { ...meta.labels, ...overrides.labels };
  return {
    apiVersion: 'kubeflow.org/v1',
    kind: 'PyTorchJob',
    metadata: meta,
    spec: {
      nprocPerNode: String(r.gpusPerNode),
      runPolicy: { cleanPodPolicy: 'None', backoffLimit: 3 },
      pytorchReplicaSpecs: replicas,
    },
  };
}

/** A Ray cluster: a CPU head (GCS, dashboard, client ports as in KubeRay's samples) and one GPU worker group. */
function rayCluster(r: Resources, image: string, options: RenderOptions): Record<string, unknown> {
  return {
    rayVersion: options.rayVersion,
    headGroupSpec: {
      rayStartParams: { 'dashboard-host': '0.0.0.0', 'num-gpus': '0' },
      template: podTemplate(r, {
        containerName: 'ray-head',
        image,
        gpus: 0,
        ports: [
          { containerPort: 6379, name: 'gcs-server' },
          { containerPort: 8265, name: 'dashboard' },
          { containerPort: 10001, name: 'client' },
        ],
      }),
    },
    workerGroupSpecs: [
      {
        groupName: 'gpu',
        replicas: r.nodes,
        minReplicas: r.nodes,
        maxReplicas: r.nodes,
        rayStartParams: {},
        template: podTemplate(r, { containerName: 'ray-worker', image, gpus: r.gpusPerNode }),
      },
    ],
  };
}

/** POSIX shell quoting, for the single-string RayJob entrypoint. */
function shellQuote(arg: string): string {
  return /^[A-Za-z0-9_./:=,+-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

function rayJob(name: string, spec: { runId: string; stage: string; resources: Resources }, entrypoint: string[], image: string, options: RenderOptions, extra: Record<string, unknown> = {}): KubernetesObject {
  const r = spec.resources;
  return {
    apiVersion: 'ray.io/v1',
    kind: 'RayJob',
    metadata: metadata(name, r, spec.runId, spec.stage),
    spec: {
      entrypoint: entrypoint.map(shellQuote).join(' '),
      submissionMode: 'K8sJobMode',
      shutdownAfterJobFinishes: true,
      ttlSecondsAfterFinished: 600,
      backoffLimit: 0,
      ...extra,
      rayClusterSpec: rayCluster(r, image, options),
    },
  };
}

export function renderRewardModelJob(spec: RewardModelSpec, options: RenderOptions): KubernetesObject {
  const r = spec.resources;
  const image = requireImage(r, 'reward model');
  if (r.nodes !== 1) throw new Error(`reward model spec: resources.nodes: openrlhf.cli.train_rm runs under the DeepSpeed launcher on one node (got ${r.nodes})`);
  if (!spec.init) throw new Error('reward model spec: init: the cluster engine fine-tunes a base model (openrlhf --pretrain); give its path on the shared volume');
  // OpenRLHF's train_rm covers L_BT natively (PairWiseLoss, `--loss sigmoid`; LogExpLoss is the same
  // function written as log(1 + e^{−Δ})), with the margin through `--margin_loss` (a `margin` key per
  // pair). UFRM's inverse-RL and SimCSE terms and TRL-style reward centering are not in it.
  const missing = [
    spec.weights.irl > 0 ? 'weights.irl (inverse-RL term)' : undefined,
    spec.weights.cl > 0 ? 'weights.cl (SimCSE term: needs a second forward pass with independent dropout)' : undefined,
    spec.weights.center > 0 ? 'weights.center (reward centering)' : undefined,
    spec.pooling === 'mean' ? 'pooling (mean pooling: OpenRLHF reads the reward at the last token)' : undefined,
  ].filter((x): x is string => x !== undefined);
  const weightsToZero = missing.filter((m) => m.startsWith('weights.')).map((m) => m.split(' ')[0]);
  if (missing.length > 0) {
    throw new Error(
      `reward model spec: ${missing.join(', ')}: OpenRLHF train_rm implements the Bradley-Terry term (with --margin_loss) at the last token only; set ${[weightsToZero.length > 0 ? `${weightsToZero.join(' and ')} to 0` : undefined, spec.pooling === 'mean' ? 'pooling to last' : undefined].filter(Boolean).join(' and ')}, or train with the local engine`,
    );
  }
  const o = spec.optimizer;
  const args = [
    ['deepspeed', '--num_gpus', r.gpusPerNode, '--module', 'openrlhf.cli.train_rm'],
    ['--pretrain', onVolume(r, spec.init)],
    ['--dataset', onVolume(r, spec.data.jsonl)],
    ['--prompt_key', 'prompt'],
    ['--chosen_key', 'chosen'],
    ['--rejected_key', 'rejected'],
    ['--apply_chat_template'],
    ['--max_len', spec.maxLength],
    // One epoch over steps × batchSize pairs is exactly `steps` optimiser steps
    // (train_rm: num_update_steps_per_epoch = len(dataset) // train_batch_size).
    ['--max_samples', spec.steps * spec.batchSize],
    ['--max_epochs', 1],
    ['--train_batch_size', spec.batchSize],
    ['--micro_train_batch_size', spec.microBatchSize],
    ['--learning_rate', o.lr],
    ['--l2', o.weightDecay],
    ['--max_norm', o.clipNorm],
    ['--loss', 'sigmoid'],
    ...(spec.weights.margin ? [['--margin_loss']] : []),
    ['--zero_stage', 3],
    ['--bf16'],
    ['--gradient_checkpointing'],
    ['--seed', spec.seed],
    ['--save_path', checkpointDir(r, spec.runId, spec.stage)],
  ];
  return rayJob(jobName(spec.runId, 'rm', spec.stage), spec, args.flat().map(arg), image, options, { entrypointNumGpus: r.gpusPerNode });
}

export function renderPpoJob(spec: PpoSpec, options: RenderOptions): KubernetesObject {
  const r = spec.resources;
  const image = requireImage(r, 'PPO');
  const gpus = r.nodes * r.gpusPerNode;
  if (gpus % r.tensorParallel !== 0) throw new Error(`PPO spec: resources: ${gpus} GPUs are not divisible by resources.tensorParallel ${r.tensorParallel} (vLLM tensor parallel size)`);
  const o = spec.optimizer;
  const perRole = (role: string) => [
    [`--${role}_num_nodes`, r.nodes],
    [`--${role}_num_gpus_per_node`, r.gpusPerNode],
  ];
  const args = [
    ['python3', '-m', 'openrlhf.cli.train_ppo_ray'],
    // Hybrid engine: every model and the vLLM engines share all GPUs, sleeping while others run.
    ...perRole('ref'),
    ...perRole('reward'),
    ...perRole('critic'),
    ...perRole('actor'),
    ['--colocate_all_models'],
    ['--vllm_num_engines', gpus / r.tensorParallel],
    ['--vllm_tensor_parallel_size', r.tensorParallel],
    ['--vllm_gpu_memory_utilization', 0.5],
    ['--vllm_enable_sleep'],
    ['--deepspeed_enable_sleep'],
    ['--pretrain', onVolume(r, spec.policy)],
    ['--reward_pretrain', onVolume(r, spec.rewardModel)],
    ['--prompt_data', onVolume(r, spec.data.jsonl)],
    ['--input_key', 'prompt'],
    ['--apply_chat_template'],
    ['--save_path', checkpointDir(r, spec.runId, spec.stage)],
    ['--num_episodes', spec.rounds],
    ['--rollout_batch_size', spec.promptsPerRound],
    ['--n_samples_per_prompt', spec.samplesPerPrompt],
    ['--train_batch_size', spec.batchSize],
    ['--micro_train_batch_size', spec.microBatchSize],
    ['--micro_rollout_batch_size', spec.microBatchSize],
    ['--max_epochs', spec.epochs],
    ['--prompt_max_len', spec.promptMaxLength],
    ['--generate_max_len', spec.maxTokens],
    ['--advantage_estimator', 'gae'],
    ['--init_kl_coef', spec.klCoef],
    // The per-token KL of the reward: k1 = log π − log π_ref, k3 = exp(d) − d − 1 (OpenRLHF's names).
    ['--kl_estimator', spec.klEstimator],
    ['--eps_clip', spec.clip],
    ['--value_clip', spec.valueClip],
    ['--gamma', spec.gamma],
    ['--lambd', spec.lambda],
    ['--temperature', spec.temperature],
    ['--top_p', spec.topP],
    ['--actor_learning_rate', o.lr],
    // OpenRLHF's defaults keep the critic's rate 9× the actor's (9e-6 and 1e-6).
    ['--critic_learning_rate', o.lr * 9],
    ['--l2', o.weightDecay],
    ['--max_norm', o.clipNorm],
    ['--zero_stage', 3],
    ['--bf16'],
    ['--gradient_checkpointing'],
    ['--normalize_reward'],
    ['--seed', spec.seed],
  ];
  return rayJob(jobName(spec.runId, 'ppo', spec.stage), spec, args.flat().map(arg), image, options);
}
