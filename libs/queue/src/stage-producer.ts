import { Injectable } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { getQueueToken } from '@nestjs/bullmq';
import type { Job, JobsOptions, Queue } from 'bullmq';
import type { PayloadOf, StageName } from '@xyp/contracts';
import { stageJob } from './stage-job';

/**
 * Enqueues stage jobs through `stageJob`: the stage name fixes the payload type, the payload
 * is validated before it reaches Redis, and job ids are deterministic (run id + stage +
 * instance key), so enqueueing twice is a no-op.
 */
@Injectable()
export class StageProducer {
  constructor(private readonly moduleRef: ModuleRef) {}

  queue(stage: StageName): Queue {
    return this.moduleRef.get<Queue>(getQueueToken(stage), { strict: false });
  }

  async enqueue<S extends StageName>(stage: S, payload: PayloadOf<S>, options: JobsOptions = {}): Promise<Job> {
    const job = stageJob(stage, payload);
    return this.queue(stage).add(job.name, job.data, { ...job.opts, ...options });
  }
}
