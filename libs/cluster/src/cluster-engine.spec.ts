import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import type { EngineJob, KubernetesObject } from '@xyp/contracts';
import { ClusterEngine } from './cluster-engine';
import { ManifestValidationError, validateManifest } from './validate';

const engine = new ClusterEngine({ dryRun: true });
const resources = { namespace: 'xuanyuan', image: 'registry.example/xyp-megatron:1', nodes: 2, gpusPerNode: 8, tensorParallel: 4, pipelineParallel: 2 };

/** The Llama-3-70B shape of XuanYuan3-70B: 80 layers, width 8192, 64 heads in 8 query groups. */
const llama70b = { layers: 80, width: 8192, heads: 64, context: 8192, queryGroups: 8, ffnHidden: 28672, ropeBase: 500000 };

function rendered(job: EngineJob): { object: KubernetesObject; yaml: string } {
  if (job.engine !== 'cluster') throw new Error('expected a cluster job');
  expect(job.status).toBe('rendered');
  expect(job.manifests).toHaveLength(1);
  return { object: job.manifests[0], yaml: job.yaml };
}

/** The value after `flag` in an argument list. */
function flag(args: string[], name: string): string | undefined {
  const at = args.indexOf(name);
  return at < 0 ? undefined : args[at + 1];
}

type Template = { spec: { containers: { name: string; image: string; command?: string[]; resources: { limits?: Record<string, number> } }[] } };

