import type { KubernetesObject } from '@xyp/contracts';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { logTarget, type JobRef } from './job-kinds';
import { KubeJobConflictError, KubeJobFailedError, KubeJobs, type JobEvent } from './kube-jobs';
import { startFakeKubeApi, type FakeKubeApi } from './testing/fake-kube-api';

const labels = (runId: string, stage: string) => ({ 'app.kubernetes.io/managed-by': 'xyp', 'xyp.io/run-id': runId, 'xyp.io/stage': stage });

function rayJob(name: string, runId = 'run-a', stage = 'reward.train'): KubernetesObject {
  return { apiVersion: 'ray.io/v1', kind: 'RayJob', metadata: { name, namespace: 'team', labels: labels(runId, stage) }, spec: { entrypoint: 'python3 -m openrlhf.cli.train_rm', submissionMode: 'K8sJobMode' } };
}

function pyTorchJob(name: string): KubernetesObject {
  return { apiVersion: 'kubeflow.org/v1', kind: 'PyTorchJob', metadata: { name, namespace: 'team', labels: labels('run-a', 'sft') }, spec: { nprocPerNode: '8', pytorchReplicaSpecs: {} } };
}

const ray = (name: string): JobRef => ({ kind: 'RayJob', namespace: 'team', name });
const tick = (ms = 60) => new Promise((r) => setTimeout(r, ms));

