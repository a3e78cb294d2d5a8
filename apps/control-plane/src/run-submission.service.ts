import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { InjectFlowProducer } from '@nestjs/bullmq';
import { Job, type FlowJob, type FlowProducer } from 'bullmq';
import {
  RECIPE_STAGES,
  RunId,
  isStageName,
  objectKey,
  stageJobId,
  type RunRecord,
  type StageName,
  type StageManifest,
} from '@xyp/contracts';
import { RUN_FLOW, StageProducer, StageRuntime, UnplannableStageError, buildRunFlow } from '@xyp/queue';
import { CONTROL_PLANE_ENV, sampleCorpusPath, type ControlPlaneEnv } from './control-plane.env';

/** A request the caller must fix (gRPC INVALID_ARGUMENT). */
export class InvalidRunRequestError extends Error {}
/** The run id names no run (gRPC NOT_FOUND). */
export class RunNotFoundError extends Error {}

export interface SubmitRunInput {
  runId?: string;
  stages?: string[];
  /** The uploaded corpus; undefined (left out) runs the bundled sample, zero bytes are refused. */
  inputJsonl?: Buffer;
  inputName?: string;
  params?: Record<string, string>;
  /** More input files by name (e.g. losses.jsonl for corpus.mix). */
  files?: Record<string, Buffer>;
}

interface RunInputFiles {
  /** Shown in the run record: "sample", "upload" or the uploaded file's name. */
  name: string;
  files: Record<string, Buffer>;
}

/** Names of extra input files: plain file names, not paths. */
const INPUT_FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** The stage that holds a run's input corpus. */
export const INPUT_STAGE = 'input';

/**
 * Starts, reads and cancels runs. A submission records the run, commits its input to
 * the artifact store (so every worker, on any machine, reads the same bytes) and adds
 * the run's flow; the same run id submitted again changes nothing.
 */
@Injectable()
export class RunSubmissionService {
  private readonly logger = new Logger(RunSubmissionService.name);

  constructor(
    private readonly runtime: StageRuntime,
    private readonly producer: StageProducer,
    @InjectFlowProducer(RUN_FLOW) private readonly flows: FlowProducer,
    @Inject(CONTROL_PLANE_ENV) private readonly env: ControlPlaneEnv,
  ) {}

  async submit(input: SubmitRunInput): Promise<{ run: RunRecord; created: boolean }> {
    const runId = input.runId || newRunId();
    const parsedId = RunId.safeParse(runId);
    if (!parsedId.success) throw new InvalidRunRequestError(`run_id ${JSON.stringify(runId)}: ${parsedId.error.issues[0].message}`);
    const stages = this.resolveStages(input.stages ?? []);
    refuseEmptyUpload(input);
    const existing = await this.runtime.registry.get(runId);
    if (existing) return { run: existing, created: false };

    const inputs = await this.runInputs(input);
    // Plan (and validate) the whole flow before recording anything: a request that
    // cannot run leaves no half-created run behind.
    const flow = this.plan(runId, stages, inputs, input.params ?? {});
    const now = new Date().toISOString();
    const { created, record } = await this.runtime.registry.create({
      runId,
      status: 'queued',
      stages,
      inputName: inputs.name,
      params: input.params ?? {},
      createdAt: now,
      updatedAt: now,
    });
    if (!created) return { run: record, created: false };

    try {
      await this.commitInputs(runId, inputs, now);
      await this.flows.add(flow);
    } catch (error) {
      await this.runtime.endRun(runId, 'failed', { stage: 'pipeline.run', error: `could not start: ${error instanceof Error ? error.message : error}` });
      throw error;
    }
    await this.runtime.events.publish({ runId, type: 'run-queued', stage: 'pipeline.run', message: `${stages.join(' -> ')} on ${inputs.name}` });
    this.logger.log(`run ${runId} queued: ${stages.join(' -> ')} on ${inputs.name} (${inputs.files['corpus.jsonl'].length} bytes)`);
    return { run: record, created: true };
  }

  async get(runId: string): Promise<RunRecord> {
    const run = await this.runtime.registry.get(runId);
    if (!run) throw new RunNotFoundError(`run ${runId} not found`);
    return run;
  }

