import { Inject, Injectable, Logger } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { STAGE_NAMES } from '@xyp/contracts';
import { QUEUE_SETTINGS, REDIS_CLIENT, StageProducer, collectRuns, type CollectRunsResult, type QueueSettings } from '@xyp/queue';
import { RunPlans, RunRegistry } from '@xyp/runs';
import { ARTIFACT_STORE, type ArtifactStore } from '@xyp/storage';

/** `CollectRuns`: removes old ended runs from the store, the queues and Redis (`collectRuns`). */
@Injectable()
export class RunRetentionService {
  private readonly logger = new Logger('retention');

  constructor(
    private readonly registry: RunRegistry,
    private readonly plans: RunPlans,
    private readonly producer: StageProducer,
    @Inject(ARTIFACT_STORE) private readonly store: ArtifactStore,
    @Inject(REDIS_CLIENT) private readonly redis: Redis,
    @Inject(QUEUE_SETTINGS) private readonly settings: QueueSettings,
  ) {}

  async collect(olderThanMs: number, dryRun: boolean): Promise<CollectRunsResult> {
    const queues = STAGE_NAMES.map((stage) => this.producer.queue(stage));
    const result = await collectRuns({ registry: this.registry, plans: this.plans, store: this.store, redis: this.redis, prefix: this.settings.prefix, queues }, { olderThanMs, dryRun });
    const verb = dryRun ? 'would remove' : 'removed';
    this.logger.log(`${verb} ${result.removed.length} run(s) ended over ${Math.round(olderThanMs / 1000)} s ago${result.removed.length ? `: ${result.removed.map((r) => r.runId).join(', ')}` : ''}; kept ${result.active} active, ${result.recent} recent`);
    return result;
  }
}
