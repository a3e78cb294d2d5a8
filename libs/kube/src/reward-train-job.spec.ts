import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RewardTrainPayload } from '@xyp/contracts';
import type { StageContext } from '@xyp/queue';
import { LocalDirectoryStore } from '@xyp/storage';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ClusterTraining } from './cluster-training';
import { trainRewardModelOnCluster } from './reward-train-job';
import { startFakeKubeApi, type FakeKubeApi } from './testing/fake-kube-api';

const resources = { namespace: 'xuanyuan', image: 'registry.example/openrlhf:0.8', gpusPerNode: 8, volumeClaim: 'xyp-shared', mountPath: '/data' };

describe('reward.train on the cluster engine (the reward worker with XYP_TRAINING_ENGINE=cluster)', () => {
  let dir: string;
  let store: LocalDirectoryStore;
  let fake: FakeKubeApi;
  const lines: string[] = [];
  // The parts of a stage context this path uses: the store, the cancel signal and the log.
  const context = () => ({ store, signal: new AbortController().signal, log: (line: string) => lines.push(line) }) as unknown as StageContext;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'xyp-kube-rt-'));
    store = new LocalDirectoryStore(join(dir, 'store'));
    fake = await startFakeKubeApi();
    lines.length = 0;
  });
  afterEach(async () => {
    await fake.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function payload(weights = { bt: 1, irl: 0, cl: 0 }) {
    const pairs = await store.putObject('xy3-rt', 'reward.prepare', 'train.jsonl', '{"prompt":"p","chosen":"a","rejected":"b"}\n');
    return RewardTrainPayload.parse({ runId: 'xy3-rt', instance: 'bt-s1', pairsKey: pairs.key, steps: 4, batchSize: 8, lr: 1e-5, weights, phase: 'single', variant: 'bt-only', seed: 1 });
  }

  it('puts the pairs on the shared volume, submits the RayJob and commits its outputs as the instance', async () => {
    await writeFile(join(dir, 'kubeconfig'), fake.kubeconfig);
    const cluster = await ClusterTraining.create({ dryRun: false, kubeconfigPath: join(dir, 'kubeconfig'), resources, baseModel: 'models/llama-3-8b', volume: { kind: 'directory', root: join(dir, 'volume') } });
    const running = trainRewardModelOnCluster(cluster, await payload(), 'reward.train#bt-s1', context());
    const object = await fake.waitFor('rayjobs', 'xuanyuan', 'xy3-rt-rm-bt-s1');
    const entrypoint = String(object.spec?.entrypoint);
    expect(entrypoint).toContain('--dataset /data/inputs/xy3-rt/reward.train/bt-s1/train.jsonl');
    expect(entrypoint).toContain('--pretrain /data/models/llama-3-8b');
    expect(await readFile(join(dir, 'volume/inputs/xy3-rt/reward.train/bt-s1/train.jsonl'), 'utf8')).toContain('"chosen":"a"');
    await mkdir(join(dir, 'volume/checkpoints/xy3-rt/reward.train/bt-s1'), { recursive: true });
    await writeFile(join(dir, 'volume/checkpoints/xy3-rt/reward.train/bt-s1/model.safetensors'), 'weights');
    fake.setStatus('rayjobs', 'xuanyuan', 'xy3-rt-rm-bt-s1', { jobStatus: 'SUCCEEDED', jobDeploymentStatus: 'Complete' });
    fake.endLog('xuanyuan', fake.pods()[0].name);
    const out = await running;
    expect(out.result).toMatchObject({ engine: 'cluster', kind: 'xyp-engine-checkpoint', checkpoint: '/data/checkpoints/xy3-rt/reward.train/bt-s1', phase: 'single', variant: 'bt-only', seed: 1 });
    expect(out.artifacts.map((a) => a.name)).toEqual(['checkpoint/model.safetensors', 'cluster/job.yaml', 'cluster/status.json']);
    expect(lines.some((l) => l.includes('jobStatus SUCCEEDED'))).toBe(true);
  });

  it('in dry run renders and keeps the manifest, and fails for good saying nothing was submitted', async () => {
    const cluster = await ClusterTraining.create({ dryRun: true, resources, baseModel: 'models/llama-3-8b' });
    const failing = trainRewardModelOnCluster(cluster, await payload(), 'reward.train#bt-s1', context());
    await expect(failing).rejects.toThrow('reward.train#bt-s1: dry run: rendered and validated RayJob xuanyuan/xy3-rt-rm-bt-s1 (cluster/job.yaml); set XYP_KUBECONFIG, or run in the cluster, to submit it');
    await expect(failing).rejects.toMatchObject({ artifacts: [expect.objectContaining({ name: 'cluster/job.yaml' })] });
    expect(fake.requests).toEqual([]);
  });

  it("refuses UFRM's IRL and SimCSE terms for good (OpenRLHF train_rm is Bradley-Terry only)", async () => {
    const cluster = await ClusterTraining.create({ dryRun: true, resources, baseModel: 'models/llama-3-8b' });
    const failing = trainRewardModelOnCluster(cluster, await payload({ bt: 1, irl: 0.5, cl: 0.1 }), 'reward.train#bt-s1', context());
    await expect(failing).rejects.toThrow(/weights.irl \(inverse-RL term\), weights.cl/);
    await expect(failing).rejects.toMatchObject({ name: 'UnrecoverableError' });
  });
});
