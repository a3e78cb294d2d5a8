import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisSettings } from '@xyp/config';
import { manifestKey, type RunEvent as RunEventRecord } from '@xyp/contracts';
import { unary, type RunEvent } from '@xyp/grpc';
import { WORKSPACE_ROOT, type ServiceName } from '@xyp/launcher';
import { RunEvents } from '@xyp/runs';
import { LocalDirectoryStore } from '@xyp/storage';
import { TEST_REDIS_URL, eventually } from '@xyp/testing';
import { PlatformHarness } from './platform-harness';

const XYP = join(WORKSPACE_ROOT, 'tools', 'xyp', 'bin', 'xyp.js');
const RUN = 'run-plan-e2e';
const SERVICES: ServiceName[] = ['control-plane', 'corpus'];

/**
 * A run spec with every shape the recipe needs, on real service processes, queues, workers and
 * store: a parallel branch (two corpus.bucket instances after corpus.inspect) and its join
 * (corpus.compare reads both committed manifests), a phased stage (corpus.mix#stage-2 reads the
 * weights stage-1 committed), and a dynamic loop of corpus.mix rounds that the control plane
 * extends while the mixture still moves (stop_below) — with every service killed in the middle
 * of the loop and started again.
 */
const SPEC = `
version: 1
name: plan-e2e
description: phases, a branch and its join, and a loop, killed mid-loop
inputs:
  corpus.jsonl: corpus.jsonl
  losses.jsonl: losses.jsonl
  weights.json: weights.json
  mixture-config.json: mixture-config.json
params:
  corpus.bucket: { window_tokens: 8192, shard_lines: 200 }
stages:
  - id: corpus.inspect
  - id: corpus.bucket#bucket
    needs: [corpus.inspect]
    params: { strategy: bucket, buckets: [256, 512, 1024] }
  - id: corpus.bucket#bfd
    needs: [corpus.inspect]
    params: { strategy: bfd, buckets: 1024 }
  - id: corpus.compare
    inputs: { packings: [corpus.bucket#bucket, corpus.bucket#bfd] }
  - id: corpus.mix#stage-1
    inputs: { losses: input/losses.jsonl, weights: input/weights.json }
  - id: corpus.mix#stage-2
    inputs: { losses: input/losses.jsonl, weights: corpus.mix#stage-1/weights.json }
loops:
  - name: round
    after: corpus.mix#stage-2
    max_rounds: 4
    body:
      - stage: corpus.mix
        inputs: { weights: previous/weights.json }
        params: { stop_below: 0.01 }
`;

const LOSSES = [
  { step: 0, category: 'news', loss: 3.0 },
  { step: 0, category: 'finance', loss: 3.5 },
  { step: 50, category: 'news', loss: 2.2 },
  { step: 50, category: 'finance', loss: 3.4 },
  { step: 100, category: 'news', loss: 2.0 },
  { step: 100, category: 'finance', loss: 3.3 },
];

const type = (e: { type: unknown }) => String(e.type).replace('RUN_EVENT_TYPE_', '').toLowerCase().replace(/_/g, '-');
const ref = (e: { stage: string; instance: string }) => (e.instance ? `${e.stage}#${e.instance}` : e.stage);

