import { Injectable } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { getQueueToken } from '@nestjs/bullmq';
import type { Job, JobsOptions, Queue } from 'bullmq';
import type { PayloadOf, StageName } from '@xyp/contracts';
import { currentTraceContext } from '@xyp/telemetry';
import { stageJob } from './stage-job';

/**
 * Enqueues stage jobs through `stageJob`: the stage name fixes the payload type, the payload
 * is validated before it reaches Redis, and job ids are deterministic (run id + stage +
 * instance key), so enqueueing twice is a no-op. With tracing on, a payload without a trace
 * context gets the current span's (`trace`), so the worker's span is its child.
 */
@Injectable()
export class StageProducer {
  constructor(private readonly moduleRef: ModuleRef) {}

  queue(stage: StageName): Queue {
    return this.moduleRef.get<Queue>(getQueueToken(stage), { strict: false });
  }

  async enqueue<S extends StageName>(stage: S, payload: PayloadOf<S>, options: JobsOptions = {}): Promise<Job> {
    const trace = payload.trace ?? currentTraceContext();
    const job = stageJob(stage, trace ? { ...payload, trace } : payload);
    return this.queue(stage).add(job.name, job.data, { ...job.opts, ...options });
  }
}