describe('KubeJobs against the fake API server (real client-node over HTTP)', () => {
  let fake: FakeKubeApi;
  let kube: KubeJobs;

  beforeEach(async () => {
    fake = await startFakeKubeApi();
    kube = await KubeJobs.connect({ kubeconfig: fake.kubeconfig });
  });
  afterEach(async () => {
    await fake.stop();
  });

  it('creates a job, reads it back, and surfaces a second create of the name as a 409 naming the job', async () => {
    const created = await kube.create(rayJob('run-a-rm'));
    expect(created.metadata.uid).toMatch(/[0-9a-f-]{36}/);
    const read = await kube.get(ray('run-a-rm'));
    expect(read?.metadata.uid).toBe(created.metadata.uid);
    expect(await kube.get(ray('missing'))).toBeNull();
    const second = kube.create(rayJob('run-a-rm'));
    await expect(second).rejects.toThrow(KubeJobConflictError);
    await expect(second).rejects.toThrow(/409 Conflict: creating RayJob team\/run-a-rm: rayjobs.ray.io "run-a-rm" already exists/);
  });

  it('applies server-side (apply-patch+yaml, fieldManager xuanyuan-pipeline, force false) and re-applies its own job', async () => {
    await kube.apply(rayJob('run-a-rm'));
    const patches = fake.requests.filter((r) => r.method === 'PATCH');
    expect(patches).toHaveLength(1);
    expect(patches[0]).toMatchObject({ path: '/apis/ray.io/v1/namespaces/team/rayjobs/run-a-rm', contentType: 'application/apply-patch+yaml', query: { fieldManager: 'xuanyuan-pipeline', force: 'false' }, status: 201 });
    expect(fake.get('rayjobs', 'team', 'run-a-rm')?.spec).toEqual(rayJob('x').spec);
    // A retried stage job applies the same object again: same uid, nothing replaced.
    const uid = fake.get('rayjobs', 'team', 'run-a-rm')?.metadata.uid;
    await kube.apply(rayJob('run-a-rm'));
    expect(fake.get('rayjobs', 'team', 'run-a-rm')?.metadata.uid).toBe(uid);
  });

  it("refuses to apply over a job of another run under the same name, with a 409 naming the job and its owner", async () => {
    await kube.apply(rayJob('shared-rm', 'run-a'));
    const before = fake.get('rayjobs', 'team', 'shared-rm');
    const other = kube.apply({ ...rayJob('shared-rm', 'run-b'), spec: { entrypoint: 'something else' } });
    await expect(other).rejects.toThrow(KubeJobConflictError);
    await expect(other).rejects.toThrow(/409 Conflict: RayJob team\/shared-rm already exists and belongs to run run-a, stage reward.train, not to run run-b/);
    expect(fake.get('rayjobs', 'team', 'shared-rm')).toEqual(before);
  });

  it("reports the server's 409 when another field manager owns a field with another value", async () => {
    fake.seed({ ...rayJob('hand-made'), metadata: { name: 'hand-made', namespace: 'team', labels: labels('run-a', 'reward.train') }, spec: { entrypoint: 'kubectl edit' } });
    await expect(kube.apply(rayJob('hand-made'))).rejects.toThrow(/409 Conflict: applying RayJob team\/hand-made: Apply failed with 1 conflict: conflicts with .spec.entrypoint \(owned by "kubectl"\)/);
  });

  it('watches a RayJob through Pending and Running to SUCCEEDED, reporting every transition in order', async () => {
    await kube.apply(rayJob('run-a-rm'));
    const events: JobEvent[] = [];
    const done = kube.watchUntilDone(ray('run-a-rm'), { onEvent: (e) => events.push(e) });
    await tick();
    fake.setStatus('rayjobs', 'team', 'run-a-rm', { jobStatus: 'PENDING', jobDeploymentStatus: 'Initializing' });
    await tick();
    fake.setStatus('rayjobs', 'team', 'run-a-rm', { jobStatus: 'RUNNING', jobDeploymentStatus: 'Running' });
    await tick();
    fake.setStatus('rayjobs', 'team', 'run-a-rm', { jobStatus: 'SUCCEEDED', jobDeploymentStatus: 'Complete' });
    const final = await done;
    expect(final.state.phase).toBe('succeeded');
    expect(events.map((e) => [e.type, e.state.phase, e.state.summary])).toEqual([
      ['INITIAL', 'pending', 'jobStatus (none), jobDeploymentStatus (none)'],
      ['MODIFIED', 'pending', 'jobStatus PENDING, jobDeploymentStatus Initializing'],
      ['MODIFIED', 'running', 'jobStatus RUNNING, jobDeploymentStatus Running'],
      ['MODIFIED', 'succeeded', 'jobStatus SUCCEEDED, jobDeploymentStatus Complete'],
    ]);
    await tick();
    expect(fake.openWatches()).toBe(0);
  });

  it("fails a RayJob on FAILED with the controller's reason and message", async () => {
    await kube.apply(rayJob('run-a-rm'));
    const done = kube.watchUntilDone(ray('run-a-rm'));
    await tick();
    fake.setStatus('rayjobs', 'team', 'run-a-rm', { jobStatus: 'RUNNING', jobDeploymentStatus: 'Running' });
    await tick();
    fake.setStatus('rayjobs', 'team', 'run-a-rm', { jobStatus: 'FAILED', jobDeploymentStatus: 'Failed', reason: 'AppFailed', message: 'entrypoint exited with code 1' });
    await expect(done).rejects.toThrow(KubeJobFailedError);
    await expect(done).rejects.toThrow('RayJob team/run-a-rm failed: AppFailed: entrypoint exited with code 1');
  });

  it('fails a RayJob whose deployment failed before the Ray job had a status (the cluster never came up)', async () => {
    await kube.apply(rayJob('run-a-rm'));
    const done = kube.watchUntilDone(ray('run-a-rm'));
    await tick();
    fake.setStatus('rayjobs', 'team', 'run-a-rm', { jobDeploymentStatus: 'Failed', reason: 'DeadlineExceeded', message: 'the RayJob has passed the activeDeadlineSeconds' });
    await expect(done).rejects.toThrow(/failed: DeadlineExceeded: the RayJob has passed the activeDeadlineSeconds/);
  });

  it('follows a PyTorchJob by its conditions: Running is not done, Failed=True fails, Succeeded=True succeeds', async () => {
    await kube.apply(pyTorchJob('run-a-sft'));
    const ref: JobRef = { kind: 'PyTorchJob', namespace: 'team', name: 'run-a-sft' };
    const failing = kube.watchUntilDone(ref);
    await tick();
    fake.setStatus('pytorchjobs', 'team', 'run-a-sft', { conditions: [{ type: 'Created', status: 'True' }, { type: 'Running', status: 'True', reason: 'PyTorchJobRunning' }] });
    await tick();
    fake.setStatus('pytorchjobs', 'team', 'run-a-sft', {
      conditions: [
        { type: 'Created', status: 'True' },
        { type: 'Running', status: 'False' },
        { type: 'Failed', status: 'True', reason: 'PyTorchJobFailed', message: 'PyTorchJob team/run-a-sft has failed because 1 Master replica(s) failed.' },
      ],
    });
    await expect(failing).rejects.toThrow('PyTorchJob team/run-a-sft failed: PyTorchJobFailed: PyTorchJob team/run-a-sft has failed because 1 Master replica(s) failed.');

    fake.setStatus('pytorchjobs', 'team', 'run-a-sft', { conditions: [{ type: 'Succeeded', status: 'False' }, { type: 'Running', status: 'True' }] });
    const succeeding = kube.watchUntilDone(ref);
    await tick();
    fake.setStatus('pytorchjobs', 'team', 'run-a-sft', { conditions: [{ type: 'Running', status: 'False' }, { type: 'Succeeded', status: 'True', reason: 'PyTorchJobSucceeded' }] });
    expect((await succeeding).state).toMatchObject({ phase: 'succeeded', reason: 'PyTorchJobSucceeded' });
  });

  it('resumes a dropped watch from the last resourceVersion, and falls back to a GET when that version expired', async () => {
    await kube.apply(rayJob('run-a-rm'));
    const events: string[] = [];
    const done = kube.watchUntilDone(ray('run-a-rm'), { onEvent: (e) => events.push(e.state.summary), reconnectDelayMs: 150 });
    await tick();
    const running = fake.setStatus('rayjobs', 'team', 'run-a-rm', { jobStatus: 'RUNNING', jobDeploymentStatus: 'Running' });
    await tick();
    expect(fake.dropWatches()).toBe(1);
    // While no watch is open the job moves on; the resumed watch must replay that from history.
    fake.setStatus('rayjobs', 'team', 'run-a-rm', { jobStatus: 'RUNNING', jobDeploymentStatus: 'Running', message: 'step 5/10' });
    await tick(400);
    const watches = fake.requests.filter((r) => r.query.watch === 'true');
    expect(watches.length).toBeGreaterThanOrEqual(1);
    expect(events).toContain('jobStatus RUNNING, jobDeploymentStatus Running, step 5/10');
    expect(fake.requests.some((r) => r.query.watch === 'true' && r.query.resourceVersion === running.metadata.resourceVersion)).toBe(true);

    // The history is compacted and the watch dropped again: resuming gets 410 Expired, then a GET.
    const getsBefore = fake.requests.filter((r) => r.method === 'GET' && r.path.endsWith('/rayjobs/run-a-rm')).length;
    fake.dropWatches();
    fake.setStatus('rayjobs', 'team', 'run-a-rm', { jobStatus: 'RUNNING', jobDeploymentStatus: 'Running', message: 'step 7/10' });
    fake.compact();
    fake.setStatus('rayjobs', 'team', 'run-a-rm', { jobStatus: 'SUCCEEDED', jobDeploymentStatus: 'Complete' });
    expect((await done).state.phase).toBe('succeeded');
    expect(fake.requests.filter((r) => r.method === 'GET' && r.path.endsWith('/rayjobs/run-a-rm')).length).toBe(getsBefore + 1);
  });

  it('stops the watch when its signal aborts', async () => {
    await kube.apply(rayJob('run-a-rm'));
    const controller = new AbortController();
    const done = kube.watchUntilDone(ray('run-a-rm'), { signal: controller.signal });
    await tick();
    expect(fake.openWatches()).toBe(1);
    controller.abort(new Error('stage cancelled'));
    await expect(done).rejects.toThrow('stage cancelled');
    await tick();
    expect(fake.openWatches()).toBe(0);
  });

  it("streams the job pod's log line by line, from the start, until the container exits", async () => {
    await kube.apply(rayJob('run-a-rm'));
    const [pod] = fake.pods();
    expect(pod).toMatchObject({ namespace: 'team', labels: { 'job-name': 'run-a-rm' }, container: 'ray-job-submitter' });
    fake.log('team', pod.name, 'Job submitted', '[rank0] step 1/4 loss 0.693');
    const lines: string[] = [];
    const following = kube.streamLogs(logTarget(ray('run-a-rm')), { onLine: (l) => lines.push(l), pollMs: 20 });
    await tick(150);
    fake.log('team', pod.name, '[rank0] step 2/4 loss 0.61', '[rank0] step 3/4 loss 0.55');
    await tick();
    fake.log('team', pod.name, 'done');
    fake.endLog('team', pod.name);
    await following;
    expect(lines).toEqual(['Job submitted', '[rank0] step 1/4 loss 0.693', '[rank0] step 2/4 loss 0.61', '[rank0] step 3/4 loss 0.55', 'done']);
    const logRequest = fake.requests.find((r) => r.path.endsWith('/log'));
    expect(logRequest?.query).toMatchObject({ container: 'ray-job-submitter', follow: 'true' });
  });

  it('follows the PyTorchJob master pod (container pytorch)', async () => {
    await kube.apply(pyTorchJob('run-a-sft'));
    const lines: string[] = [];
    const following = kube.streamLogs(logTarget({ kind: 'PyTorchJob', namespace: 'team', name: 'run-a-sft' }), { onLine: (l) => lines.push(l), pollMs: 20 });
    await tick();
    fake.log('team', 'run-a-sft-master-0', ' iteration        1/      10 | lm loss: 2.3E+00 |');
    fake.endLog('team', 'run-a-sft-master-0');
    await following;
    expect(lines).toEqual([' iteration        1/      10 | lm loss: 2.3E+00 |']);
  });

  it('deletes with foreground propagation, and a second delete of the gone job is not an error', async () => {
    await kube.apply(rayJob('run-a-rm'));
    await kube.delete(ray('run-a-rm'));
    expect(fake.get('rayjobs', 'team', 'run-a-rm')).toBeUndefined();
    await kube.delete(ray('run-a-rm'));
    expect(fake.deletes.map((d) => d.propagationPolicy)).toEqual(['Foreground', 'Foreground']);
  });

  it('never prints the token when describing where it connects', async () => {
    expect(kube.describe()).toBe(`${fake.url} (context fake, user tester)`);
    expect(kube.describe()).not.toContain(fake.token);
  });

  it('needs the bearer token: a wrong one is refused', async () => {
    const wrong = await KubeJobs.connect({ kubeconfig: fake.kubeconfig.replace(fake.token, 'not-the-token') });
    await expect(wrong.get(ray('x'))).rejects.toThrow(/reading RayJob team\/x/);
  });
});
