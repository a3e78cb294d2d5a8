import type { z } from 'zod';
import { PAYLOAD_SCHEMAS, stageJobId, type ParsedPayloadOf, type PayloadOf, type StageName } from '@xyp/contracts';
import { describeIssues } from './describe-issues';

/** A payload that does not match its stage's schema: a bug in the caller, never retried. */
export class InvalidStagePayloadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidStagePayloadError';
  }
}

/** One stage job as BullMQ takes it, from `Queue.add` (name, data, opts) or as a node of a flow. */
export interface StageJob<S extends StageName> {
  name: S;
  queueName: S;
  data: ParsedPayloadOf<S>;
  opts: { jobId: string };
}

/**
 * The one typed path from a stage's payload to its job, for `StageProducer.enqueue` and for the
 * planner's flows alike: the stage name fixes the payload type (a payload meant for another stage
 * does not compile), the payload is validated (a bad value never reaches Redis), and the job id is
 * deterministic — run id, stage and instance key — so adding the same job twice adds it once.
 */
export function stageJob<S extends StageName>(stage: S, payload: PayloadOf<S>): StageJob<S> {
  const parsed = check(PAYLOAD_SCHEMAS[stage], payload);
  if (!parsed.success) throw new InvalidStagePayloadError(`invalid ${stage} payload: ${describeIssues(parsed.error)}`);
  const data: ParsedPayloadOf<S> = parsed.data;
  return { name: stage, queueName: stage, data, opts: { jobId: stageJobId(data.runId, stage, data.instance) } };
}


/** `safeParse` with the output typed by the schema's type argument (for a schema indexed by a generic stage). */
function check<O>(schema: z.ZodType<O>, value: unknown): { success: true; data: O } | { success: false; error: z.ZodError } {
  const result = schema.safeParse(value);
  return result.success ? { success: true, data: result.data } : { success: false, error: result.error };
}