describe('cluster engine (dry run)', () => {
  it('renders continued pretraining as a Megatron-LM PyTorchJob that passes the schemas', async () => {
    const job = await engine.trainCausalLm({
      runId: 'xy3-cpt',
      steps: 1000,
      batchSize: 64,
      data: { megatron: [{ prefix: 'shards/8192/finance', weight: 0.7 }, { prefix: '/data/shards/8192/general', weight: 0.3 }] },
      tokenizer: 'tokenizers/llama3',
      init: 'checkpoints/base/megatron',
      architecture: llama70b,
      resources,
    });
    const { object, yaml } = rendered(job);
    expect(object).toMatchObject({ apiVersion: 'kubeflow.org/v1', kind: 'PyTorchJob', metadata: { name: 'xy3-cpt-cpt', namespace: 'xuanyuan' } });
    const specs = object.spec.pytorchReplicaSpecs as Record<string, { replicas: number; template: Template }>;
    expect(Object.keys(specs)).toEqual(['Master', 'Worker']);
    expect([specs.Master.replicas, specs.Worker.replicas]).toEqual([1, 1]);
    expect(object.spec.nprocPerNode).toBe('8');
    const container = specs.Master.template.spec.containers[0];
    expect(container.name).toBe('pytorch');
    expect(container.resources.limits).toEqual({ 'nvidia.com/gpu': 8 });
    const args = container.command!;
    expect(args.slice(0, 2)).toEqual(['torchrun', '/opt/megatron-lm/pretrain_gpt.py']);
    const dataAt = args.indexOf('--data-path');
    expect(args.slice(dataAt + 1, dataAt + 5)).toEqual(['0.7', '/data/shards/8192/finance', '0.3', '/data/shards/8192/general']);
    expect(flag(args, '--seq-length')).toBe('8192');
    expect(flag(args, '--tensor-model-parallel-size')).toBe('4');
    expect(flag(args, '--pipeline-model-parallel-size')).toBe('2');
    expect(flag(args, '--num-query-groups')).toBe('8');
    expect(flag(args, '--global-batch-size')).toBe('64');
    expect(flag(args, '--train-iters')).toBe('1000');
    expect(flag(args, '--load')).toBe('/data/checkpoints/base/megatron');
    expect(flag(args, '--save')).toBe('/data/checkpoints/xy3-cpt/engine.lm');
    expect(args).not.toContain('--finetune');
    expect(job.checkpoint).toBe('/data/checkpoints/xy3-cpt/engine.lm');
    expect(yaml).not.toMatch(/[*&]a\d/);
    const docs = parseAllDocuments(yaml).map((d) => d.toJSON() as unknown);
    expect(docs).toEqual([object]);
  });

  it('renders SFT as a fine-tuning PyTorchJob on one node', async () => {
    const { object } = rendered(
      await engine.trainSft({
        runId: 'xy3-sft',
        steps: 200,
        batchSize: 32,
        data: { megatron: [{ prefix: 'sft/packed' }] },
        tokenizer: 'tokenizers/llama3',
        init: 'checkpoints/xy3-cpt/engine.lm',
        architecture: llama70b,
        resources: { ...resources, nodes: 1, pipelineParallel: 1, tensorParallel: 8 },
      }),
    );
    const specs = object.spec.pytorchReplicaSpecs as Record<string, { template: Template }>;
    expect(Object.keys(specs)).toEqual(['Master']);
    const args = specs.Master.template.spec.containers[0].command!;
    expect(args).toContain('--finetune');
    expect(flag(args, '--data-path')).toBe('/data/sft/packed');
    expect(flag(args, '--load')).toBe('/data/checkpoints/xy3-cpt/engine.lm');
  });

  it('renders reward-model training as a RayJob running openrlhf.cli.train_rm on a GPU worker', async () => {
    const { object } = rendered(
      await engine.trainRewardModel({
        runId: 'xy3-rm',
        steps: 100,
        batchSize: 128,
        data: { jsonl: 'prefs/finance.jsonl' },
        init: '/models/xuanyuan3-70b-sft',
        resources: { ...resources, nodes: 1 },
      }),
    );
    expect(object).toMatchObject({ apiVersion: 'ray.io/v1', kind: 'RayJob', metadata: { name: 'xy3-rm-rm' } });
    expect(object.spec).toMatchObject({ submissionMode: 'K8sJobMode', shutdownAfterJobFinishes: true, entrypointNumGpus: 8 });
    const entry = String(object.spec.entrypoint).split(' ');
    expect(entry.slice(0, 5)).toEqual(['deepspeed', '--num_gpus', '8', '--module', 'openrlhf.cli.train_rm']);
    expect(flag(entry, '--pretrain')).toBe('/models/xuanyuan3-70b-sft');
    expect(flag(entry, '--dataset')).toBe('/data/prefs/finance.jsonl');
    expect(flag(entry, '--chosen_key')).toBe('chosen');
    expect(flag(entry, '--max_samples')).toBe(String(100 * 128));
    expect(flag(entry, '--save_path')).toBe('/data/checkpoints/xy3-rm/engine.rm');
    expect(entry).not.toContain('--margin_loss');
    const withMargin = rendered(
      await engine.trainRewardModel({ runId: 'xy3-rm', steps: 1, data: { jsonl: 'p.jsonl' }, init: '/models/m', weights: { margin: true }, resources: { ...resources, nodes: 1 } }),
    );
    expect(String(withMargin.object.spec.entrypoint).split(' ')).toContain('--margin_loss');
    const cluster = object.spec.rayClusterSpec as { workerGroupSpecs: { replicas: number; template: Template }[] };
    expect(cluster.workerGroupSpecs[0].template.spec.containers[0].resources.limits).toEqual({ 'nvidia.com/gpu': 8 });
  });

  it('renders PPO as a RayJob running openrlhf.cli.train_ppo_ray across the Ray cluster', async () => {
    const { object } = rendered(
      await engine.runPpo({
        runId: 'xy3-ppo',
        data: { jsonl: 'prompts/finance.jsonl' },
        policy: '/models/xuanyuan3-70b-sft',
        rewardModel: '/data/checkpoints/xy3-rm/engine.rm',
        rounds: 2,
        promptsPerRound: 1024,
        samplesPerPrompt: 4,
        maxTokens: 1024,
        klCoef: 0.02,
        batchSize: 256,
        resources,
      }),
    );
    const entry = String(object.spec.entrypoint).split(' ');
    expect(entry.slice(0, 3)).toEqual(['python3', '-m', 'openrlhf.cli.train_ppo_ray']);
    expect(flag(entry, '--actor_num_nodes')).toBe('2');
    expect(flag(entry, '--vllm_num_engines')).toBe('4');
    expect(flag(entry, '--vllm_tensor_parallel_size')).toBe('4');
    expect(flag(entry, '--reward_pretrain')).toBe('/data/checkpoints/xy3-rm/engine.rm');
    expect(flag(entry, '--prompt_data')).toBe('/data/prompts/finance.jsonl');
    expect(flag(entry, '--init_kl_coef')).toBe('0.02');
    expect(flag(entry, '--kl_estimator')).toBe('k1');
    const k3 = rendered(
      await engine.runPpo({ runId: 'xy3-ppo', data: { jsonl: 'p.jsonl' }, policy: '/models/m', rewardModel: '/models/rm', klCoef: 0.02, klEstimator: 'k3', resources }),
    );
    expect(flag(String(k3.object.spec.entrypoint).split(' '), '--kl_estimator')).toBe('k3');
    expect(flag(entry, '--n_samples_per_prompt')).toBe('4');
    expect(flag(entry, '--num_episodes')).toBe('2');
    expect(entry).toContain('--colocate_all_models');
    const cluster = object.spec.rayClusterSpec as { workerGroupSpecs: { replicas: number }[] };
    expect(cluster.workerGroupSpecs[0].replicas).toBe(2);
  });

  it('refuses specs Megatron or OpenRLHF would reject, naming the field', async () => {
    const base = { runId: 'xy3-bad', steps: 10, data: { megatron: [{ prefix: 'a' }] }, tokenizer: 't', architecture: llama70b };
    await expect(engine.trainCausalLm({ ...base, resources: { ...resources, image: undefined } })).rejects.toThrow(/resources.image/);
    await expect(engine.trainCausalLm({ ...base, batchSize: 5, resources })).rejects.toThrow(/batchSize 5 is not divisible by microBatchSize × data parallel = 1 × 2/);
    await expect(engine.trainCausalLm({ ...base, resources: { ...resources, tensorParallel: 3 } })).rejects.toThrow(/not divisible by tensor × pipeline parallel/);
    await expect(engine.trainCausalLm({ ...base, data: { jsonl: 'x.jsonl' }, resources })).rejects.toThrow(/data.megatron/);
    await expect(
      engine.trainRewardModel({ runId: 'xy3-bad', steps: 1, data: { jsonl: 'p' }, init: 'm', weights: { irl: 0.1 }, resources: { ...resources, nodes: 1 } }),
    ).rejects.toThrow(/weights.irl \(inverse-RL term\): OpenRLHF train_rm implements the Bradley-Terry term \(with --margin_loss\) at the last token only; set weights.irl to 0,/);
    await expect(
      engine.trainRewardModel({ runId: 'xy3-bad', steps: 1, data: { jsonl: 'p' }, init: 'm', weights: { cl: 0.1, center: 0.01 }, resources: { ...resources, nodes: 1 } }),
    ).rejects.toThrow(/weights.cl \(SimCSE term.*weights.center \(reward centering\).*set weights.cl and weights.center to 0/);
    await expect(
      engine.trainRewardModel({ runId: 'xy3-bad', steps: 1, data: { jsonl: 'p' }, init: 'm', weights: { irl: 0, cl: 0 }, pooling: 'mean', resources: { ...resources, nodes: 1 } }),
    ).rejects.toThrow(/pooling \(mean pooling: OpenRLHF reads the reward at the last token\).*set pooling to last,/);
    await expect(engine.trainRewardModel({ runId: 'xy3-bad', steps: 1, data: { jsonl: 'p' }, resources: { ...resources, nodes: 1 } })).rejects.toThrow(/init: the cluster engine fine-tunes a base model/);
    await expect(engine.trainCausalLm({ ...base, runId: 'Not A Run', resources })).rejects.toThrow(/causal LM spec: runId:/);
    expect(() => new ClusterEngine({ dryRun: false } as never)).toThrow(/dryRun false needs a runner/);
  });

  it('rejects manifests that break the CRD or Kubernetes schemas, listing each path', async () => {
    const { object } = rendered(await engine.trainSft({ runId: 'xy3-sft', steps: 1, batchSize: 8, data: { megatron: [{ prefix: 'p' }] }, tokenizer: 't', init: 'c', architecture: llama70b, resources: { ...resources, nodes: 1, pipelineParallel: 1 } }));
    const broken = structuredClone(object) as KubernetesObject & { spec: { pytorchReplicaSpecs: Record<string, { replicas: number; template: Template }> } };
    broken.spec.pytorchReplicaSpecs.Master.replicas = 2;
    (broken.spec.pytorchReplicaSpecs.Master.template.spec.containers[0] as { image: unknown }).image = 42;
    broken.spec.pytorchReplicaSpecs.Master.template.spec.containers[0].name = 'trainer';
    let error: unknown;
    try {
      validateManifest(broken);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ManifestValidationError);
    const problems = (error as ManifestValidationError).problems.join('\n');
    expect(problems).toMatch(/spec.pytorchReplicaSpecs.Master.template.spec.containers.0.image: must be string/);
    expect(problems).toMatch(/there is no container named pytorch/);
    expect(problems).toMatch(/there must be only 1 master replica/);

    expect(() => validateManifest({ ...object, spec: { ...object.spec, replicas: 3 } })).toThrow(/spec: Unrecognized key: "replicas"/);
    expect(() => validateManifest({ ...object, metadata: { name: 'Bad_Name' } })).toThrow(/metadata.name: "Bad_Name" is not a DNS-1035 label/);
    const ray = rendered(await engine.runPpo({ runId: 'xy3-ppo', data: { jsonl: 'p' }, policy: 'a', rewardModel: 'b', resources })).object;
    const noHead = structuredClone(ray) as KubernetesObject & { spec: { rayClusterSpec: { headGroupSpec: Record<string, unknown> } } };
    delete noHead.spec.rayClusterSpec.headGroupSpec.rayStartParams;
    expect(() => validateManifest(noHead)).toThrow(/spec.rayClusterSpec.headGroupSpec.rayStartParams/);
  });
});
