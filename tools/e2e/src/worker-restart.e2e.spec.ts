import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { submitRunRequest, unary, type RunEvent } from '@xyp/grpc';
import { RunEvents } from '@xyp/runs';
import { LocalDirectoryStore } from '@xyp/storage';
import { Queue } from 'bullmq';
import { redisSettings } from '@xyp/config';
import { WORKSPACE_ROOT } from '@xyp/launcher';
import { TEST_REDIS_URL, eventually } from '@xyp/testing';
import { PlatformHarness, jsonl } from './platform-harness';

/**
 * A worker killed in the middle of a job (SIGKILL: no shutdown hook, the lock just
 * stops being renewed). Another worker must pick the stalled job up and the effect must
 * be exactly one committed manifest.
 */
describe('a worker restart in the middle of a job', () => {
  // Short locks so a dead worker's job is noticed as stalled within seconds.
  const harness = new PlatformHarness('restart', { XYP_WORKER_LOCK_MS: '2000', XYP_WORKER_STALLED_INTERVAL_MS: '1000' });

  beforeAll(async () => {
    await Promise.all([harness.start('control-plane'), harness.start('corpus')]);
  }, 90_000);
  afterAll(() => harness.stopAll(), 30_000);

  it('completes the run once, with one committed manifest, after the first worker dies mid-job', async () => {
    const docs = Array.from({ length: 200_000 }, (_, i) => ({ id: `d${i}`, text: `line ${i} `.repeat(6), category: `c${i % 5}` }));
    await unary(harness.client.submitRun.bind(harness.client), submitRunRequest({ runId: 'run-restart', stages: ['corpus.inspect', 'corpus.bucket'], inputJsonl: jsonl(docs), inputName: 'big.jsonl' }));

    const first = harness.services.get('corpus')!;
    for await (const message of harness.client.watchRun({ runId: 'run-restart', afterEventId: '' }) as AsyncIterable<{ event?: RunEvent }>) {
      if (String(message.event?.type) === 'RUN_EVENT_TYPE_STAGE_PROGRESS') break;
    }
    first.child.kill('SIGKILL');
    await first.exited;
    await harness.start('corpus');

    const { run } = await eventually(
      async () => {
        const got = await unary(harness.client.getRun.bind(harness.client), { runId: 'run-restart' });
        return String(got.run?.status) === 'RUN_STATUS_COMPLETED' ? got : undefined;
      },
      60_000,
      'run to complete on the second worker',
    );
    expect(run?.error).toBe('');

    const events = await new RunEvents(harness.redis, harness.prefix).history('run-restart');
    const inspect = events.filter((e) => e.stage === 'corpus.inspect').map((e) => e.type);
    expect(inspect.filter((t) => t === 'stage-started')).toHaveLength(2);
    expect(inspect.filter((t) => t === 'stage-completed')).toHaveLength(1);
    // The second worker's stalled-job check found the dead worker's job and took it over: one event says so.
    const stalled = events.filter((e) => e.stage === 'corpus.inspect' && e.type === 'stage-retrying');
    expect(stalled).toHaveLength(1);
    expect(stalled[0].message).toBe(
      'job run-restart.corpus.inspect stalled: its worker stopped renewing the lock (killed or hung); back in the queue, taken over by the next free worker (stall 1 of at most 2)',
    );
    // ...and `xyp run watch` shows it.
    const watch = spawnSync(process.execPath, [join(WORKSPACE_ROOT, 'tools', 'xyp', 'bin', 'xyp.js'), 'run', 'watch', 'run-restart', '--address', `127.0.0.1:${harness.grpcPort}`], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(watch.status).toBe(0);
    expect(watch.stderr).toMatch(/ corpus\.inspect +stage-retrying job run-restart\.corpus\.inspect stalled: .*taken over by the next free worker/);

    const store = new LocalDirectoryStore(harness.storeDir);
    const manifests = await store.listManifests('run-restart', 'corpus.inspect');
    expect(manifests).toHaveLength(1);
    expect(manifests[0].result).toMatchObject({ docs: 200_000, rejected: 0 });
    const objects = readdirSync(join(harness.storeDir, 'runs', 'run-restart', 'corpus.inspect', 'objects'));
    expect(objects).toEqual([manifests[0].artifacts[0].sha256]);
  });

  it('skips the work of a job whose manifest an earlier attempt already committed', async () => {
    const store = new LocalDirectoryStore(harness.storeDir);
    await unary(harness.client.submitRun.bind(harness.client), submitRunRequest({ runId: 'run-precommitted', stages: ['corpus.inspect', 'corpus.bucket'], inputJsonl: jsonl([{ id: 1, text: 'x', category: 'news' }]), inputName: '' }));
    await eventually(async () => {
      const got = await unary(harness.client.getRun.bind(harness.client), { runId: 'run-precommitted' });
      return String(got.run?.status) === 'RUN_STATUS_COMPLETED' ? true : undefined;
    });
    const before = await store.readManifest('run-precommitted', 'corpus.inspect');
    // Deliver the same stage job again, as BullMQ may after a lost acknowledgement.
    const queue = new Queue('corpus.inspect', { connection: redisSettings(TEST_REDIS_URL), prefix: harness.prefix });
    const again = await queue.add('corpus.inspect', { runId: 'run-precommitted', inputKey: before!.artifacts[0].key }, { jobId: 'redelivered-1' });
    await eventually(async () => ((await again.getState()) === 'completed' ? true : undefined));
    await queue.close();
    expect(await store.readManifest('run-precommitted', 'corpus.inspect')).toEqual(before);
    const types = (await new RunEvents(harness.redis, harness.prefix).history('run-precommitted')).map((e) => `${e.stage}:${e.type}:${e.message}`);
    expect(types).toContain('corpus.inspect:stage-skipped:already committed');
  });

  it('finishes its active job before exiting on SIGTERM', async () => {
    const docs = Array.from({ length: 200_000 }, (_, i) => ({ id: `t${i}`, text: `term ${i} `.repeat(6), category: 'news' }));
    await unary(harness.client.submitRun.bind(harness.client), submitRunRequest({ runId: 'run-sigterm', stages: ['corpus.inspect', 'corpus.bucket'], inputJsonl: jsonl(docs), inputName: 'big.jsonl' }));
    for await (const message of harness.client.watchRun({ runId: 'run-sigterm', afterEventId: '' }) as AsyncIterable<{ event?: RunEvent }>) {
      if (String(message.event?.type) === 'RUN_EVENT_TYPE_STAGE_PROGRESS') break;
    }
    const worker = harness.services.get('corpus')!;
    const signalledAt = new Date().toISOString();
    worker.child.kill('SIGTERM');
    // Nest re-raises the signal after its shutdown hooks ran, so the process ends by SIGTERM.
    expect([0, 'SIGTERM']).toContain(await worker.exited);
    const store = new LocalDirectoryStore(harness.storeDir);
    expect((await store.readManifest('run-sigterm', 'corpus.inspect'))?.result).toMatchObject({ docs: 200_000 });
    const inspect = (await new RunEvents(harness.redis, harness.prefix).history('run-sigterm')).filter((e) => e.stage === 'corpus.inspect');
    expect(inspect.filter((e) => e.type === 'stage-started')).toHaveLength(1);
    const completed = inspect.find((e) => e.type === 'stage-completed');
    expect(completed).toBeDefined();
    expect(completed!.at > signalledAt).toBe(true);
  });
});
