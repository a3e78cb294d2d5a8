import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { SERVICE_NAMES, WORKSPACE_ROOT, httpPortVariable, startServiceProcess, type ServiceName, type ServiceProcess } from '@xyp/launcher';
import { TEST_REDIS_URL, dropPrefix, eventually, freePort, testPrefix } from '@xyp/testing';
import { TINY_RECIPE_PARAMS, jsonl } from './platform-harness';

const XYP = join(WORKSPACE_ROOT, 'tools', 'xyp', 'bin', 'xyp.js');

/** One `xyp up` of its own: key prefix, store and log directories, and every port. */
interface Up {
  prefix: string;
  dir: string;
  logDir: string;
  ports: Record<ServiceName, number> & { grpc: number };
  env: Record<string, string>;
}

async function privatePlatform(label: string, extra: Record<string, string> = {}): Promise<Up> {
  const prefix = testPrefix(label);
  const dir = mkdtempSync(join(tmpdir(), `xyp-up-${label}-`));
  const ports = { grpc: await freePort() } as Up['ports'];
  for (const name of SERVICE_NAMES) ports[name] = await freePort();
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? dir,
    XYP_REDIS_URL: TEST_REDIS_URL,
    XYP_QUEUE_PREFIX: prefix,
    XYP_STORE_DIR: join(dir, 'store'),
    XYP_LOG_DIR: join(dir, 'logs'),
    XYP_BOARD_PASSWORD: 'board-secret-42',
    XYP_CONTROL_PLANE_GRPC_PORT: String(ports.grpc),
    ...Object.fromEntries(SERVICE_NAMES.map((name) => [httpPortVariable(name), String(ports[name])])),
    ...extra,
  };
  return { prefix, dir, logDir: join(dir, 'logs'), ports, env };
}

interface Running {
  child: ChildProcess;
  stderr: () => string;
  exited: Promise<number | NodeJS.Signals>;
}

function xypUp(up: Up, args: string[] = []): Running {
  const child = spawn(process.execPath, [XYP, 'up', ...args], { cwd: WORKSPACE_ROOT, env: up.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdout!.resume();
  const exited = new Promise<number | NodeJS.Signals>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? 0)));
  return { child, stderr: () => stderr, exited };
}