describe('a run spec with phases, a branch and its join, and a dynamic loop, across a restart of every service', () => {
  // Short locks: a job whose worker was killed is taken over within seconds. Four jobs at a time,
  // so the two branches run side by side.
  const harness = new PlatformHarness('plan', { XYP_WORKER_LOCK_MS: '2000', XYP_WORKER_STALLED_INTERVAL_MS: '1000', XYP_WORKER_CONCURRENCY: '4' });
  const dir = mkdtempSync(join(tmpdir(), 'xyp-plan-spec-'));
  const specPath = join(dir, 'spec.yaml');
  const connection = redisSettings(TEST_REDIS_URL);
  let history: () => Promise<RunEventRecord[]>;
  let killedAt = '';
  let committedBeforeKill: string[] = [];

  beforeAll(async () => {
    const sample = readFileSync(join(WORKSPACE_ROOT, 'data', 'sample', 'corpus.jsonl'), 'utf8').split('\n').filter(Boolean).slice(0, 600);
    writeFileSync(join(dir, 'corpus.jsonl'), `${sample.join('\n')}\n`);
    writeFileSync(join(dir, 'losses.jsonl'), LOSSES.map((l) => JSON.stringify(l)).join('\n'));
    writeFileSync(join(dir, 'weights.json'), JSON.stringify({ news: 0.5, finance: 0.5 }));
    // Small steps, so the mixture settles over several rounds (0.028, 0.027, 0.025, 0.020, then 0).
    writeFileSync(join(dir, 'mixture-config.json'), JSON.stringify({ maxStep: 0.05, learningRate: 0.3 }));
    writeFileSync(specPath, SPEC);
    await Promise.all(SERVICES.map((name) => harness.start(name)));
    const events = new RunEvents(harness.redis, harness.prefix);
    history = () => events.history(RUN, '0-0', 10_000);
  }, 90_000);

  afterAll(async () => {
    await harness.stopAll();
    rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  function xyp(args: string[]): { status: number | null; stdout: string; stderr: string } {
    return spawnSync(process.execPath, [XYP, ...args, '--address', `127.0.0.1:${harness.grpcPort}`], { encoding: 'utf8', timeout: 60_000 });
  }

  async function runStatus(): Promise<string> {
    return String((await unary(harness.client.getRun.bind(harness.client), { runId: RUN })).run?.status);
  }

  it('refuses a spec that cannot run with INVALID_ARGUMENT naming the field, recording nothing', () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, SPEC.replace('window_tokens: 8192', 'window_tokens: 100').replace('needs: [corpus.inspect]\n    params: { strategy: bfd', 'needs: [corpus.nope]\n    params: { strategy: bfd'));
    const refused = xyp(['run', 'submit', bad, '--run-id', 'run-plan-bad']);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain('INVALID_ARGUMENT');
    expect(refused.stderr).toContain('stages[1].params.window_tokens: must be at least the largest sequence length (1024)');
    expect(refused.stderr).toContain('stages[2].needs[0]: unknown instance "corpus.nope"');
    const status = xyp(['run', 'status', 'run-plan-bad']);
    expect(status.status).toBe(1);
    expect(status.stderr).toContain('NOT_FOUND');
  });

  it('runs the branch and the phases in parallel, and the loop round by round, until every service is killed mid-loop', async () => {
    const submitted = xyp(['run', 'submit', specPath, '--run-id', RUN, '--json']);
    expect(submitted.stderr).toContain(`submitted: run ${RUN}`);
    expect(submitted.status).toBe(0);
    expect(JSON.parse(submitted.stdout).created).toBe(true);

    // Hold the run mid-loop: once round 1 is queued, pause the control plane's queue, so no
    // planning step runs and round 2 is not added; then wait for round 1 to commit.
    const control = new Queue('pipeline.run', { connection, prefix: harness.prefix });
    try {
      await eventually(async () => ((await history()).some((e) => e.type === 'stage-queued' && ref(e) === 'corpus.mix#round-1') ? true : undefined), 60_000, 'round 1 to be queued');
      await control.pause();
      const store = new LocalDirectoryStore(harness.storeDir);
      await eventually(async () => (await store.readManifest(RUN, 'corpus.mix#round-1')) ?? undefined, 60_000, 'round 1 to commit');

      // Every service dies at once, without a chance to finish anything (SIGKILL).
      killedAt = new Date().toISOString();
      committedBeforeKill = (await store.listManifests(RUN)).map((m) => (m.instance ? `${m.stage}#${m.instance}` : m.stage));
      for (const name of SERVICES) harness.services.get(name)!.child.kill('SIGKILL');
      await Promise.all(SERVICES.map((name) => harness.services.get(name)!.exited));
    } finally {
      await control.close();
    }
    // Mid-loop indeed: round 1 committed, the loop not ended, the run not closed.
    expect(committedBeforeKill).toContain('corpus.mix#round-1');
    expect(committedBeforeKill).not.toContain('corpus.mix#round-3');
    expect((await history()).map((e) => e.type)).not.toContain('loop-stopped');
    expect(committedBeforeKill).not.toContain('pipeline.run');
  }, 120_000);

  it('resumes from the last committed instance once the services are back, and completes the run', async () => {
    await Promise.all(SERVICES.map((name) => harness.start(name)));
    const control = new Queue('pipeline.run', { connection, prefix: harness.prefix });
    await control.resume();
    await control.close();
    await eventually(async () => ((await runStatus()) === 'RUN_STATUS_COMPLETED' ? true : undefined), 90_000, 'the run to complete after the restart');

    const events = await history();
    if (process.env.XYP_DEBUG) console.info(events.map((e) => `${e.at.slice(11, 23)} ${ref(e).padEnd(22)} ${e.type} ${e.message}`).join('\n'));
    const ids = ['corpus.inspect', 'corpus.bucket#bucket', 'corpus.bucket#bfd', 'corpus.compare', 'corpus.mix#stage-1', 'corpus.mix#stage-2', 'corpus.mix#round-1', 'corpus.mix#round-2', 'corpus.mix#round-3'];
    for (const id of ids) {
      // Each instance committed exactly once, restart or not.
      expect(events.filter((e) => ref(e) === id && e.type === 'stage-completed'), id).toHaveLength(1);
      expect(events.filter((e) => ref(e) === id && e.type === 'stage-queued'), id).toHaveLength(1);
    }
    // Nothing committed before the kill ran again after it.
    const rerun = events.filter((e) => e.at > killedAt && e.type === 'stage-started' && committedBeforeKill.includes(ref(e)));
    expect(rerun.map(ref)).toEqual([]);
    expect(events.map(ref)).not.toContain('corpus.mix#round-4');
    expect(events.filter((e) => e.type === 'stage-failed')).toEqual([]);
  }, 150_000);

  it('keeps each instance in its own folder with its own results, and streams instance events on WatchRun', async () => {
    const store = new LocalDirectoryStore(harness.storeDir);
    const bucket = (await store.readManifest(RUN, 'corpus.bucket#bucket'))!;
    const bfd = (await store.readManifest(RUN, 'corpus.bucket#bfd'))!;
    expect(existsSync(join(harness.storeDir, manifestKey(RUN, 'corpus.bucket#bucket')))).toBe(true);
    expect(bucket.result).toMatchObject({ strategy: 'bucket', documentsIn: 600 });
    expect(bfd.result).toMatchObject({ strategy: 'bfd', documentsIn: 600 });
    expect(bucket.artifacts.every((a) => a.key.startsWith(`runs/${RUN}/corpus.bucket/bucket/objects/`))).toBe(true);
    expect(bfd.artifacts.every((a) => a.key.startsWith(`runs/${RUN}/corpus.bucket/bfd/objects/`))).toBe(true);
    expect(bucket.artifacts.map((a) => a.name)).toContain('bucket_1024.bin');
    expect(bfd.artifacts.map((a) => a.name)).toContain('bucket_1024.bin');

    // The branches were queued together by one step, and ran side by side.
    const events = await history();
    const at = (id: string, t: string) => events.findIndex((e) => ref(e) === id && e.type === t);
    const firstDone = Math.min(at('corpus.bucket#bucket', 'stage-completed'), at('corpus.bucket#bfd', 'stage-completed'));
    expect(Math.max(at('corpus.bucket#bucket', 'stage-queued'), at('corpus.bucket#bfd', 'stage-queued'))).toBeLessThan(firstDone);
    expect(Math.max(at('corpus.bucket#bucket', 'stage-started'), at('corpus.bucket#bfd', 'stage-started'))).toBeLessThan(firstDone);
    // The join waited for both.
    expect(at('corpus.compare', 'stage-queued')).toBeGreaterThan(Math.max(at('corpus.bucket#bucket', 'stage-completed'), at('corpus.bucket#bfd', 'stage-completed')));

    // Jobs have the instance in their ids, and each payload names what its dependencies committed.
    const mix = new Queue('corpus.mix', { connection, prefix: harness.prefix });
    const compare = new Queue('corpus.compare', { connection, prefix: harness.prefix });
    try {
      const weightsOf = async (id: string) => (await store.readManifest(RUN, id))!.artifacts.find((a) => a.name === 'weights.json')!.key;
      const readsWeights = async (id: string) => ((await mix.getJob(`${RUN}.${id}`))!.data as { weightsKey: string }).weightsKey;
      expect(await readsWeights('corpus.mix#stage-2')).toBe(await weightsOf('corpus.mix#stage-1'));
      expect(await readsWeights('corpus.mix#round-1')).toBe(await weightsOf('corpus.mix#stage-2'));
      expect(await readsWeights('corpus.mix#round-2')).toBe(await weightsOf('corpus.mix#round-1'));
      expect(await readsWeights('corpus.mix#round-3')).toBe(await weightsOf('corpus.mix#round-2'));
      const join = (await compare.getJob(`${RUN}.corpus.compare`))!.data as { packings: { instance: string; manifestKey: string }[] };
      expect(join.packings).toEqual([
        { instance: 'corpus.bucket#bucket', manifestKey: manifestKey(RUN, 'corpus.bucket#bucket') },
        { instance: 'corpus.bucket#bfd', manifestKey: manifestKey(RUN, 'corpus.bucket#bfd') },
      ]);
    } finally {
      await mix.close();
      await compare.close();
    }
    const ranking = (await store.readManifest(RUN, 'corpus.compare'))!.result as { best: string; ranking: { instance: string }[] };
    expect(ranking.ranking.map((r) => r.instance).sort()).toEqual(['corpus.bucket#bfd', 'corpus.bucket#bucket']);

    // The loop ran three rounds and ended on its decider's word, with the reason recorded.
    const stopped = events.filter((e) => e.type === 'loop-stopped');
    expect(stopped).toHaveLength(1);
    expect(stopped[0].message).toMatch(/^loop round ended after 3 round\(s\): corpus\.mix#round-3 said stop: largest weight change 0\.0000 \(.*\) < 0\.01: the mixture has settled$/);
    expect(events.filter((e) => e.type === 'loop-continued').map((e) => ref(e))).toEqual(['corpus.mix#round-1', 'corpus.mix#round-2']);
    const { run } = await unary(harness.client.getRun.bind(harness.client), { runId: RUN });
    expect(run?.loops).toEqual([expect.objectContaining({ name: 'round', rounds: 3, maxRounds: 4, stopped: true })]);
    expect(run?.instances.map((i) => [i.id, String(i.status)])).toEqual(
      ['corpus.inspect', 'corpus.bucket#bucket', 'corpus.bucket#bfd', 'corpus.compare', 'corpus.mix#stage-1', 'corpus.mix#stage-2', 'corpus.mix#round-1', 'corpus.mix#round-2', 'corpus.mix#round-3'].map((id) => [
        id,
        'STAGE_INSTANCE_STATUS_COMMITTED',
      ]),
    );

    // WatchRun replays the same events, instance keys included.
    const watched: RunEvent[] = [];
    for await (const message of harness.client.watchRun({ runId: RUN, afterEventId: '' }) as AsyncIterable<{ event?: RunEvent }>) if (message.event) watched.push(message.event);
    expect(watched.map((e) => e.id)).toEqual(events.map((e) => e.id));
    expect(watched.find((e) => type(e) === 'stage-completed' && e.stage === 'corpus.bucket' && e.instance === 'bfd')).toBeDefined();
    expect(type(watched[watched.length - 1])).toBe('run-completed');

    // ListArtifacts names each artifact's instance; a stage lists all of its instances.
    const { artifacts } = await unary(harness.client.listArtifacts.bind(harness.client), { runId: RUN, stage: 'corpus.bucket' });
    expect([...new Set(artifacts.map((a) => `${a.stage}#${a.instance}`))].sort()).toEqual(['corpus.bucket#bfd', 'corpus.bucket#bucket']);
  }, 60_000);

  it('writes a readable report: one section per instance, every artifact linked by a relative path that opens', async () => {
    const { run } = await unary(harness.client.getRun.bind(harness.client), { runId: RUN });
    const htmlFile = join(harness.storeDir, run!.reportHtmlKey);
    const html = readFileSync(htmlFile, 'utf8');
    for (const id of ['corpus.inspect', 'corpus.bucket#bucket', 'corpus.bucket#bfd', 'corpus.compare', 'corpus.mix#stage-1', 'corpus.mix#round-3']) {
      expect(html).toContain(`id="i-${id.replace(/[^a-z0-9-]/g, '-')}"`);
    }
    expect(html).toContain('<svg');
    expect(html).not.toMatch(/<script|<link |src="http/);
    const hrefs = [...html.matchAll(/href="([^"#][^"]*)"/g)].map((m) => m[1].replace(/&amp;/g, '&'));
    expect(hrefs.length).toBeGreaterThan(20);
    for (const href of hrefs) expect(existsSync(resolve(dirname(htmlFile), href)), href).toBe(true);
    const markdown = readFileSync(join(harness.storeDir, run!.reportMarkdownKey), 'utf8');
    expect(markdown).toContain('## corpus.bucket#bfd (corpus.bucket, instance bfd)');
    expect(markdown).toContain('## Loop round');
  });

  it('starts nothing when the same run id is submitted again: no new job, no new event', async () => {
    const queues = ['pipeline.run', 'corpus.inspect', 'corpus.bucket', 'corpus.mix', 'corpus.compare'].map((name) => new Queue(name, { connection, prefix: harness.prefix }));
    try {
      const jobs = async () => Promise.all(queues.map(async (q) => Object.values(await q.getJobCounts()).reduce((a, b) => a + b, 0)));
      const before = { jobs: await jobs(), events: (await history()).length };
      const again = xyp(['run', 'submit', specPath, '--run-id', RUN, '--json']);
      expect(again.status).toBe(0);
      expect(again.stderr).toContain(`already submitted: run ${RUN}`);
      expect(JSON.parse(again.stdout).created).toBe(false);
      await new Promise((r) => setTimeout(r, 1500));
      expect({ jobs: await jobs(), events: (await history()).length }).toEqual(before);
    } finally {
      await Promise.all(queues.map((q) => q.close()));
    }
  });
});
