import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunEvent as RunEventRecord, StageManifest } from '@xyp/contracts';
import { submitRunRequest, unary, type RunEvent } from '@xyp/grpc';
import { WORKSPACE_ROOT } from '@xyp/launcher';
import { RunEvents } from '@xyp/runs';
import { LocalDirectoryStore } from '@xyp/storage';
import { eventually, freePort, startPrivateRedis, type PrivateRedis } from '@xyp/testing';
import { PlatformHarness } from './platform-harness';

/**
 * Faults the platform must ride through or report clearly, on service processes over a private
 * redis-server this file restarts and freezes: each disturbed run is compared with an undisturbed
 * run of the same input done first (committed manifests counted; counts, sizes and hashes equal).
 *
 * Covered elsewhere, not repeated here: a worker SIGKILLed mid-job, taken over, one manifest
 * (worker-restart.e2e.spec.ts); every service killed mid-run and started again, the run resumed
 * (run-plan.e2e.spec.ts); a corpus over its reject limit failing without retries, and each reject
 * reason of corpus.bucket with its line number (corpus-bucket.e2e.spec.ts).
 */

const XYP = join(WORKSPACE_ROOT, 'tools', 'xyp', 'bin', 'xyp.js');
const STAGES = ['corpus.inspect', 'corpus.bucket'];
/** Shards of 300 lines: the bucketing fans out into part jobs, so a fault meets jobs in flight. */
const PARAMS = { 'corpus.bucket.shard_lines': '300', 'corpus.bucket.window_lines': '100', 'corpus.bucket.seed': '7' };
const sample = readFileSync(join(WORKSPACE_ROOT, 'data', 'sample', 'corpus.jsonl'), 'utf8').split('\n').filter(Boolean);
/** 3,600 documents: the sample twice, ids made unique. */
const CORPUS = Buffer.from(
  [...sample, ...sample.map((line) => line.replace(/"id":"([^"]+)"/, '"id":"$1-b"'))].join('\n') + '\n',
);

type Figures = Record<string, { result: unknown; artifacts: { name: string; size: number; sha256: string }[] }>;

/** What a run committed, by instance: results and artifacts (name, size, hash), without keys or times. */
function figuresOf(manifests: StageManifest[]): Figures {
  return Object.fromEntries(
    manifests
      // The inputs are the same bytes by construction; the report (pipeline.run) carries times.
      .filter((m) => m.stage !== 'input' && m.stage !== 'pipeline.run')
      .map((m) => [
        m.instance ? `${m.stage}#${m.instance}` : m.stage,
        { result: m.result, artifacts: m.artifacts.map(({ name, size, sha256 }) => ({ name, size, sha256 })).sort((a, b) => a.name.localeCompare(b.name)) },
      ]),
  );
}

interface Watch {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `xyp run <args>` as a child process; resolves when it exits (killed after `timeoutMs`). */
function xyp(args: string[], timeoutMs: number): { done: Promise<Watch>; stderr: () => string } {
  const child = spawn(process.execPath, [XYP, 'run', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const done = new Promise<Watch>((resolve) =>
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    }),
  );
  return { done, stderr: () => stderr };
}

/** The event lines a watch printed (every stderr line but the CLI's own `xyp: …` and `submitted` lines). */
const eventLines = (stderr: string) => stderr.split('\n').filter((line) => line && !line.startsWith('xyp: ') && !/^(already )?submitted: /.test(line));
/** The ms part of a Redis stream id: when the event was written. */
const writtenAt = (event: { id: string }) => Number(event.id.split('-')[0]);

describe('faults: Redis restarted, frozen and emptied, an LLM endpoint down, corrupt input', () => {
  let redis: PrivateRedis;
  let harness: PlatformHarness;
  let baseline: Figures;
  const dir = mkdtempSync(join(tmpdir(), 'xyp-faults-'));
  const corpusPath = join(dir, 'corpus.jsonl');
  writeFileSync(corpusPath, CORPUS);
  const store = () => new LocalDirectoryStore(harness.storeDir);
  const history = (runId: string) => new RunEvents(harness.redis, harness.prefix).history(runId, '0-0', 10_000);
  const address = () => `127.0.0.1:${harness.grpcPort}`;

  const submit = (runId: string, input: Buffer = CORPUS) =>
    unary(harness.client.submitRun.bind(harness.client), submitRunRequest({ runId, stages: STAGES, inputJsonl: input, inputName: 'corpus.jsonl', params: PARAMS }));

  /** Resolves with the first event of the run that `matches`, read as it is written. */
  async function firstEvent(runId: string, matches: (event: RunEvent) => boolean): Promise<RunEvent> {
    for await (const message of harness.client.watchRun({ runId, afterEventId: '' }) as AsyncIterable<{ event?: RunEvent }>) {
      if (message.event && matches(message.event)) return message.event;
    }
    throw new Error(`run ${runId} ended before the awaited event`);
  }
  const bucketProgress = (e: RunEvent) => e.stage === 'corpus.bucket' && String(e.type) === 'RUN_EVENT_TYPE_STAGE_PROGRESS';
  /** Waits until the bucketing is under way and the watch (a child process) has printed one of its events: it is connected. */
  async function midBucketing(runId: string, watch: { stderr: () => string }): Promise<void> {
    await firstEvent(runId, bucketProgress);
    await eventually(() => (/ corpus\.bucket +stage-progress/.test(watch.stderr()) ? true : undefined), 15_000, `the watch of ${runId} to print a corpus.bucket event`);
  }

  /** Checks a run the watch followed through a fault: exit 0, every event printed once and in order, and the baseline's figures. */
  async function expectCompletedAsBaseline(runId: string, watch: Watch): Promise<RunEventRecord[]> {
    expect(watch.code, watch.stderr).toBe(0);
    expect(watch.stdout).toMatch(new RegExp(`^run ${runId}: completed`));
    const events = await history(runId);
    expect(new Set(events.map((e) => e.id)).size).toBe(events.length);
    // What the watch printed is the stream: every event once, in order (`<time> <instance> <type> …`).
    expect(eventLines(watch.stderr).map((line) => line.split(/\s+/).slice(1, 3).join(' '))).toEqual(events.map((e) => `${e.instance ? `${e.stage}#${e.instance}` : e.stage} ${e.type}`));
    const manifests = await store().listManifests(runId);
    expect(manifests.map((m) => m.stage).sort()).toEqual(['corpus.bucket', 'corpus.inspect', 'input', 'pipeline.run']);
    expect(figuresOf(manifests)).toEqual(baseline);
    return events;
  }

  beforeAll(async () => {
    redis = await startPrivateRedis(await freePort());
    // One attempt per job: riding through a fault must not fail even one attempt (and the dead LLM
    // endpoint fails its stage after the gateway's own retries, not three times that). The default
    // 30 s lock: a 10 s freeze must not make jobs look stalled.
    harness = new PlatformHarness('faults', { XYP_JOB_ATTEMPTS: '1' }, { redisUrl: redis.url });
    harness.redis.on('error', () => undefined);
    await Promise.all([harness.start('control-plane'), harness.start('corpus'), harness.start('synthesis')]);
  }, 120_000);
  afterAll(async () => {
    await harness?.stopAll();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  it('an undisturbed run of the corpus: the figures the disturbed runs must match', async () => {
    await submit('run-undisturbed');
    const watch = await xyp(['watch', 'run-undisturbed', '--address', address()], 60_000).done;
    expect(watch.code, watch.stderr).toBe(0);
    const manifests = await store().listManifests('run-undisturbed');
    baseline = figuresOf(manifests);
    expect(Object.keys(baseline).sort()).toEqual(['corpus.bucket', 'corpus.inspect']);
    expect(baseline['corpus.inspect'].result).toMatchObject({ docs: 3600, rejected: 0 });
    expect(baseline['corpus.bucket'].result).toMatchObject({ documentsIn: 3600, kept: 3600, rejected: 0 });
  }, 60_000);

  it('Redis restarted with its data mid-run: every service reconnects, the run completes as undisturbed, the watch exits 0', async () => {
    await submit('run-redis-restart');
    const watch = xyp(['watch', 'run-redis-restart', '--address', address()], 90_000);
    await midBucketing('run-redis-restart', watch);
    // Down 2 s: longer than a client with a small per-command retry limit lasts.
    await redis.restart({ keepData: true, downMs: 2000 });
    const back = Date.now();
    const events = await expectCompletedAsBaseline('run-redis-restart', await watch.done);
    // It was mid-run: the run completed after Redis came back; the stream stayed open (no reconnect).
    expect(writtenAt(events.at(-1)!)).toBeGreaterThan(back);
    expect(events.at(-1)!.type).toBe('run-completed');
    expect((await watch.done).stderr).not.toContain('reconnecting');
  }, 90_000);

  it('the control plane killed mid-watch: `xyp run watch` reconnects after its last event, prints every event once, exits 0', async () => {
    await submit('run-cp-killed');
    const watch = xyp(['watch', 'run-cp-killed', '--address', address()], 90_000);
    await midBucketing('run-cp-killed', watch);
    const controlPlane = harness.services.get('control-plane')!;
    controlPlane.child.kill('SIGKILL');
    await controlPlane.exited;
    await harness.start('control-plane');
    const ended = await watch.done;
    expect(ended.stderr).toMatch(/^xyp: the watch of run run-cp-killed broke off \((14 UNAVAILABLE|13 INTERNAL): [^\n]*\); reconnecting in 0\.5 s, after event \d+-\d+ \(try 1 of 6\)$/m);
    await expectCompletedAsBaseline('run-cp-killed', ended);
  }, 90_000);

  it('Redis frozen for 10 s (SIGSTOP) mid-run: the run completes as undisturbed, the watch exits 0', async () => {
    await submit('run-redis-frozen');
    const watch = xyp(['watch', 'run-redis-frozen', '--address', address()], 90_000);
    await midBucketing('run-redis-frozen', watch);
    await redis.freeze(10_000);
    const thawed = Date.now();
    const events = await expectCompletedAsBaseline('run-redis-frozen', await watch.done);
    expect(writtenAt(events.at(-1)!)).toBeGreaterThan(thawed);
  }, 90_000);

  it('Redis restarted empty mid-run: the watch ends with the reason, GetRun gives it, and resubmitting the run id resumes from what was committed', async () => {
    await submit('run-redis-lost');
    const watch = xyp(['watch', 'run-redis-lost', '--address', address()], 60_000);
    await midBucketing('run-redis-lost', watch);
    await redis.restart({ keepData: false });
    const lostAt = Date.now();
    const ended = await watch.done;
    expect(Date.now() - lostAt).toBeLessThan(15_000);
    expect(ended.code).toBe(1);
    expect(ended.stderr).toMatch(/ corpus\.bucket +stage-progress/);
    const reason =
      /run run-redis-lost: Redis holds no record of it \(Redis lost its data\?\), but the store has [12] committed instance\(s\) under runs\/run-redis-lost\/ \(corpus\.inspect(, corpus\.bucket)?\) and its inputs: resubmit the same spec and input with the same run id to resume from them/;
    expect(ended.stderr.trim().split('\n').at(-1)).toMatch(new RegExp(`^xyp: 9 FAILED_PRECONDITION: ${reason.source}`));
    const got = await unary(harness.client.getRun.bind(harness.client), { runId: 'run-redis-lost' }).catch((e: unknown) => e as { code: number; details: string });
    expect(got).toMatchObject({ code: 9, details: expect.stringMatching(reason) });

    // Nothing hangs: the same submission again, on the same services, completes from the committed instances.
    const resumed = await xyp(['submit', '--run-id', 'run-redis-lost', '--stages', STAGES.join(','), '--input', corpusPath, ...Object.entries(PARAMS).flatMap(([k, v]) => ['--param', `${k}=${v}`]), '--watch', '--address', address()], 60_000).done;
    expect(resumed.stderr).toContain('submitted: run run-redis-lost');
    await expectCompletedAsBaseline('run-redis-lost', resumed);
    const inspect = (await history('run-redis-lost')).filter((e) => e.stage === 'corpus.inspect').map((e) => e.type);
    expect(inspect).not.toContain('stage-started');
  }, 90_000);

  it('an LLM endpoint down: synthesis.selfqa backs off, then fails the stage and the run naming the endpoint', async () => {
    const deadPort = await freePort();
    const spec = [
      'version: 1',
      'name: llm-down',
      'inputs:',
      '  corpus.jsonl: corpus.jsonl',
      '  registry.yaml: registry.yaml',
      'stages:',
      '  - id: synthesis.selfqa',
      '    inputs: { input: input/corpus.jsonl, registry: input/registry.yaml }',
      '    params: { concurrency: 1, instructions_per_document: 1 }',
    ].join('\n');
    // A short cooldown: the gateway pauses an endpoint that fails most calls (30 s by default) before its last attempts.
    const registry = `models:\n  - name: generator\n    baseUrl: http://127.0.0.1:${deadPort}/v1\n    model: gen-1\n    timeoutMs: 2000\n    cooldown: { cooldownMs: 1000 }\n`;
    const documents = readFileSync(join(WORKSPACE_ROOT, 'data', 'sample', 'synthesis', 'documents.jsonl'), 'utf8').split('\n').slice(0, 2).join('\n') + '\n';
    await unary(
      harness.client.submitRun.bind(harness.client),
      submitRunRequest({ runId: 'run-llm-down', spec, inputJsonl: Buffer.from(documents), inputName: 'documents.jsonl', params: {}, files: { 'registry.yaml': Buffer.from(registry) } }),
    );
    const watch = await xyp(['watch', 'run-llm-down', '--address', address()], 60_000).done;
    expect(watch.code).toBe(1);
    const { run } = await unary(harness.client.getRun.bind(harness.client), { runId: 'run-llm-down' });
    expect(String(run?.status)).toBe('RUN_STATUS_FAILED');
    expect(run?.error).toContain(`at http://127.0.0.1:${deadPort}/v1`);
    expect(run?.error).toMatch(/failed after 6 attempt\(s\); last: connection failed.*ECONNREFUSED/);
    const events = await history('run-llm-down');
    const started = events.find((e) => e.stage === 'synthesis.selfqa' && e.type === 'stage-started')!;
    const failed = events.find((e) => e.type === 'run-failed')!;
    // Six attempts with backoff (0.5, 1, 2, 4, 8 s, less up to 25 % jitter), not six at once.
    expect(writtenAt(failed) - writtenAt(started)).toBeGreaterThan(10_000);
    expect(await store().readManifest('run-llm-down', 'synthesis.selfqa')).toBeNull();
  }, 60_000);

  it('corrupt input lines (bad JSON, missing text, binary garbage): quarantined with their line numbers, counted in the manifests and the run report', async () => {
    const lines = CORPUS.toString('utf8').trim().split('\n').map((l) => Buffer.from(l));
    lines.splice(9, 0, Buffer.from('{"id": "torn", "text": "the line ends'));
    lines.splice(1000, 0, Buffer.from(JSON.stringify({ id: 'no-text', category: 'news' })));
    lines.splice(2500, 0, Buffer.from([0x00, 0x9f, 0xff, 0x13, 0x37, 0xfe, 0x00, 0x0b, 0xad]));
    await submit('run-corrupt', Buffer.concat(lines.flatMap((line) => [line, Buffer.from('\n')])));
    const watch = await xyp(['watch', 'run-corrupt', '--address', address()], 60_000).done;
    expect(watch.code, watch.stderr).toBe(0);
    const manifests = await store().listManifests('run-corrupt');
    const figures = figuresOf(manifests);
    expect(figures['corpus.inspect'].result).toMatchObject({ docs: 3600, rejected: 3 });
    const bucket = manifests.find((m) => m.stage === 'corpus.bucket')!;
    expect(bucket.result).toMatchObject({ documentsIn: 3603, kept: 3600, rejected: 3 });
    const rejects = (await store().getObject(bucket.artifacts.find((a) => a.name === 'rejects.jsonl')!.key)).toString('utf8').trim().split('\n').map((l) => JSON.parse(l) as { line: number; reason: string });
    expect(rejects.map((r) => r.line)).toEqual([10, 1001, 2501]);
    expect(rejects.map((r) => r.reason)).toEqual(['malformed-json', 'missing-text', expect.any(String)]);
    // The kept documents are the undisturbed run's: the same counts per category.
    expect((figures['corpus.inspect'].result as { categories: unknown }).categories).toEqual((baseline['corpus.inspect'].result as { categories: unknown }).categories);
    const { run } = await unary(harness.client.getRun.bind(harness.client), { runId: 'run-corrupt' });
    const report = JSON.parse((await store().getObject(run!.reportKey)).toString('utf8')) as unknown;
    expect(JSON.stringify(report)).toContain('"rejected":3');
  }, 60_000);
});
