import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClusterEngine } from '@xyp/cluster';
import type { EngineJob } from '@xyp/contracts';
import { LocalDirectoryStore } from '@xyp/storage';
import { startTestS3, type TestS3 } from '@xyp/testing';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { KubeJobs } from './kube-jobs';
import { KubeJobRunner } from './kube-job-runner';
import { DirectoryVolume, S3Volume, type SharedVolume } from './shared-volume';
import { startFakeKubeApi, type FakeKubeApi } from './testing/fake-kube-api';

const resources = { namespace: 'xuanyuan', image: 'registry.example/openrlhf:0.8', nodes: 1, gpusPerNode: 8, mountPath: '/data' };
const rewardSpec = { runId: 'xy3-e2e', stage: 'reward.train#bt-s1', steps: 4, batchSize: 8, data: { jsonl: 'inputs/pairs.jsonl' }, init: 'models/base', resources };
const sftSpec = {
  runId: 'xy3-e2e',
  stage: 'sft',
  steps: 10,
  batchSize: 8,
  tokenizer: 'tokenizers/llama3',
  init: 'checkpoints/xy3-e2e/cpt',
  data: { megatron: [{ prefix: 'sft/train_text_document' }] },
  architecture: { layers: 2, width: 64, heads: 4, context: 128 },
  resources: { ...resources, image: 'registry.example/megatron:1' },
};
const tick = (ms = 60) => new Promise((r) => setTimeout(r, ms));

function succeeded(job: EngineJob): Extract<EngineJob, { status: 'succeeded' }> {
  if (job.engine !== 'cluster' || job.status !== 'succeeded') throw new Error(`expected a succeeded cluster job, got ${job.engine} ${job.status}`);
  return job;
}

