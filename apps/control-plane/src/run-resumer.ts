import { Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { RunOrchestrator } from '@xyp/queue';

/**
 * On start, one planning step for every run not yet ended: after a restart of every service,
 * whatever a lost step would have queued is queued (steps are idempotent, so this adds nothing
 * twice). Runs in the background; the service is ready meanwhile.
 */
@Injectable()
export class RunResumer implements OnApplicationBootstrap {
  private readonly logger = new Logger(RunResumer.name);

  constructor(private readonly orchestrator: RunOrchestrator) {}

  onApplicationBootstrap(): void {
    this.orchestrator.resumeActive().catch((error: unknown) => this.logger.warn(`resuming runs failed: ${error instanceof Error ? error.message : String(error)}`));
  }
}