/** Pids of the processes whose environment carries this platform's key prefix: its services. */
function processesOf(up: Up): number[] {
  const marker = `XYP_QUEUE_PREFIX=${up.prefix}`;
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/environ`, 'latin1').split('\0').includes(marker)) pids.push(Number(entry));
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return pids;
}

/**
 * `xyp up` as a new user runs it: the real CLI, every service its own process, real
 * Redis and ports. Each test has its own prefix and ports, and leaves no process behind.
 */
describe('xyp up', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  }, 30_000);

  function track(up: Up, run?: Running): void {
    cleanups.push(async () => {
      if (run && run.child.exitCode === null && run.child.signalCode === null) {
        run.child.kill('SIGTERM');
        await run.exited;
      }
      // Anything this platform left running (only when a test failed): never past the test.
      for (const pid of processesOf(up)) process.kill(pid, 'SIGKILL');
      const redis = new Redis(TEST_REDIS_URL);
      await dropPrefix(redis, up.prefix);
      redis.disconnect();
      rmSync(up.dir, { recursive: true, force: true });
    });
  }

  it('runs the bundled recipe (a run spec) to the end and prints the paths of the report it wrote beside the store', async () => {
    const up = await privatePlatform('up-report');
    const input = join(up.dir, 'small.jsonl');
    const sample = readFileSync(join(WORKSPACE_ROOT, 'data', 'sample', 'corpus.jsonl'), 'utf8').split('\n').filter(Boolean).slice(0, 200);
    writeFileSync(input, `${sample.join('\n')}\n`);
    // The training stages on tiny models: this checks the wiring of the whole recipe, not the learning.
    const tiny = Object.entries(TINY_RECIPE_PARAMS).flatMap(([name, value]) => ['--param', `${name}=${value}`]);
    const run = xypUp(up, ['--input', input, ...tiny]);
    let stdout = '';
    run.child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    track(up, run);
    expect(await run.exited).toBe(0);
    expect(run.stderr()).toMatch(/corpus\.inspect +stage-queued/);
    const runId = /^run (run-\S+): completed$/m.exec(stdout)?.[1];
    expect(runId, stdout).toBeDefined();
    expect(stdout).toContain('  corpus.bucket: committed');
    for (const id of ['corpus.bucket#byte', 'cpt', 'sft', 'eval#cpt', 'eval#sft', 'reward.prepare', 'reward.train#finetune-s3', 'reward.train#bt-only-s1', 'reward.evaluate', 'rlhf.ci-filter', 'rlhf.ppo#round-1', 'rlhf.evaluate#round-1', 'rlhf.improve#round-1']) expect(stdout).toContain(`  ${id}: committed`);
    const html = join(up.dir, 'reports', `${runId}.html`);
    expect(stdout).toContain(`report: ${html}\n`);
    expect(stdout).toContain(`        ${join(up.dir, 'reports', `${runId}.md`)}\n`);
    // The copy links into the store by relative path, and every link opens.
    const page = readFileSync(html, 'utf8');
    const hrefs = [...page.matchAll(/href="([^"#][^"]*)"/g)].map((m) => m[1]);
    expect(hrefs.length).toBeGreaterThan(5);
    expect(hrefs.every((href) => href.startsWith(`../store/runs/${runId}/`))).toBe(true);
    for (const href of hrefs) expect(existsSync(join(up.dir, 'reports', href)), href).toBe(true);
  }, 150_000);

  it('stops every service it started when one fails to start (bad Bull Board password)', async () => {
    const up = await privatePlatform('up-badpass', { XYP_BOARD_PASSWORD: 'short' });
    const run = xypUp(up);
    track(up, run);
    expect(await run.exited).toBe(1);
    // Every service was stopped before `xyp up` returned: none survives it.
    expect(processesOf(up)).toEqual([]);
    const lines = run.stderr().trim().split('\n');
    expect(lines[lines.length - 1]).toBe('xyp: control-plane: invalid configuration: XYP_BOARD_PASSWORD: must be at least 8 characters (got a value of 5 characters, not shown)');
  }, 90_000);

  it('never reads "ready" from a stale process on a service port: one line naming the port and the service, nothing left running', async () => {
    const up = await privatePlatform('up-stale');
    track(up);
    // What an earlier `xyp up` left behind: a corpus on the corpus port, same Redis and prefix.
    const stale: ServiceProcess = await startServiceProcess('corpus', { env: up.env, logFile: join(up.dir, 'stale-corpus.log') });
    cleanups.push(() => void stale.stop(5000));

    const run = xypUp(up);
    track(up, run);
    expect(await run.exited).toBe(1);
    expect(run.stderr()).not.toContain('corpus ready');
    expect(run.stderr()).not.toContain('submitted');
    // Its own services are all gone; the stale process is not its to stop.
    expect(processesOf(up)).toEqual([stale.child.pid]);
    const lines = run.stderr().trim().split('\n');
    expect(lines[lines.length - 1]).toBe(
      `xyp: corpus: port ${up.ports.corpus} (XYP_CORPUS_HTTP_PORT) is already in use, by another process (pid ${stale.child.pid}, instance ${stale.instanceId}): stop it first`,
    );
    expect(run.stderr()).not.toMatch(/\n\s+at /); // no stack trace
    expect(stale.httpUrl).toBe(`http://127.0.0.1:${up.ports.corpus}`);
  }, 90_000);

  it('leaves no service running when it is itself killed (SIGKILL: no exit hook runs)', async () => {
    const up = await privatePlatform('up-killed');
    const run = xypUp(up, ['--keep']);
    track(up, run);
    await eventually(() => (run.stderr().includes(' submitted') ? true : undefined), 90_000, 'the run to be submitted');
    expect(processesOf(up).filter((pid) => pid !== run.child.pid)).toHaveLength(SERVICE_NAMES.length);
    run.child.kill('SIGKILL');
    await run.exited;
    // Each service sees its launcher's IPC channel close and shuts down as on SIGTERM.
    await eventually(() => (processesOf(up).length === 0 ? true : undefined), 30_000, 'every service to stop');
  }, 150_000);

  it('guards /metrics with the launch\'s token, and cancels the run it submitted when interrupted (Ctrl-C), so the next xyp up does not resume it beside its own', async () => {
    const up = await privatePlatform('up-interrupted');
    const run = xypUp(up);
    track(up, run);
    const runId = await eventually(() => /run (run-\S+) submitted/.exec(run.stderr())?.[1], 90_000, 'the run to be submitted');
    await eventually(() => (run.stderr().includes('stage-started') ? true : undefined), 60_000, 'a stage to start');
    // /metrics wants the launch's metrics token, which xyp up keeps in an owner-only file beside the store.
    const metrics = `http://127.0.0.1:${up.ports['control-plane']}/metrics`;
    expect((await fetch(metrics)).status).toBe(401);
    const tokenFile = join(up.dir, 'metrics-token');
    expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
    const scraped = await fetch(metrics, { headers: { authorization: `Bearer ${readFileSync(tokenFile, 'utf8').trim()}` } });
    expect(scraped.status).toBe(200);
    expect(await scraped.text()).toContain('bullmq_job_count');
    run.child.kill('SIGINT');
    expect(await run.exited).toBe(130);
    expect(run.stderr()).toContain(`SIGINT: cancelling run ${runId}`);
    const redis = new Redis(TEST_REDIS_URL);
    try {
      const record = JSON.parse((await redis.get(`${up.prefix}:run:${runId}`)) ?? '{}') as { status?: string };
      expect(record.status).toBe('cancelled');
    } finally {
      redis.disconnect();
    }
    await eventually(() => (processesOf(up).length === 0 ? true : undefined), 30_000, 'every service to stop');
    expect(existsSync(tokenFile)).toBe(false);
  }, 150_000);

  it('honours every configured port, and ends with a non-zero exit when a service dies during the run', async () => {
    const up = await privatePlatform('up-died');
    const input = join(up.dir, 'big.jsonl');
    writeFileSync(input, jsonl(Array.from({ length: 150_000 }, (_, i) => ({ id: `d${i}`, text: `line ${i} `.repeat(6), category: `c${i % 5}` }))));
    const run = xypUp(up, ['--keep', '--input', input]);
    track(up, run);
    await eventually(() => (/corpus\.inspect\s+stage-progress/.test(run.stderr()) ? true : undefined), 90_000, 'the run to be under way');

    for (const name of SERVICE_NAMES) expect(run.stderr()).toContain(`  ${name} ready at http://127.0.0.1:${up.ports[name]}\n`);
    expect(run.stderr()).toContain(`Bull Board: http://127.0.0.1:${up.ports['control-plane']}/queues (user admin, password board-secret-42)`);
    const answers = await Promise.all(
      SERVICE_NAMES.map(async (name) => (await (await fetch(`http://127.0.0.1:${up.ports[name]}/readyz`)).json()) as { instance: string; pid: number }),
    );
    answers.forEach((answer, i) => expect(answer.instance.startsWith(`${SERVICE_NAMES[i]}-`)).toBe(true));
    const corpus = answers[SERVICE_NAMES.indexOf('corpus')];

    process.kill(corpus.pid, 'SIGKILL');
    const code = await Promise.race([run.exited, new Promise((r) => setTimeout(() => r('still running'), 30_000))]);
    expect(code).toBe(1);
    const stderr = run.stderr();
    // The death is said at once, then the services are stopped (events already in flight may print in between).
    const died = stderr.indexOf(`corpus (pid ${corpus.pid}) exited after it was ready, with signal SIGKILL; log ${join(up.logDir, 'corpus.log')}\n`);
    expect(died, stderr).toBeGreaterThanOrEqual(0);
    expect(stderr.indexOf('\nstopping services\n', died)).toBeGreaterThan(died);
    expect(stderr).not.toContain('platform stays up');
    expect(processesOf(up)).toEqual([]);
  }, 150_000);
});