describe('ClusterEngine({dryRun: false}) through KubeJobRunner against the fake API server', () => {
  let fake: FakeKubeApi;
  let kube: KubeJobs;
  let dir: string;
  let store: LocalDirectoryStore;
  let s3: TestS3;

  beforeAll(async () => {
    s3 = await startTestS3('xyp-shared-volume');
  });
  afterAll(async () => {
    await s3.stop();
  });
  beforeEach(async () => {
    fake = await startFakeKubeApi();
    kube = await KubeJobs.connect({ kubeconfig: fake.kubeconfig });
    dir = await mkdtemp(join(tmpdir(), 'xyp-kube-e2e-'));
    store = new LocalDirectoryStore(join(dir, 'store'));
  });
  afterEach(async () => {
    await fake.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const volumes: [string, () => SharedVolume][] = [
    ['an S3 bucket backing the volume (s3rver)', () => new S3Volume({ endPoint: '127.0.0.1', port: s3.port, useSSL: false, accessKey: s3.accessKey, secretKey: s3.secretKey, bucket: s3.bucket, prefix: `volume-${Date.now()}` })],
    ['the volume mounted as a directory', () => new DirectoryVolume(join(dir, 'volume'))],
  ];

  for (const [label, makeVolume] of volumes) {
    it(`submits the reward model RayJob, streams its log, and on success ingests its outputs from ${label}`, async () => {
      const volume = makeVolume();
      const engine = new ClusterEngine({ dryRun: false, runner: new KubeJobRunner({ kube, volume, store, logDrainMs: 500 }) });
      const logs: string[] = [];
      const statuses: string[] = [];
      const running = engine.trainRewardModel(rewardSpec, { onLog: (l) => logs.push(l), onStatus: (s) => statuses.push(s) });

      // Play the operator: the job appears, runs, writes its checkpoint and metrics under --save_path, succeeds.
      const object = await fake.waitFor('rayjobs', 'xuanyuan', 'xy3-e2e-rm-bt-s1');
      expect(String(object.spec?.entrypoint)).toContain('--save_path /data/checkpoints/xy3-e2e/reward.train/bt-s1');
      fake.setStatus('rayjobs', 'xuanyuan', 'xy3-e2e-rm-bt-s1', { jobStatus: 'RUNNING', jobDeploymentStatus: 'Running' });
      const [pod] = fake.pods();
      await tick(200);
      fake.log('xuanyuan', pod.name, 'Train epoch [1/1]: loss=0.6931 acc=0.5', 'Train epoch [1/1]: loss=0.41 acc=0.81');
      await volume.write('checkpoints/xy3-e2e/reward.train/bt-s1/config.json', '{"architectures":["LlamaForSequenceClassification"]}');
      await volume.write('checkpoints/xy3-e2e/reward.train/bt-s1/model.safetensors', Buffer.from([1, 2, 3, 4, 5]));
      await volume.write('checkpoints/xy3-e2e/reward.train/bt-s1/metrics.json', JSON.stringify({ loss: 0.41, acc: 0.81, note: 'ignored' }));
      await volume.write('checkpoints/xy3-e2e/reward.train/other/config.json', 'not this stage');
      await tick();
      fake.setStatus('rayjobs', 'xuanyuan', 'xy3-e2e-rm-bt-s1', { jobStatus: 'SUCCEEDED', jobDeploymentStatus: 'Complete' });
      fake.endLog('xuanyuan', pod.name);

      const job = succeeded(await running);
      expect(job.submitted).toMatchObject({ kind: 'RayJob', namespace: 'xuanyuan', name: 'xy3-e2e-rm-bt-s1', uid: object.metadata.uid });
      expect(job.checkpoint).toBe('/data/checkpoints/xy3-e2e/reward.train/bt-s1');
      expect(job.metrics).toEqual({ loss: 0.41, acc: 0.81 });
      expect(logs).toEqual(['Train epoch [1/1]: loss=0.6931 acc=0.5', 'Train epoch [1/1]: loss=0.41 acc=0.81']);
      expect(statuses.some((s) => s.startsWith('submitted RayJob xuanyuan/xy3-e2e-rm-bt-s1'))).toBe(true);
      expect(statuses).toContain('RayJob xuanyuan/xy3-e2e-rm-bt-s1: jobStatus RUNNING, jobDeploymentStatus Running');
      expect(statuses).toContain('RayJob xuanyuan/xy3-e2e-rm-bt-s1: jobStatus SUCCEEDED, jobDeploymentStatus Complete');
      expect(statuses.join('\n')).not.toContain(fake.token);

      // The outputs are the stage's artifacts: commit the manifest and read them back from the store.
      expect(job.manifest.artifacts.map((a) => a.name)).toEqual(['checkpoint/config.json', 'checkpoint/metrics.json', 'checkpoint/model.safetensors', 'cluster/job.yaml', 'cluster/status.json']);
      expect(job.manifest).toMatchObject({ runId: 'xy3-e2e', stage: 'reward.train', instance: 'bt-s1' });
      const commit = await store.commitManifest(job.manifest);
      expect(commit.committed).toBe(true);
      const byName = Object.fromEntries(job.manifest.artifacts.map((a) => [a.name, a.key]));
      expect([...(await store.getObject(byName['checkpoint/model.safetensors']))]).toEqual([1, 2, 3, 4, 5]);
      expect((await store.getObject(byName['checkpoint/config.json'])).toString()).toContain('LlamaForSequenceClassification');
      expect(JSON.parse((await store.getObject(byName['cluster/status.json'])).toString())).toMatchObject({ name: 'xy3-e2e-rm-bt-s1', status: { jobStatus: 'SUCCEEDED' } });
      expect((await store.getObject(byName['cluster/job.yaml'])).toString()).toContain('kind: RayJob');
    });
  }

  it("fails the stage with the PyTorchJob's reason and message and ingests nothing", async () => {
    const volume = new DirectoryVolume(join(dir, 'volume'));
    const engine = new ClusterEngine({ dryRun: false, runner: new KubeJobRunner({ kube, volume, store, logDrainMs: 100 }) });
    const running = engine.trainSft(sftSpec);
    await fake.waitFor('pytorchjobs', 'xuanyuan', 'xy3-e2e-sft');
    await volume.write('checkpoints/xy3-e2e/sft/iter_0000005/model.pt', 'partial');
    fake.setStatus('pytorchjobs', 'xuanyuan', 'xy3-e2e-sft', { conditions: [{ type: 'Running', status: 'True' }] });
    await tick();
    fake.setStatus('pytorchjobs', 'xuanyuan', 'xy3-e2e-sft', {
      conditions: [{ type: 'Running', status: 'False' }, { type: 'Failed', status: 'True', reason: 'PyTorchJobFailed', message: 'PyTorchJob xuanyuan/xy3-e2e-sft has failed because 1 Master replica(s) failed.' }],
    });
    await expect(running).rejects.toThrow('PyTorchJob xuanyuan/xy3-e2e-sft failed: PyTorchJobFailed: PyTorchJob xuanyuan/xy3-e2e-sft has failed because 1 Master replica(s) failed.');
    expect(await store.listManifests('xy3-e2e')).toEqual([]);
    // A failed job is left in place for inspection; only a cancel deletes it.
    expect(fake.deletes).toEqual([]);
  });

  it('cancel deletes the job in the foreground and stops the watch', async () => {
    const engine = new ClusterEngine({ dryRun: false, runner: new KubeJobRunner({ kube, volume: new DirectoryVolume(join(dir, 'volume')), store, logDrainMs: 100 }) });
    const controller = new AbortController();
    const running = engine.trainSft(sftSpec, { signal: controller.signal });
    await fake.waitFor('pytorchjobs', 'xuanyuan', 'xy3-e2e-sft');
    fake.setStatus('pytorchjobs', 'xuanyuan', 'xy3-e2e-sft', { conditions: [{ type: 'Running', status: 'True' }] });
    await tick(150);
    controller.abort(new Error('sft: cancelled by the run'));
    await expect(running).rejects.toThrow('sft: cancelled by the run');
    expect(fake.deletes).toEqual([{ plural: 'pytorchjobs', namespace: 'xuanyuan', name: 'xy3-e2e-sft', propagationPolicy: 'Foreground' }]);
    expect(fake.get('pytorchjobs', 'xuanyuan', 'xy3-e2e-sft')).toBeUndefined();
    await tick();
    expect(fake.openWatches()).toBe(0);
  });

  it('fails clearly when the job succeeded but wrote nothing under its --save directory', async () => {
    const engine = new ClusterEngine({ dryRun: false, runner: new KubeJobRunner({ kube, volume: new DirectoryVolume(join(dir, 'volume')), store, logDrainMs: 100 }) });
    const running = engine.trainSft(sftSpec);
    await fake.waitFor('pytorchjobs', 'xuanyuan', 'xy3-e2e-sft');
    fake.setStatus('pytorchjobs', 'xuanyuan', 'xy3-e2e-sft', { conditions: [{ type: 'Succeeded', status: 'True', reason: 'PyTorchJobSucceeded' }] });
    await expect(running).rejects.toThrow(/PyTorchJob xy3-e2e-sft succeeded but wrote nothing under \/data\/checkpoints\/xy3-e2e\/sft \(checkpoints\/xy3-e2e\/sft on directory /);
  });

  it("refuses to take over another run's job of the same name", async () => {
    fake.seed({ apiVersion: 'ray.io/v1', kind: 'RayJob', metadata: { name: 'xy3-e2e-rm-bt-s1', namespace: 'xuanyuan', labels: { 'xyp.io/run-id': 'xy3-other', 'xyp.io/stage': 'reward.train.bt-s1' } }, spec: { entrypoint: 'x' } });
    const engine = new ClusterEngine({ dryRun: false, runner: new KubeJobRunner({ kube, volume: new DirectoryVolume(join(dir, 'volume')), store }) });
    await expect(engine.trainRewardModel(rewardSpec)).rejects.toThrow(/409 Conflict: RayJob xuanyuan\/xy3-e2e-rm-bt-s1 already exists and belongs to run xy3-other/);
    expect(fake.requests.filter((r) => r.method === 'PATCH')).toEqual([]);
  });

  it('in dry-run mode still only renders, submitting nothing', async () => {
    const job = await new ClusterEngine({ dryRun: true }).trainRewardModel(rewardSpec);
    expect(job).toMatchObject({ engine: 'cluster', status: 'rendered' });
    expect(fake.requests).toEqual([]);
  });
});
