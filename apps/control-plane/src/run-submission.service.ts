import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { RunId, objectKey, type RunEvent, type RunRecord, type StageManifest } from '@xyp/contracts';
import { CORPUS_INPUT, RunSpecError, compileRunSpec, parseRunSpec, parseRunSpecText, planStageIds, specFromStages, type CompiledPlan, type RunSpec } from '@xyp/planner';
import { RunOrchestrator, StageRuntime, type RunView } from '@xyp/queue';
import { retryWhileRedisUnreachable } from '@xyp/runs';
import { CONTROL_PLANE_ENV, recipeSpecPath, sampleCorpusPath, type ControlPlaneEnv } from './control-plane.env';

/** A request the caller must fix (gRPC INVALID_ARGUMENT). */
export class InvalidRunRequestError extends Error {}
/** The run id names no run (gRPC NOT_FOUND). */
export class RunNotFoundError extends Error {}
/**
 * Redis holds no record of the run, but the store holds what it committed: Redis lost its data
 * (restarted empty, flushed). gRPC FAILED_PRECONDITION, with what to do.
 */
export class RunRecordLostError extends Error {}

export interface SubmitRunInput {
  runId?: string;
  stages?: string[];
  /** A run spec, YAML or JSON text; empty: `stages` as a chain, or the bundled recipe. */
  spec?: string;
  /** The uploaded corpus; undefined (left out) runs the bundled sample, zero bytes are refused. */
  inputJsonl?: Buffer;
  inputName?: string;
  /** `<instance id or stage>.<name>` = value, over the spec's parameters. */
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
 * Starts, reads and cancels runs. A submission checks the run spec (or the stages it stands
 * for) and compiles its plan before recording anything, keeps the plan, records the run, commits
 * its inputs to the artifact store (so every worker, on any machine, reads the same bytes) and
 * takes the plan's first step; the same run id submitted again changes nothing. Interrupted
 * before the record, the same submission again completes it; after, the control plane's
 * start-up step resumes it.
 */
@Injectable()
export class RunSubmissionService {
  private readonly logger = new Logger(RunSubmissionService.name);

  constructor(
    private readonly runtime: StageRuntime,
    private readonly orchestrator: RunOrchestrator,
    @Inject(CONTROL_PLANE_ENV) private readonly env: ControlPlaneEnv,
  ) {}

  async submit(input: SubmitRunInput): Promise<{ run: RunRecord; created: boolean }> {
    const runId = input.runId || newRunId();
    const parsedId = RunId.safeParse(runId);
    if (!parsedId.success) throw new InvalidRunRequestError(`run_id ${JSON.stringify(runId)}: ${parsedId.error.issues[0].message}`);
    refuseEmptyUpload(input);
    const spec = await this.runSpec(input);
    const existing = await this.runtime.registry.get(runId);
    if (existing) return { run: existing, created: false };

    const inputs = await this.withBundledInputs(await this.runInputs(input), spec, input);
    // Plan (and check) the whole run before recording anything: a request that cannot run
    // leaves no half-created run behind.
    const plan = this.plan(runId, spec, inputs, input.params ?? {});
    await this.orchestrator.keepPlan(runId, plan);
    const now = new Date().toISOString();
    const { created, record } = await this.runtime.registry.create({
      runId,
      status: 'queued',
      stages: planStageIds(plan),
      inputName: inputs.name,
      specName: plan.name,
      params: input.params ?? {},
      createdAt: now,
      updatedAt: now,
    });
    if (!created) return { run: record, created: false };

    const summary = `${plan.name ? `${plan.name}: ` : ''}${record.stages.join(', ')} on ${inputs.name}`;
    try {
      await this.commitInputs(runId, inputs, now);
      await this.runtime.events.publish({ runId, type: 'run-queued', stage: 'pipeline.run', message: summary });
      await this.orchestrator.step(runId, 'start');
    } catch (error) {
      await this.runtime.endRun(runId, 'failed', { stage: 'pipeline.run', error: `could not start: ${error instanceof Error ? error.message : String(error)}` });
      throw error;
    }
    this.logger.log(`run ${runId} queued: ${summary} (${inputs.files[CORPUS_INPUT].length} bytes)`);
    return { run: record, created: true };
  }

  /** Where the run records are (`host:port`), for errors about Redis being away. */
  get redisAddress(): string {
    return this.runtime.registry.redisAddress;
  }

  async get(runId: string): Promise<RunRecord> {
    const run = await this.runtime.registry.get(runId);
    if (!run) throw await this.missingRunError(runId);
    return run;
  }

  /**
   * The run's events from after `afterEventId`, then new ones until it ends (`RunEvents.follow`,
   * which rides through Redis outages). The run record is looked up first and again every few
   * seconds, each lookup retried while Redis is unreachable for up to `REDIS_OUTAGE_LIMIT_MS`
   * (then `RedisUnreachableError`); a record gone meanwhile (Redis restarted empty) ends the watch
   * with `RunRecordLostError` instead of leaving it waiting for events no one will write.
   */
  async *watch(runId: string, afterEventId: string, signal: AbortSignal): AsyncGenerator<RunEvent> {
    const lookup = async () => {
      await retryWhileRedisUnreachable(() => this.get(runId), {
        address: this.runtime.registry.redisAddress,
        signal,
        onRetry: (error, attempt, delayMs) =>
          this.logger.warn(`watch of run ${runId}: Redis at ${this.runtime.registry.redisAddress} unreachable (${error instanceof Error ? error.message : String(error)}); lookup ${attempt + 1} in ${delayMs} ms`),
      });
    };
    await lookup();
    yield* this.runtime.events.follow(runId, afterEventId || '0-0', { signal, check: lookup });
  }

