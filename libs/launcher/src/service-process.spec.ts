import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { status, type ServiceError } from '@grpc/grpc-js';
import { createPipelineClient, unary } from '@xyp/grpc';
import { TEST_REDIS_URL, dropPrefix, freePort, testPrefix } from '@xyp/testing';
import { launchGrpcEnv } from './grpc-token';
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
    expect(failure?.message).toBe('control-plane: invalid configuration: XYP_BOARD_PASSWORD: must be at least 8 characters (got a value of 5 characters, not shown)');
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

  it('gives every service of a launch one fresh gRPC token: the control plane refuses calls without it and answers with it', async () => {
    const group = new ServiceGroup({});
    const grpcPort = await freePort();
    const httpPort = await freePort();
    const [controlPlane] = await group.start(['control-plane'], () => ({
      env: env({ XYP_BOARD_PASSWORD: 'board-secret-42', XYP_CONTROL_PLANE_GRPC_PORT: String(grpcPort) }),
      httpPort,
      logFile: join(storeDir, 'control-plane-token.log'),
    }));
    keep(controlPlane);
    const address = `127.0.0.1:${grpcPort}`;
    const tokenless = createPipelineClient(address, {});
    const launched = createPipelineClient(address, { token: group.grpcToken });
    try {
      const refused = await unary(tokenless.getRun.bind(tokenless), { runId: 'run-unknown' }, 10_000).then(() => null, (e: ServiceError) => e);
      expect(refused?.code).toBe(status.UNAUTHENTICATED);
      // Past authentication: the control plane itself answers that the run does not exist.
      const answered = await unary(launched.getRun.bind(launched), { runId: 'run-unknown' }, 10_000).then(() => null, (e: ServiceError) => e);
      expect(answered?.code).toBe(status.NOT_FOUND);
    } finally {
      tokenless.close();
      launched.close();
      await group.stop(5000);
    }
  }, 90_000);
});

describe('launchGrpcEnv', () => {
  it('makes a fresh token per launch, accepted and sent by every service', () => {
    const first = launchGrpcEnv({});
    expect(first.XYP_GRPC_TOKENS).toBe(first.XYP_GRPC_TOKEN);
    expect(first.XYP_GRPC_TOKEN).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(launchGrpcEnv({}).XYP_GRPC_TOKEN).not.toBe(first.XYP_GRPC_TOKEN);
  });

  it('leaves tokens the environment configures alone', () => {
    expect(launchGrpcEnv({ XYP_GRPC_TOKENS: 'configured-token-0123456789' })).toEqual({});
    expect(launchGrpcEnv({ XYP_GRPC_TOKENS_FILE: '/run/secrets/grpc-tokens' })).toEqual({});
  });
});
