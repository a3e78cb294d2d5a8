import { Inject, Injectable, Logger } from '@nestjs/common';
import { InjectFlowProducer } from '@nestjs/bullmq';
import { Job, UnrecoverableError, type FlowJob, type FlowProducer, type JobsOptions } from 'bullmq';
import {
  PIPELINE_STEP_JOB,
  PipelineStepPayload,
  TERMINAL_RUN_STATUSES,
  manifestRef,
  pipelineStepJobId,
  splitInstanceId,
  stageJobId,
  type StageManifest,
} from '@xyp/contracts';
import { PlanStepError, planStep, type CompiledPlan, type LoopView, type PlanStep, type ReadyInstance } from '@xyp/planner';
import { RunPlans } from '@xyp/runs';
import { currentTraceContext } from '@xyp/telemetry';
import { StageRuntime } from './stage-runtime';
import { stageJob } from './stage-job';
import { QUEUE_SETTINGS, RUN_FLOW } from './tokens';
import type { QueueSettings } from './queue-settings';

/** What one planning step did. */
export interface StepOutcome {
  /** Instances this step added to the queues (not those an earlier step or try added). */
  queued: string[];
  /** The run was complete and its closer (`pipeline.run`) was added. */
  done: boolean;
}

/** Where a run stands, for GetRun and the report: the plan, the step view and what was queued. */
export interface RunView {
  plan: CompiledPlan;
  step: PlanStep;
  queued: ReadonlySet<string>;
  manifests: StageManifest[];
}

/**
 * Runs a run's plan as BullMQ jobs, one planning step at a time. Each stage instance is added as a
 * two-job flow: its stage job, the child, under a `pipeline.step` job on the control plane's
 * queue, the parent. When the instance commits, BullMQ runs the parent, whose step looks at the
 * plan (Redis) and the committed manifests (the store) and adds what has become ready: dependants
 * whose inputs all committed (branches start together, a join waits for all of its inputs), the
 * next round of a loop whose decider said continue; once everything committed and every loop
 * ended, the run's closer. Static parts and dynamic rounds go the same way.
 *
 * Restart-safe by construction: a step decides from stored state only, every job id is
 * deterministic (adding an existing job adds nothing), and each event it publishes is guarded by
 * a one-time mark in Redis. A step lost in a crash is retried by BullMQ (stalled-job check), and
 * the control plane takes one step for every active run when it starts.
 */
@Injectable()
export class RunOrchestrator {
  private readonly logger = new Logger(RunOrchestrator.name);

  constructor(
    private readonly runtime: StageRuntime,
    private readonly plans: RunPlans,
    @InjectFlowProducer(RUN_FLOW) private readonly flows: FlowProducer,
    @Inject(QUEUE_SETTINGS) private readonly settings: QueueSettings,
  ) {}

  /**
   * Keeps a new run's plan (the first one kept wins) and marks the run active, before its record
   * exists: a submission interrupted after this is completed by submitting the same run id again,
   * and one interrupted later is resumed by the control plane's start-up step.
   */
  async keepPlan(runId: string, plan: CompiledPlan): Promise<void> {
    await this.plans.save(runId, plan);
  }

  /**
   * One planning step of a run (after `after` committed, or `start`/`resume`). A run that ended
   * takes no step. A dependency committed without what its dependant reads fails the run.
   */
  async step(runId: string, after: string): Promise<StepOutcome> {
    const nothing: StepOutcome = { queued: [], done: false };
    const run = await this.runtime.registry.get(runId);
    if (!run) return nothing;
    if (TERMINAL_RUN_STATUSES.has(run.status)) {
      await this.plans.deactivate(runId);
      return nothing;
    }
    const plan = await this.plans.get(runId);
    if (!plan) throw new UnrecoverableError(`run ${runId} has no plan`);
    let step: PlanStep;
    try {
      step = planStep(plan, runId, await this.committed(runId), { build: true });
    } catch (error) {
      if (!(error instanceof PlanStepError)) throw error;
      await this.runtime.endRun(runId, 'failed', { stage: 'pipeline.run', error: error.message });
      throw new UnrecoverableError(error.message);
    }
    await this.announceLoops(runId, plan, step.loops);
    const queued = await this.enqueue(runId, step.ready);
    if (step.done) await this.runtime.producer.enqueue('pipeline.run', { runId, stages: step.instances.map((i) => i.id) });
    if (queued.length > 0 || step.done) this.logger.log(`run ${runId} after ${after}: queued ${queued.join(', ') || 'nothing new'}${step.done ? '; every instance committed, closing' : ''}`);
    return { queued, done: step.done };
  }

  /** Takes a step for every run not yet ended: what a step lost while every service was down would have added. */
  async resumeActive(): Promise<void> {
    for (const runId of await this.plans.active()) {
      await this.step(runId, 'resume').catch((error: unknown) => this.logger.warn(`run ${runId}: resume step failed: ${error instanceof Error ? error.message : String(error)}`));
    }
  }

