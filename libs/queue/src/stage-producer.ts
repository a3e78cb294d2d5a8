import { Injectable } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { getQueueToken } from '@nestjs/bullmq';
import type { Job, JobsOptions, Queue } from 'bullmq';
import { STAGES, stageJobId, type PayloadOf, type StageName } from '@xyp/contracts';
import { describeIssues } from './stage-worker';

/**
 * Enqueues stage jobs. The stage name fixes the payload type, so a payload meant for
 * another stage does not compile; it is validated again here, so a bad value never
 * reaches Redis. Job ids are deterministic (run id + stage): enqueueing twice is a no-op.
 */
@Injectable()
export class StageProducer {
  constructor(private readonly moduleRef: ModuleRef) {}

  queue(stage: StageName): Queue {
    return this.moduleRef.get<Queue>(getQueueToken(stage), { strict: false });
  }

  async enqueue<S extends StageName>(stage: S, payload: PayloadOf<S>, options: JobsOptions = {}): Promise<Job> {
    const parsed = STAGES[stage].payload.safeParse(payload);
    if (!parsed.success) throw new Error(`invalid ${stage} payload: ${describeIssues(parsed.error)}`);
    const data = parsed.data as { runId: string };
    return this.queue(stage).add(stage, data, { jobId: stageJobId(data.runId, stage), ...options });
  }
}
