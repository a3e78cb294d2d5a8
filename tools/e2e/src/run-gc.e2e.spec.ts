import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { redisSettings } from '@xyp/config';
import { submitRunRequest, unary, type RunEvent } from '@xyp/grpc';
import { WORKSPACE_ROOT } from '@xyp/launcher';
import { TEST_REDIS_URL } from '@xyp/testing';
import { PlatformHarness, jsonl } from './platform-harness';

const docs = Array.from({ length: 40 }, (_, i) => ({ id: `d${i}`, text: `Line ${i} of a small corpus about bond yields.`, category: i % 2 ? 'news' : 'finance' }));

function xyp(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [join(WORKSPACE_ROOT, 'tools/xyp/bin/xyp.js'), ...args], { cwd: WORKSPACE_ROOT, env });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

/** `xyp run gc` against the real control plane: ended runs go from the store, the queues and Redis. */
describe('xyp run gc', () => {
  const harness = new PlatformHarness('run-gc');
  const address = () => `127.0.0.1:${harness.grpcPort}`;

  async function runToEnd(runId: string): Promise<void> {
    await unary(harness.client.submitRun.bind(harness.client), submitRunRequest({ runId, stages: ['corpus.inspect', 'corpus.bucket'], inputJsonl: jsonl(docs), inputName: 'small.jsonl' }));
    for await (const message of harness.client.watchRun({ runId, afterEventId: '' }) as AsyncIterable<{ event?: RunEvent }>) void message;
  }

  beforeAll(async () => {
    await Promise.all([harness.start('control-plane'), harness.start('corpus')]);
    await runToEnd('run-gc-a');
    await runToEnd('run-gc-b');
  }, 120_000);
  afterAll(() => harness.stopAll(), 30_000);

  it('keeps runs younger than the cutoff, lists on --dry-run, then removes every trace of the ended runs', async () => {
    const young = await xyp(['run', 'gc', '--older-than', '7d', '--json', '--address', address()]);
    expect(young.code, young.stderr).toBe(0);
    expect(JSON.parse(young.stdout)).toMatchObject({ removed: [], recent: 2, active: 0 });

    const dry = await xyp(['run', 'gc', '--older-than', '0s', '--dry-run', '--address', address()]);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/^would remove 2 run\(s\)/);
    expect(existsSync(join(harness.storeDir, 'runs', 'run-gc-a'))).toBe(true);

    const connection = { ...redisSettings(TEST_REDIS_URL), maxRetriesPerRequest: null };
    const queues = ['corpus.inspect', 'corpus.bucket', 'pipeline.run'].map((name) => new Queue(name, { connection, prefix: harness.prefix }));
    const jobsOf = async (runId: string) => (await Promise.all(queues.map((q) => q.getJobs(['completed', 'failed', 'waiting', 'delayed'])))).flat().filter((j) => j.id?.startsWith(`${runId}.`)).length;
    try {
      const before = { 'run-gc-a': await jobsOf('run-gc-a'), 'run-gc-b': await jobsOf('run-gc-b') };
      expect(before['run-gc-a']).toBeGreaterThan(0);
      const done = await xyp(['run', 'gc', '--older-than', '0s', '--json', '--address', address()]);
      expect(done.code, done.stderr).toBe(0);
      const removed = (JSON.parse(done.stdout) as { removed: { runId: string; jobs: number; committedBytes: number }[] }).removed;
      expect(removed.map((r) => r.runId).sort()).toEqual(['run-gc-a', 'run-gc-b']);
      for (const r of removed) {
        // Every job the run still had on the queues (stage jobs, part jobs, pipeline steps).
        expect(r.jobs).toBe(before[r.runId as keyof typeof before]);
        expect(r.committedBytes).toBeGreaterThan(0);
        expect(await jobsOf(r.runId)).toBe(0);
      }
    } finally {
      await Promise.all(queues.map((q) => q.close()));
    }
    expect(readdirSync(join(harness.storeDir, 'runs')).filter((d) => d.startsWith('run-gc-'))).toEqual([]);
    expect(await harness.redis.keys(`${harness.prefix}:*run-gc-*`)).toEqual([]);
    const gone = await unary(harness.client.getRun.bind(harness.client), { runId: 'run-gc-a' }).catch((error: ServiceError) => error);
    expect((gone as ServiceError).code).toBe(GrpcStatus.NOT_FOUND);
  });

  it('names a bad duration and removes nothing', async () => {
    const bad = await xyp(['run', 'gc', '--older-than', 'a week', '--address', address()]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('--older-than "a week": expected a duration like 7d');
  });
});
