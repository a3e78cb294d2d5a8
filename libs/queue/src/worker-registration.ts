import { Inject, Injectable, Logger, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import { BullRegistrar } from '@nestjs/bullmq';
import type { StageName } from '@xyp/contracts';
import { StageWorker } from './stage-worker';
import { StageRuntime } from './stage-runtime';
import { announceStalledJob } from './stalled-jobs';
import { EXPECTED_STAGES, QUEUE_SETTINGS } from './tokens';
import type { QueueSettings } from './queue-settings';

/** Metadata key under which @nestjs/bullmq reads a processor's Worker options. */
const WORKER_METADATA = 'bullmq:worker_metadata';

/**
 * Starts this app's workers once every module is ready, and only when each expected
 * stage has exactly one processor: a stage with no handler, or with two, stops the
 * app at start-up instead of leaving jobs unprocessed or processed twice.
 * Worker options (concurrency, lock duration, stalled-job check) come from
 * configuration here, since `@Processor()` options are fixed at compile time.
 * A job found stalled (its worker died) is announced in its run's events.
 */
@Injectable()
export class WorkerRegistration implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(WorkerRegistration.name);
  private workers: StageWorker<StageName>[] = [];

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly registrar: BullRegistrar,
    @Inject(QUEUE_SETTINGS) private readonly settings: QueueSettings,
    @Inject(EXPECTED_STAGES) private readonly expected: readonly StageName[],
    private readonly runtime: StageRuntime,
  ) {}

  onApplicationBootstrap(): void {
    const workers = this.discovery
      .getProviders()
      .map((wrapper) => wrapper.instance as unknown)
      .filter((instance): instance is StageWorker<StageName> => instance instanceof StageWorker);
    const byStage = new Map<string, string[]>();
    for (const worker of workers) {
      byStage.set(worker.stage, [...(byStage.get(worker.stage) ?? []), worker.constructor.name]);
    }
    for (const [stage, handlers] of byStage) {
      if (handlers.length > 1) throw new Error(`stage ${stage} has ${handlers.length} handlers (${handlers.join(', ')}); it must have one`);
      if (!this.expected.includes(stage as StageName)) throw new Error(`stage ${stage} has a handler (${handlers[0]}) but this app does not declare it`);
    }
    const missing = this.expected.filter((stage) => !byStage.has(stage));
    if (missing.length) throw new Error(`no handler for stage(s) ${missing.join(', ')}`);

    for (const worker of workers) {
      const declared = (Reflect.getMetadata(WORKER_METADATA, worker.constructor) ?? {}) as object;
      Reflect.defineMetadata(WORKER_METADATA, { ...this.settings.worker, ...declared }, worker.constructor);
    }
    this.registrar.register();
    this.workers = workers;
    for (const stageWorker of workers) {
      // A job whose worker died is moved back to wait by the stalled-job check; say so in its run's events.
      stageWorker.worker.on('stalled', (jobId: string) => {
        announceStalledJob(this.runtime, stageWorker.stage, jobId, this.settings.worker.maxStalledCount ?? 1).catch((error: unknown) =>
          this.logger.warn(`${stageWorker.stage} job ${jobId} stalled; its run event was not written: ${error instanceof Error ? error.message : String(error)}`),
        );
      });
    }
    this.logger.log(`workers started for ${[...byStage.keys()].join(', ') || 'no stage'}`);
  }

  /**
   * On SIGTERM/SIGINT, before any connection closes: stop taking jobs and wait for the
   * active ones to finish, so their events and manifests are written. A job that
   * outlives the pod's grace period loses its lock and another worker takes it over.
   */
  async beforeApplicationShutdown(signal?: string): Promise<void> {
    if (!this.workers.length) return;
    this.logger.log(`${signal ?? 'shutdown'}: closing workers, waiting for active jobs`);
    await Promise.all(this.workers.map((stageWorker) => stageWorker.worker.close()));
  }
}
