import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UnrecoverableError } from 'bullmq';
import { CHECKPOINT_RESULT_KIND, RlhfPpoPayload, STAGES, manifestKey, splitInstanceId } from '@xyp/contracts';
import type { StageContext } from '@xyp/queue';
import { LocalDirectoryStore } from '@xyp/storage';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ClusterTraining } from './cluster-training';
import { trainPpoOnCluster, type PpoRound } from './ppo-job';
import { startFakeKubeApi, type FakeKubeApi } from './testing/fake-kube-api';

const resources = { namespace: 'xuanyuan', image: 'registry.example/openrlhf:0.8', gpusPerNode: 8, volumeClaim: 'xyp-shared', mountPath: '/data' };
const tick = (ms = 60) => new Promise((r) => setTimeout(r, ms));

async function failsForGood(work: Promise<unknown>): Promise<Error & { artifacts?: { name: string; key: string }[] }> {
  const error = await work.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(UnrecoverableError);
  return error as Error & { artifacts?: { name: string; key: string }[] };
}

/** Two PPO rounds of three prompts, drawn by the ratios as the worker draws them. */
const round: PpoRound = {
  draws: [
    { id: 'p1', subdomain: 'bank', prompt: 'What is a bond?' },
    { id: 'p2', subdomain: 'tax', prompt: 'What is VAT?' },
    { id: 'p3', subdomain: 'bank', prompt: 'Define "duration".' },
    { id: 'p4', subdomain: 'bank', prompt: 'What is a bond?' },
    { id: 'p5', subdomain: 'tax', prompt: 'Who pays stamp duty?' },
    { id: 'p6', subdomain: 'bank', prompt: 'What is LIBOR?' },
  ],
  bySubdomain: { bank: 4, tax: 2 },
  ratios: { bank: 0.6, tax: 0.4 },
  kl: 0.05,
};

