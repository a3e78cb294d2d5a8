import { StageDecision, manifestKey, stagePlan, type PayloadOf, type RunnableStage, type StageManifest } from '@xyp/contracts';
import { roundInstanceId, type CompiledPlan, type PlannedInstance, type PlannedLoop } from './compiled-plan';
import { roundInstances } from './compile';
import { boundInputs } from './bound-inputs';
import { PlanStepError } from './issues';

export type InstanceStatus = 'committed' | 'ready' | 'waiting';

/** One instance of the run as the plan stands: static, or of a loop round started so far. */
export interface InstanceView {
  id: string;
  stage: RunnableStage;
  instance?: string;
  needs: string[];
  loop?: string;
  round?: number;
  status: InstanceStatus;
}

/** What one round's deciding instance said. */
export interface RoundDecision {
  round: number;
  decider: string;
  continue: boolean;
  reason: string;
}

export interface LoopView {
  name: string;
  maxRounds: number;
  /** Rounds started (their instances are planned). */
  rounds: number;
  decisions: RoundDecision[];
  stopped: boolean;
  /** Why the loop ended (the decider said stop, or the round limit); empty while it runs. */
  stopReason: string;
}

/** An instance whose dependencies have all committed, with its payload built from what they committed. */
export interface ReadyInstance {
  id: string;
  stage: RunnableStage;
  instance?: string;
  payload: PayloadOf<RunnableStage>;
  loop?: string;
  round?: number;
}

export interface PlanStep {
  instances: InstanceView[];
  /** Not committed, every dependency committed (empty unless `build`). */
  ready: ReadyInstance[];
  loops: LoopView[];
  /** Every instance committed and every loop ended: the run can be closed. */
  done: boolean;
}

/**
 * Where a run stands, from its plan and its committed manifests (by instance id) alone — no
 * clock, no memory of earlier steps — so every step after any crash gives the same answer, and
 * adding what it returns again adds nothing new (job ids are deterministic).
 *
 * Loops: round 1 is always planned; round r+1 is planned once round r's deciding instance has
 * committed with `decision.continue` and r is below the loop's `max_rounds`. The loop ends when
 * the decider says stop (its reason recorded) or at the round limit.
 *
 * With `build`, each ready instance's payload is built: its input bindings resolved to store keys
 * (a run input, a dependency's artifact by name, or a dependency's manifest). A dependency that
 * committed without the artifact a binding names is a PlanStepError.
 */
export function planStep(plan: CompiledPlan, runId: string, committed: ReadonlyMap<string, StageManifest>, options: { build?: boolean } = {}): PlanStep {
  const planned: PlannedInstance[] = [...plan.instances];
  const loops = plan.loops.map((loop) => {
    const view = followLoop(loop, committed);
    for (let round = 1; round <= view.rounds; round++) planned.push(...roundInstances(loop, round));
    return view;
  });
  const instances: InstanceView[] = planned.map((instance) => ({
    id: instance.id,
    stage: instance.stage,
    ...(instance.instance ? { instance: instance.instance } : {}),
    needs: instance.needs,
    ...(instance.loop ? { loop: instance.loop, round: instance.round } : {}),
    status: committed.has(instance.id) ? 'committed' : instance.needs.every((need) => committed.has(need)) ? 'ready' : 'waiting',
  }));
  const ready = options.build
    ? planned.filter((_, i) => instances[i].status === 'ready').map((instance) => readyInstance(plan, runId, instance, committed))
    : [];
  return { instances, ready, loops, done: instances.every((i) => i.status === 'committed') && loops.every((l) => l.stopped) };
}

function followLoop(loop: PlannedLoop, committed: ReadonlyMap<string, StageManifest>): LoopView {
  const decisions: RoundDecision[] = [];
  for (let round = 1; ; round++) {
    const decider = roundInstanceId(loop.decide, loop.name, round);
    const manifest = committed.get(decider);
    const view = (stopped: boolean, stopReason = ''): LoopView => ({ name: loop.name, maxRounds: loop.maxRounds, rounds: round, decisions, stopped, stopReason });
    if (!manifest) return view(false);
    const parsed = StageDecision.safeParse(manifest.result.decision);
    const decision = parsed.success ? parsed.data : { continue: false, reason: 'its result carries no decision' };
    decisions.push({ round, decider, ...decision });
    if (!decision.continue) return view(true, `${decider} said stop: ${decision.reason}`);
    if (round >= loop.maxRounds) return view(true, `reached max_rounds (${loop.maxRounds}); ${decider} said continue: ${decision.reason}`);
  }
}

function readyInstance(plan: CompiledPlan, runId: string, instance: PlannedInstance, committed: ReadonlyMap<string, StageManifest>): ReadyInstance {
  const keys = Object.fromEntries(
    Object.entries(instance.inputs).map(([slot, bindings]) => [
      slot,
      bindings.map((binding) => {
        if (binding.kind === 'input') {
          const key = plan.inputs[binding.name];
          if (!key) throw new PlanStepError(`${instance.id}: the run has no input ${binding.name}`);
          return { from: 'input', key };
        }
        if (binding.kind !== 'instance') throw new PlanStepError(`${instance.id}: unresolved ${binding.kind} binding of ${slot}`);
        const manifest = committed.get(binding.instance);
        if (!manifest) throw new PlanStepError(`${instance.id}: ${binding.instance} has not committed`);
        if (!binding.artifact) return { from: binding.instance, key: manifestKey(runId, binding.instance) };
        const artifact = manifest.artifacts.find((a) => a.name === binding.artifact);
        if (!artifact) {
          throw new PlanStepError(
            `${instance.id}: input ${slot} names ${binding.instance}/${binding.artifact}, but ${binding.instance} committed no artifact ${binding.artifact} (it has: ${manifest.artifacts.map((a) => a.name).join(', ') || 'none'})`,
          );
        }
        return { from: binding.instance, key: artifact.key };
      }),
    ]),
  );
  let payload: PayloadOf<RunnableStage>;
  try {
    payload = stagePlan(instance.stage).build({ runId, ...(instance.instance ? { instance: instance.instance } : {}), params: instance.params, inputs: boundInputs(keys, instance.id) });
  } catch (error) {
    throw new PlanStepError(`${instance.id}: cannot build its payload: ${error instanceof Error ? error.message : String(error)}`);
  }
  return {
    id: instance.id,
    stage: instance.stage,
    ...(instance.instance ? { instance: instance.instance } : {}),
    payload,
    ...(instance.loop ? { loop: instance.loop, round: instance.round } : {}),
  };
}
