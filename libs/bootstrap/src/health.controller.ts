import { Controller, Get, HttpException, HttpStatus, Inject } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { REDIS_CLIENT } from '@xyp/queue';
import { ARTIFACT_STORE, type ArtifactStore } from '@xyp/storage';

/**
 * Liveness (`/healthz`: the process answers) and readiness (`/readyz`: Redis answers
 * and the artifact store is reachable), for Kubernetes probes.
 */
@Controller()
export class HealthController {
  constructor(
    @Inject(REDIS_CLIENT) private readonly redis: Redis,
    @Inject(ARTIFACT_STORE) private readonly store: ArtifactStore,
  ) {}

  @Get('healthz')
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  @Get('readyz')
  async ready(): Promise<{ status: 'ok'; redis: string; store: string }> {
    try {
      const pong = await this.redis.ping();
      await this.store.readManifest('health-probe', 'probe');
      return { status: 'ok', redis: pong, store: this.store.describe() };
    } catch (error) {
      throw new HttpException(
        { status: 'unavailable', reason: error instanceof Error ? error.message : String(error) },
        HttpStatus.SERVICE_UNAVAILABLE,
      );
    }
  }
}