describe('rlhf.ppo on the cluster engine (the rlhf worker with XYP_TRAINING_ENGINE=cluster)', () => {
  let dir: string;
  let store: LocalDirectoryStore;
  let fake: FakeKubeApi;
  let lines: string[];
  let controller: AbortController;
  const context = () => ({ store, signal: controller.signal, log: (line: string) => lines.push(line) }) as unknown as StageContext;
  const volume = (path: string) => join(dir, 'volume', path);

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'xyp-kube-ppo-'));
    store = new LocalDirectoryStore(join(dir, 'store'));
    fake = await startFakeKubeApi();
    lines = [];
    controller = new AbortController();
    await writeFile(join(dir, 'kubeconfig'), fake.kubeconfig);
  });
  afterEach(async () => {
    await fake.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const submitting = () => ClusterTraining.create({ dryRun: false, kubeconfigPath: join(dir, 'kubeconfig'), resources, volume: { kind: 'directory', root: join(dir, 'volume') } });

  async function checkpoint(runId: string, stage: string, marker: string, result: Record<string, unknown> = {}): Promise<string> {
    const file = await store.putObject(runId, stage, marker, '{}');
    await store.commitManifest({ version: 1, runId, ...splitInstanceId(stage), committedAt: new Date().toISOString(), artifacts: [file], result: { kind: CHECKPOINT_RESULT_KIND, files: [marker], metrics: {}, ...result } });
    return manifestKey(runId, stage);
  }

  /** The round's bound checkpoints: Hugging Face models cluster jobs wrote (policy: the previous round; reward: reward.train). */
  async function payload(overrides: { policyManifestKey?: string } = {}) {
    const policyManifestKey = overrides.policyManifestKey ?? (await checkpoint('xy3-ppo', 'rlhf.ppo#round-1', 'checkpoint/config.json', { engine: 'cluster', checkpoint: '/data/checkpoints/xy3-ppo/rlhf.ppo/round-1' }));
    const rewardManifestKey = await checkpoint('xy3-ppo', 'reward.train#finetune-s1', 'checkpoint/config.json', { engine: 'cluster', checkpoint: '/data/checkpoints/xy3-ppo/reward.train/finetune-s1' });
    const referenceManifestKey = await checkpoint('xy3-ppo', 'sft', 'checkpoint/latest_checkpointed_iteration.txt', { engine: 'cluster', checkpoint: '/data/checkpoints/xy3-ppo/sft' });
    return RlhfPpoPayload.parse({ runId: 'xy3-ppo', instance: 'round-2', policyManifestKey, referenceManifestKey, rewardManifestKey, promptsKey: 'unused', ratiosKey: 'unused', rounds: 2, promptsPerRound: 3, samplesPerPrompt: 4, maxTokens: 256, seed: 7 });
  }

  it('puts the drawn prompts on the volume, submits the RayJob, follows it and commits its checkpoint, metrics and draws', async () => {
    const cluster = await submitting();
    const running = trainPpoOnCluster(cluster, await payload(), 'rlhf.ppo#round-2', context(), round);
    const object = await fake.waitFor('rayjobs', 'xuanyuan', 'xy3-ppo-ppo-round-2');
    const entrypoint = String(object.spec?.entrypoint);
    expect(entrypoint).toContain('python3 -m openrlhf.cli.train_ppo_ray');
    expect(entrypoint).toContain('--pretrain /data/checkpoints/xy3-ppo/rlhf.ppo/round-1');
    expect(entrypoint).toContain('--reward_pretrain /data/checkpoints/xy3-ppo/reward.train/finetune-s1');
    expect(entrypoint).toContain('--prompt_data /data/inputs/xy3-ppo/rlhf.ppo/round-2/prompts.jsonl');
    // One pass over rounds × promptsPerRound drawn prompts, promptsPerRound per rollout: the stage's two rounds.
    expect(entrypoint).toContain('--num_episodes 1 --rollout_batch_size 3 --n_samples_per_prompt 4');
    expect(entrypoint).toContain('--generate_max_len 256');
    expect(entrypoint).toContain('--init_kl_coef 0.05 --kl_estimator k1');
    expect(entrypoint).toContain('--seed 7');
    expect(entrypoint).toContain('--save_path /data/checkpoints/xy3-ppo/rlhf.ppo/round-2');
    const onVolume = (await readFile(volume('inputs/xy3-ppo/rlhf.ppo/round-2/prompts.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as unknown);
    expect(onVolume).toEqual(round.draws.map((d) => ({ prompt: d.prompt })));
    expect(lines.some((l) => l.includes("reference: OpenRLHF's KL reference is the starting policy"))).toBe(true);

    fake.setStatus('rayjobs', 'xuanyuan', 'xy3-ppo-ppo-round-2', { jobStatus: 'RUNNING', jobDeploymentStatus: 'Running' });
    await tick(150);
    const [pod] = fake.pods();
    fake.log('xuanyuan', pod.name, 'Episode [1/1]: 100%|██████████| 2/2 [policy_loss=0.12, reward=0.41, kl=0.003]');
    await mkdir(volume('checkpoints/xy3-ppo/rlhf.ppo/round-2'), { recursive: true });
    await writeFile(volume('checkpoints/xy3-ppo/rlhf.ppo/round-2/config.json'), '{"architectures":["LlamaForCausalLM"]}');
    await writeFile(volume('checkpoints/xy3-ppo/rlhf.ppo/round-2/model.safetensors'), 'weights');
    await writeFile(volume('checkpoints/xy3-ppo/rlhf.ppo/round-2/metrics.json'), JSON.stringify({ reward: 0.41, kl: 0.003 }));
    await tick();
    fake.setStatus('rayjobs', 'xuanyuan', 'xy3-ppo-ppo-round-2', { jobStatus: 'SUCCEEDED', jobDeploymentStatus: 'Complete' });
    fake.endLog('xuanyuan', pod.name);
    const out = await running;
    expect(out.result).toMatchObject({
      engine: 'cluster',
      kind: 'xyp-engine-checkpoint',
      jobKind: 'ppo',
      checkpoint: '/data/checkpoints/xy3-ppo/rlhf.ppo/round-2',
      metrics: { reward: 0.41, kl: 0.003 },
      ratios: { bank: 0.6, tax: 0.4 },
      kl: 0.05,
      draws: { bank: 4, tax: 2 },
      reference: '/data/checkpoints/xy3-ppo/rlhf.ppo/round-1',
    });
    expect(out.artifacts.map((a) => a.name)).toEqual(['checkpoint/config.json', 'checkpoint/metrics.json', 'checkpoint/model.safetensors', 'cluster/job.yaml', 'cluster/status.json', 'ratios.json', 'drawn.jsonl']);
    expect(JSON.parse((await store.getObject(out.artifacts[5].key)).toString())).toEqual({ ratios: round.ratios, kl: 0.05 });
    expect(lines).toContain('Episode [1/1]: 100%|██████████| 2/2 [policy_loss=0.12, reward=0.41, kl=0.003]');
    expect(lines).toContain('RayJob xuanyuan/xy3-ppo-ppo-round-2: jobStatus SUCCEEDED, jobDeploymentStatus Complete');
    expect(STAGES['rlhf.ppo'].result.safeParse(out.result).success).toBe(true);
  });

  it("fails for good with the controller's reason when the RayJob fails", async () => {
    const cluster = await submitting();
    const running = trainPpoOnCluster(cluster, await payload(), 'rlhf.ppo#round-2', context(), round);
    await fake.waitFor('rayjobs', 'xuanyuan', 'xy3-ppo-ppo-round-2');
    fake.setStatus('rayjobs', 'xuanyuan', 'xy3-ppo-ppo-round-2', { jobStatus: 'RUNNING', jobDeploymentStatus: 'Running' });
    await tick(150);
    fake.setStatus('rayjobs', 'xuanyuan', 'xy3-ppo-ppo-round-2', { jobStatus: 'FAILED', jobDeploymentStatus: 'Failed', reason: 'AppFailed', message: 'Job entrypoint command failed with exit code 1' });
    fake.endLog('xuanyuan', fake.pods()[0].name);
    expect((await failsForGood(running)).message).toContain('RayJob xuanyuan/xy3-ppo-ppo-round-2 failed: AppFailed: Job entrypoint command failed with exit code 1');
    expect(fake.deletes).toEqual([]);
  });

  it('a cancel deletes the RayJob', async () => {
    const cluster = await submitting();
    const running = trainPpoOnCluster(cluster, await payload(), 'rlhf.ppo#round-2', context(), round);
    await fake.waitFor('rayjobs', 'xuanyuan', 'xy3-ppo-ppo-round-2');
    fake.setStatus('rayjobs', 'xuanyuan', 'xy3-ppo-ppo-round-2', { jobStatus: 'RUNNING', jobDeploymentStatus: 'Running' });
    await tick(150);
    controller.abort(new Error('rlhf.ppo: cancelled by the run'));
    await expect(running).rejects.toThrow('rlhf.ppo: cancelled by the run');
    expect(fake.deletes).toEqual([{ plural: 'rayjobs', namespace: 'xuanyuan', name: 'xy3-ppo-ppo-round-2', propagationPolicy: 'Foreground' }]);
    expect(fake.get('rayjobs', 'xuanyuan', 'xy3-ppo-ppo-round-2')).toBeUndefined();
  });

  it('in dry run renders and keeps the manifest with the draws, and fails for good saying nothing was submitted', async () => {
    const cluster = await ClusterTraining.create({ dryRun: true, resources });
    const error = await failsForGood(trainPpoOnCluster(cluster, await payload(), 'rlhf.ppo#round-2', context(), round));
    expect(error.message).toBe('rlhf.ppo#round-2: dry run: rendered and validated RayJob xuanyuan/xy3-ppo-ppo-round-2 (cluster/job.yaml); set XYP_KUBECONFIG, or run in the cluster, to submit it');
    expect(error.artifacts?.map((a) => a.name)).toEqual(['ratios.json', 'drawn.jsonl', 'cluster/job.yaml']);
    expect((await store.getObject(error.artifacts![2].key)).toString()).toContain('kind: RayJob');
    expect(fake.requests).toEqual([]);
  });

  it('refuses a local-engine policy, and a Megatron one, for good', async () => {
    const cluster = await ClusterTraining.create({ dryRun: true, resources });
    const local = await checkpoint('xy3-ppo', 'sft', 'params.bin');
    const refused = await failsForGood(trainPpoOnCluster(cluster, await payload({ policyManifestKey: local }), 'rlhf.ppo#round-1', context(), round));
    expect(refused.message).toBe(`rlhf.ppo#round-1: policy: ${local} is a local-engine checkpoint; on the cluster engine policy must be a checkpoint a cluster job wrote on the shared volume`);
    const megatron = await checkpoint('xy3-meg', 'sft', 'checkpoint/latest_checkpointed_iteration.txt', { engine: 'cluster', checkpoint: '/data/checkpoints/xy3-meg/sft' });
    const wrong = await failsForGood(trainPpoOnCluster(cluster, await payload({ policyManifestKey: megatron }), 'rlhf.ppo#round-1', context(), round));
    expect(wrong.message).toBe(
      'rlhf.ppo#round-1: policy: xy3-meg/sft (/data/checkpoints/xy3-meg/sft) is not a Hugging Face checkpoint: OpenRLHF loads a Hugging Face model (config.json); it is a Megatron-LM checkpoint (a cpt or sft PyTorchJob), which must be converted to Hugging Face format first (not built)',
    );
    expect(fake.requests).toEqual([]);
  });
});