  /**
   * Why a run id has no record: never submitted (NOT_FOUND), or submitted but lost by Redis
   * while the store still holds what the run committed.
   */
  private async missingRunError(runId: string): Promise<Error> {
    let manifests: StageManifest[];
    try {
      manifests = await this.runtime.store.listManifests(runId);
    } catch (error) {
      return new RunNotFoundError(`run ${runId} not found (and the store could not be searched for its artifacts: ${error instanceof Error ? error.message : String(error)})`);
    }
    if (manifests.length === 0) return new RunNotFoundError(`run ${runId} not found`);
    const instances = manifests.filter((m) => m.stage !== INPUT_STAGE).map((m) => (m.instance ? `${m.stage}#${m.instance}` : m.stage));
    const inputs = manifests.some((m) => m.stage === INPUT_STAGE) ? ' and its inputs' : '';
    return new RunRecordLostError(
      `run ${runId}: Redis holds no record of it (Redis lost its data?), but the store has ${instances.length} committed instance(s) under runs/${runId}/` +
        `${instances.length ? ` (${instances.join(', ')})` : ''}${inputs}: resubmit the same spec and input with the same run id to resume from them (committed instances are not run again)`,
    );
  }

  /** The run's record and where its plan stands (null view for a run recorded before plans). */
  async describe(runId: string): Promise<{ run: RunRecord; view: RunView | null }> {
    const run = await this.get(runId);
    return { run, view: await this.orchestrator.view(runId) };
  }

  /**
   * Marks the run cancelled, then removes the jobs not started. A stage that is running holds
   * a lock and cannot be removed; it stops at its next progress report instead.
   */
  async cancel(runId: string): Promise<RunRecord> {
    await this.get(runId);
    await this.orchestrator.cancel(runId);
    return this.get(runId);
  }

  async artifacts(runId: string, stage?: string): Promise<StageManifest[]> {
    await this.get(runId);
    try {
      return await this.runtime.store.listManifests(runId, stage || undefined);
    } catch (error) {
      if (error instanceof Error && error.name === 'InvalidArtifactKeyError') throw new InvalidRunRequestError(`stage: ${error.message}`);
      throw error;
    }
  }

  /** The run spec of a request: its `spec` text, its `stages` as a chain, or the bundled recipe. */
  private async runSpec(input: SubmitRunInput): Promise<RunSpec> {
    try {
      if (input.spec) {
        if (input.stages?.length) throw new InvalidRunRequestError('stages: give a spec or stages, not both (a spec names its stages)');
        return parseRunSpecText(input.spec);
      }
      if (input.stages?.length) return parseRunSpec(specFromStages(input.stages, Object.keys(input.files ?? {})));
      return parseRunSpecText(await this.bundledRecipe());
    } catch (error) {
      if (error instanceof RunSpecError) throw new InvalidRunRequestError(error.message);
      throw error;
    }
  }

  private async bundledRecipe(): Promise<string> {
    try {
      return await readFile(recipeSpecPath(), 'utf8');
    } catch {
      throw new InvalidRunRequestError(`spec is not set and the bundled recipe ${recipeSpecPath()} cannot be read`);
    }
  }

  /**
   * The bundled recipe's own input files (`inputs.<name>.path`, relative to the recipe, e.g. the
   * sample preference pairs), for a request that sends no spec and does not upload them.
   */
  private async withBundledInputs(inputs: RunInputFiles, spec: RunSpec, input: SubmitRunInput): Promise<RunInputFiles> {
    if (input.spec || input.stages?.length) return inputs;
    const files = { ...inputs.files };
    for (const [name, declared] of Object.entries(spec.inputs)) {
      if (name === CORPUS_INPUT || !declared.path || files[name]) continue;
      const path = isAbsolute(declared.path) ? declared.path : resolve(dirname(recipeSpecPath()), declared.path);
      files[name] = await readFile(path).catch(() => {
        throw new InvalidRunRequestError(`the bundled recipe ${recipeSpecPath()}: inputs.${name}: cannot read ${path}`);
      });
    }
    return { ...inputs, files };
  }

  /** The run's input files by name: `corpus.jsonl` (uploaded, or the bundled sample) and any extra files. */
  private async runInputs(input: SubmitRunInput): Promise<RunInputFiles> {
    for (const name of Object.keys(input.files ?? {})) {
      if (!INPUT_FILE_NAME.test(name) || name === CORPUS_INPUT) throw new InvalidRunRequestError(`files: ${JSON.stringify(name)} is not a usable file name`);
    }
    // Set means uploaded (submit() has refused an empty upload); only absent means the sample.
    if (input.inputJsonl !== undefined) {
      return { name: input.inputName || 'upload', files: { [CORPUS_INPUT]: input.inputJsonl, ...input.files } };
    }
    try {
      return { name: 'sample', files: { [CORPUS_INPUT]: await readFile(sampleCorpusPath(this.env)), ...input.files } };
    } catch {
      throw new InvalidRunRequestError(`input_jsonl is not set and the sample corpus ${sampleCorpusPath(this.env)} cannot be read`);
    }
  }

  /** The run's compiled plan, with input keys computed from content (the store is content-addressed). */
  private plan(runId: string, spec: RunSpec, inputs: RunInputFiles, params: Record<string, string>): CompiledPlan {
    const inputKeys = Object.fromEntries(
      Object.entries(inputs.files).map(([name, content]) => [name, objectKey(runId, INPUT_STAGE, createHash('sha256').update(content).digest('hex'))]),
    );
    try {
      return compileRunSpec(spec, { runId, inputKeys, overrides: params });
    } catch (error) {
      if (error instanceof RunSpecError) throw new InvalidRunRequestError(error.message);
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
