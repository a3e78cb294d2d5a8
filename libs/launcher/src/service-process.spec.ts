import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { TEST_REDIS_URL, dropPrefix, freePort, testPrefix } from '@xyp/testing';
import { ServiceGroup, startServiceProcess, type ServiceProcess } from './service-process';

/** Real service processes (the light `trainer` skeleton, and the control plane) on real ports. */
describe('service processes started by the launcher', () => {
  const prefix = testPrefix('launcher');
  const storeDir = mkdtempSync(join(tmpdir(), 'xyp-launcher-'));
  const started: ServiceProcess[] = [];
  const env = (extra: Record<string, string> = {}) => ({
    XYP_REDIS_URL: TEST_REDIS_URL,
    XYP_QUEUE_PREFIX: prefix,
    XYP_STORE: 'local',
    XYP_STORE_DIR: storeDir,
    ...extra,
  });
  const keep = (service: ServiceProcess) => (started.push(service), service);
  const gone = (service: ServiceProcess) => service.child.exitCode !== null || service.child.signalCode !== null;

  afterAll(async () => {
    await Promise.all(started.map((service) => service.stop(5000)));
    const redis = new Redis(TEST_REDIS_URL);
    await dropPrefix(redis, prefix);
    redis.disconnect();
    rmSync(storeDir, { recursive: true, force: true });
  }, 30_000);

  it("listens on the service's own port variable and answers /readyz with the instance it was given", async () => {
    const port = await freePort();
    const service = keep(await startServiceProcess('trainer', { env: env({ XYP_TRAINER_HTTP_PORT: String(port) }), logFile: join(storeDir, 'trainer-port.log') }));
    expect(service.httpPort).toBe(port);
    expect(service.httpUrl).toBe(`http://127.0.0.1:${port}`);
    const ready = (await (await fetch(`http://127.0.0.1:${port}/readyz`)).json()) as { instance: string; pid: number };
    expect(ready).toMatchObject({ status: 'ok', instance: service.instanceId, pid: service.child.pid });
  });

  it('never takes a stale process on the port for the one it started: one line naming the port and the service', async () => {
    const port = await freePort();
    const stale = keep(await startServiceProcess('trainer', { env: env(), httpPort: port, logFile: join(storeDir, 'trainer-stale.log') }));
    const error = await startServiceProcess('trainer', { env: env(), httpPort: port, logFile: join(storeDir, 'trainer-second.log') }).then(
      (second) => (keep(second), null),
      (e: Error) => e,
    );
    expect(error?.message).toBe(
      `trainer: port ${port} (XYP_TRAINER_HTTP_PORT) is already in use, by another process (pid ${stale.pid}, instance ${stale.instanceId}): stop it first`,
    );
    // The stale process is left alone: it still answers, as itself.
    const ready = (await (await fetch(`${stale.httpUrl}/readyz`)).json()) as { instance: string };
    expect(ready.instance).toBe(stale.instanceId);
  }, 90_000);

  it('stops every service of a group, those still starting included, when one fails to start', async () => {
    const group = new ServiceGroup();
    const ports = { trainer: await freePort(), 'control-plane': await freePort() };
    const failure = await group
      .start(['trainer', 'control-plane'], (name) => ({
        env: env(name === 'control-plane' ? { XYP_BOARD_PASSWORD: 'short' } : {}),
        httpPort: ports[name as keyof typeof ports],
        logFile: join(storeDir, `${name}-group.log`),
      }))
      .then(() => null, (e: Error) => e);
    group.services.forEach(keep);
    expect(failure?.message).toBe('control-plane: invalid configuration: XYP_BOARD_PASSWORD: must be at least 8 characters (got "short")');
    expect(group.services.map((service) => [service.name, gone(service)])).toEqual([
      ['trainer', true],
      ['control-plane', true],
    ]);
  }, 90_000);

  it('reports a service that exits after it was ready, and not one it was asked to stop', async () => {
    const group = new ServiceGroup();
    const ports = { trainer: await freePort(), synthesis: await freePort() };
    await group.start(['trainer', 'synthesis'], (name) => ({ env: env(), httpPort: ports[name as keyof typeof ports], logFile: join(storeDir, `${name}-died.log`) }));
    group.services.forEach(keep);
    const [trainer, synthesis] = group.services;
    await synthesis.stop(5000);
    trainer.child.kill('SIGKILL');
    const exit = await group.unexpectedExit;
    expect(exit.service.name).toBe('trainer');
    expect(exit.result).toBe('SIGKILL');
    await group.stop(5000);
  }, 90_000);
});
