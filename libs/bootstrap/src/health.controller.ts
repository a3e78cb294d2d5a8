import { hostname } from 'node:os';
import { Controller, Get, HttpException, HttpStatus, Inject } from '@nestjs/common';
import type { Redis } from 'ioredis';
import type { PlatformEnv } from '@xyp/config';
import { REDIS_CLIENT } from '@xyp/queue';
import { ARTIFACT_STORE, type ArtifactStore } from '@xyp/storage';

/** Which process answers: set by whoever started it (`XYP_INSTANCE_ID`), and its pid. */
export interface ServiceInstance {
  instance: string;
  pid: number;
}

export const SERVICE_INSTANCE = Symbol('SERVICE_INSTANCE');

export function serviceInstance(env: Pick<PlatformEnv, 'XYP_INSTANCE_ID'>): ServiceInstance {
  return { instance: env.XYP_INSTANCE_ID ?? `${hostname()}:${process.pid}`, pid: process.pid };
}

/**
 * Liveness (`/healthz`: the process answers) and readiness (`/readyz`: Redis answers
 * and the artifact store is reachable), for Kubernetes probes. Both name the process
 * (`instance`, `pid`), so a launcher never takes a stale process on the same port for
 * the one it started.
 */
@Controller()
export class HealthController {
  constructor(
    @Inject(REDIS_CLIENT) private readonly redis: Redis,
    @Inject(ARTIFACT_STORE) private readonly store: ArtifactStore,
    @Inject(SERVICE_INSTANCE) private readonly self: ServiceInstance,
  ) {}

  @Get('healthz')
  live(): { status: 'ok' } & ServiceInstance {
    return { status: 'ok', ...this.self };
  }

  @Get('readyz')
  async ready(): Promise<{ status: 'ok'; redis: string; store: string } & ServiceInstance> {
    try {
      const pong = await this.redis.ping();
      await this.store.readManifest('health-probe', 'probe');
      return { status: 'ok', redis: pong, store: this.store.describe(), ...this.self };
    } catch (error) {
      throw new HttpException(
        { status: 'unavailable', reason: error instanceof Error ? error.message : String(error), ...this.self },
        HttpStatus.SERVICE_UNAVAILABLE,
      );
    }
  }
}
