import { z } from 'zod';
import { RUNNABLE_STAGES } from '@xyp/contracts';

/**
 * A run spec after checking, as the control plane keeps it in Redis for the run's lifetime
 * (`@xyp/runs` RunPlans): every reference resolved to a run input, an instance id or (in a loop
 * template) the previous round, every slot bound, parameters merged. Planning steps read only
 * this and the run's committed manifests, so they give the same answer after any restart.
 */

export const SlotBinding = z.discriminatedUnion('kind', [
  /** A run input file: its store key is in `CompiledPlan.inputs`. */
  z.object({ kind: z.literal('input'), name: z.string() }),
  /** A committed instance: its artifact of that name, or (no artifact) its manifest. */
  z.object({ kind: z.literal('instance'), instance: z.string(), artifact: z.string().optional() }),
  /**
   * Loop templates only: a body stage (`stage`, default the same one) one round before; round 1:
   * `first`, default the loop's `after`.
   */
  z.object({ kind: z.literal('previous'), stage: z.string().optional(), first: z.string().optional(), artifact: z.string().optional() }),
  /** Loop templates only: another stage of the same round. */
  z.object({ kind: z.literal('round'), stage: z.string(), artifact: z.string().optional() }),
]);
export type SlotBinding = z.infer<typeof SlotBinding>;

const Stage = z.enum(RUNNABLE_STAGES);
const Bindings = z.record(z.string(), z.array(SlotBinding));
const Params = z.record(z.string(), z.unknown());

export const PlannedInstance = z.object({
  /** `<stage>` or `<stage>#<instance>`. */
  id: z.string(),
  stage: Stage,
  instance: z.string().optional(),
  /** Where the spec declares it, e.g. `stages[2]` or `loops[0].body[1]`. */
  origin: z.string(),
  /** Instance ids it runs after: its `needs` and every instance its inputs come from. */
  needs: z.array(z.string()),
  inputs: Bindings,
  params: Params,
  loop: z.string().optional(),
  round: z.number().int().positive().optional(),
});
export type PlannedInstance = z.infer<typeof PlannedInstance>;

export const LoopTemplate = z.object({
  stage: Stage,
  origin: z.string(),
  /** Stages of the same round it runs after. */
  needs: z.array(z.string()),
  inputs: Bindings,
  params: Params,
});
export type LoopTemplate = z.infer<typeof LoopTemplate>;

export const PlannedLoop = z.object({
  name: z.string(),
  origin: z.string(),
  after: z.string().optional(),
  maxRounds: z.number().int().positive(),
  /** The body stage whose committed result (`decision`) says whether another round follows. */
  decide: Stage,
  body: z.array(LoopTemplate).min(1),
});
export type PlannedLoop = z.infer<typeof PlannedLoop>;

export const CompiledPlan = z.object({
  version: z.literal(1),
  name: z.string(),
  description: z.string(),
  /** Store keys of the run's input files, by name (`corpus.jsonl` is always there). */
  inputs: z.record(z.string(), z.string()),
  models: z.record(z.string(), z.object({ source: z.string(), description: z.string().optional() })),
  /** Static instances, in spec order. */
  instances: z.array(PlannedInstance),
  loops: z.array(PlannedLoop),
});
export type CompiledPlan = z.infer<typeof CompiledPlan>;

/** The instance ids of loop round `round`: `<stage>#<loop>-<round>`. */
export function roundInstanceId(stage: string, loop: string, round: number): string {
  return `${stage}#${loop}-${round}`;
}

/** Every instance id the record of a run lists: static ones, then each loop's as a pattern. */
export function planStageIds(plan: CompiledPlan): string[] {
  return [...plan.instances.map((i) => i.id), ...plan.loops.flatMap((loop) => loop.body.map((t) => `${t.stage}#${loop.name}-<n>`))];
}