  /**
   * Marks the run cancelled, then removes its flow. A stage that is running holds a
   * lock and cannot be removed; it stops at its next progress report instead.
   */
  async cancel(runId: string): Promise<RunRecord> {
    await this.get(runId);
    await this.runtime.endRun(runId, 'cancelled', { stage: 'pipeline.run', error: 'cancelled by request' });
    const root = await Job.fromId(this.producer.queue('pipeline.run'), stageJobId(runId, 'pipeline.run'));
    try {
      await root?.remove({ removeChildren: true });
    } catch (error) {
      this.logger.log(`run ${runId}: flow not removed while a stage is active (${error instanceof Error ? error.message : error}); the stage stops at its next progress report`);
    }
    return this.get(runId);
  }

  async artifacts(runId: string, stage?: string): Promise<StageManifest[]> {
    await this.get(runId);
    return this.runtime.store.listManifests(runId, stage || undefined);
  }

  private resolveStages(requested: string[]): StageName[] {
    if (requested.length === 0) return [...RECIPE_STAGES];
    for (const stage of requested) {
      if (!isStageName(stage) || stage === 'pipeline.run') {
        throw new InvalidRunRequestError(`stages: unknown stage ${JSON.stringify(stage)}`);
      }
    }
    return requested as StageName[];
  }

  /** The run's input files by name: `corpus.jsonl` (uploaded, or the bundled sample) and any extra files. */
  private async runInputs(input: SubmitRunInput): Promise<RunInputFiles> {
    for (const name of Object.keys(input.files ?? {})) {
      if (!INPUT_FILE_NAME.test(name) || name === 'corpus.jsonl') throw new InvalidRunRequestError(`files: ${JSON.stringify(name)} is not a usable file name`);
    }
    // Set means uploaded (submit() has refused an empty upload); only absent means the sample.
    if (input.inputJsonl !== undefined) {
      return { name: input.inputName || 'upload', files: { 'corpus.jsonl': input.inputJsonl, ...input.files } };
    }
    try {
      return { name: 'sample', files: { 'corpus.jsonl': await readFile(sampleCorpusPath(this.env)), ...input.files } };
    } catch {
      throw new InvalidRunRequestError(`input_jsonl is not set and the sample corpus ${sampleCorpusPath(this.env)} cannot be read`);
    }
  }

  /** The run's flow, with input keys computed from content (the store is content-addressed). */
  private plan(runId: string, stages: StageName[], inputs: RunInputFiles, params: Record<string, string>): FlowJob {
    const keys = Object.fromEntries(
      Object.entries(inputs.files).map(([name, content]) => [name, objectKey(runId, INPUT_STAGE, createHash('sha256').update(content).digest('hex'))]),
    );
    const { 'corpus.jsonl': inputKey, ...files } = keys;
    try {
      return buildRunFlow(stages, { runId, inputKey, files }, params);
    } catch (error) {
      if (error instanceof UnplannableStageError) throw new InvalidRunRequestError(error.message);
      throw error;
    }
  }

  /** Commits the input files as the run's `input` stage, before any stage can read them. */
  private async commitInputs(runId: string, inputs: RunInputFiles, committedAt: string): Promise<void> {
    const artifacts = [];
    for (const [name, content] of Object.entries(inputs.files)) {
      artifacts.push(await this.runtime.store.putObject(runId, INPUT_STAGE, name, content, name.endsWith('.jsonl') ? 'application/x-ndjson' : 'application/octet-stream'));
    }
    await this.runtime.store.commitManifest({
      version: 1,
      runId,
      stage: INPUT_STAGE,
      committedAt,
      artifacts,
      result: { name: inputs.name, files: Object.keys(inputs.files) },
    });
  }
}

/**
 * Only an absent input means the sample: an upload of zero bytes (an empty or truncated
 * file) is refused, whatever the run id, rather than run as the sample.
 */
function refuseEmptyUpload(input: SubmitRunInput): void {
  if (input.inputJsonl === undefined || input.inputJsonl.length > 0) return;
  const what = input.inputName ? `the uploaded input ${JSON.stringify(input.inputName)}` : 'the uploaded input';
  throw new InvalidRunRequestError(`input_jsonl: ${what} is empty (0 bytes); send JSONL documents, or leave input_jsonl out to run the bundled sample`);
}

/** `run-<yyyymmdd>-<8 hex>`: sortable by day, unique enough to never collide in practice. */
function newRunId(): string {
  const day = new Date().toISOString().slice(0, 10).replace(/-/g, '');
  return `run-${day}-${randomBytes(4).toString('hex')}`;
}