  /** The run's plan and where it stands; null for a run without a plan. */
  async view(runId: string): Promise<RunView | null> {
    const plan = await this.plans.get(runId);
    if (!plan) return null;
    const manifests = await this.runtime.store.listManifests(runId);
    const step = planStep(plan, runId, new Map(manifests.map((m) => [manifestRef(m), m])));
    return { plan, step, queued: await this.plans.queued(runId), manifests };
  }

  /**
   * Cancels a run: marks it cancelled, then removes the jobs not started (each queued instance's
   * step with its stage job, and the closer). A running stage holds a lock and cannot be removed;
   * it stops at its next progress report.
   */
  async cancel(runId: string): Promise<void> {
    await this.runtime.endRun(runId, 'cancelled', { stage: 'pipeline.run', error: 'cancelled by request' });
    const queue = this.runtime.producer.queue('pipeline.run');
    const ids = [...(await this.plans.queued(runId))].map((id) => pipelineStepJobId(runId, id));
    for (const id of [...ids, stageJobId(runId, 'pipeline.run')]) {
      const job = await Job.fromId(queue, id);
      await job?.remove({ removeChildren: true }).catch((error: unknown) => {
        this.logger.log(`run ${runId}: job ${id} not removed while its stage is active (${error instanceof Error ? error.message : String(error)}); the stage stops at its next progress report`);
      });
    }
    await this.plans.deactivate(runId);
  }

  private async committed(runId: string): Promise<Map<string, StageManifest>> {
    return new Map((await this.runtime.store.listManifests(runId)).map((m) => [manifestRef(m), m]));
  }

  /**
   * Adds each ready instance as a flow (its step over its stage job) in one atomic call; announces the new ones.
   * With tracing on, both jobs carry the trace context of the current span (SubmitRun's, or the
   * step job's that runs this step), so every stage job of a run is in the trace SubmitRun began.
   */
  private async enqueue(runId: string, ready: readonly ReadyInstance[]): Promise<string[]> {
    if (ready.length === 0) return [];
    const defaults: JobsOptions = this.settings.defaultJobOptions;
    const trace = currentTraceContext();
    const flows: FlowJob[] = ready.map((instance) => {
      const child = stageJob(instance.stage, trace ? { ...instance.payload, trace } : instance.payload);
      return {
        name: PIPELINE_STEP_JOB,
        queueName: 'pipeline.run',
        data: PipelineStepPayload.parse({ runId, after: instance.id, ...(trace ? { trace } : {}) }),
        opts: { ...defaults, jobId: pipelineStepJobId(runId, instance.id) },
        children: [{ ...child, opts: { ...defaults, ...child.opts, failParentOnFailure: true } }],
      };
    });
    await this.flows.addBulk(flows);
    const queued: string[] = [];
    for (const [index, instance] of ready.entries()) {
      if (!(await this.plans.markQueued(runId, instance.id))) continue;
      queued.push(instance.id);
      const round = instance.loop ? `round ${instance.round} of loop ${instance.loop}; ` : '';
      await this.runtime.events.publish({
        runId,
        type: 'stage-queued',
        stage: instance.stage,
        instance: instance.instance ?? '',
        message: `${round}job ${flows[index].children?.[0].opts?.jobId}`,
      });
    }
    return queued;
  }

  /** `loop-continued` once per round a decider continued, `loop-stopped` once per loop, with the recorded reason. */
  private async announceLoops(runId: string, plan: CompiledPlan, loops: readonly LoopView[]): Promise<void> {
    for (const loop of loops) {
      const stage = plan.loops.find((l) => l.name === loop.name)?.decide ?? 'pipeline.run';
      for (const decision of loop.decisions) {
        if (!decision.continue || decision.round >= loop.rounds) continue;
        if (!(await this.plans.mark(runId, `loop:${loop.name}:${decision.round}:continued`, decision.reason))) continue;
        await this.runtime.events.publish({
          runId,
          type: 'loop-continued',
          stage,
          instance: splitInstanceId(decision.decider).instance ?? '',
          message: `loop ${loop.name}: round ${decision.round + 1} of at most ${loop.maxRounds}, as ${decision.decider} said continue: ${decision.reason}`,
        });
      }
      if (!loop.stopped || !(await this.plans.mark(runId, `loop:${loop.name}:stopped`, loop.stopReason))) continue;
      const last = loop.decisions[loop.decisions.length - 1];
      await this.runtime.events.publish({
        runId,
        type: 'loop-stopped',
        stage,
        instance: last ? (splitInstanceId(last.decider).instance ?? '') : '',
        message: `loop ${loop.name} ended after ${loop.rounds} round(s): ${loop.stopReason}`,
      });
    }
  }
}
