import { z } from 'zod';
import { InstanceKey, RunId } from '../ids';

/**
 * What every stage file of `stages/` builds on: the fields every job carries, the decision a
 * deciding stage reports, and `defineStagePlan`, which ties a stage's parameters and input slots
 * to its payload builder. A stage file holds its payload, result and parameter schemas and its
 * builder side by side; `stages.ts` maps stage names onto them.
 */

/**
 * The W3C trace context (https://www.w3.org/TR/trace-context/) of the span that added a job, when
 * tracing is on: the worker's span for the job is its child. Optional in every job; a job without
 * one starts a trace of its own.
 */
export const JobTrace = z
  .object({
    traceparent: z.string().regex(/^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/, 'must be a W3C traceparent (00-<32 hex trace id>-<16 hex span id>-<2 hex flags>)'),
    tracestate: z.string().max(512).optional(),
  })
  .strict();
export type JobTrace = z.infer<typeof JobTrace>;

/** Fields every stage job carries: its run and, for a keyed instance (`corpus.bucket#phase-2`), the key; the trace context, when traced. */
export const stageJob = <T extends z.ZodRawShape>(shape: T) => z.object({ runId: RunId, instance: InstanceKey.optional(), trace: JobTrace.optional(), ...shape }).strict();

/** Fields every part job of a fanned-out stage carries: its run and instance, its place among the parts; the trace context, when traced. */
export const partJob = <T extends z.ZodRawShape>(shape: T) =>
  z
    .object({ runId: RunId, instance: InstanceKey.optional(), trace: JobTrace.optional(), partIndex: z.number().int().nonnegative(), partCount: z.number().int().positive(), ...shape })
    .strict();

/**
 * What a deciding stage (a loop's last step: `corpus.mix`, later `rlhf.improve`) says about the
 * next round, in its result under `decision`. The control plane reads it from the committed
 * manifest, applies its own round limit, and adds the next round or ends the loop.
 */
export const StageDecision = z.object({
  continue: z.boolean(),
  /** One line a person reads in the run's events and report, e.g. `largest weight change 0.0004 < 0.001`. */
  reason: z.string().min(1),
});
export type StageDecision = z.infer<typeof StageDecision>;

/** One input of a stage, bound by the run spec (`stages[i].inputs.<slot>`) or by default. */
export interface InputSlot {
  description: string;
  /** The run input file bound when the spec binds nothing (what SubmitRun `files` named before specs). */
  defaultInput?: string;
  /** The artifact taken from a dependency bound by its instance id alone (`weights` ← `corpus.mix#stage-1`). Without it, that instance's manifest is bound. */
  artifact?: string;
  /** May stay unbound (a default input the run does not have leaves it unbound). */
  optional?: boolean;
  /** Takes a list: one store key per bound instance (a join, e.g. the packings corpus.compare ranks). */
  many?: boolean;
}

/** One bound input: the store key and where it came from (`input` or an instance id). */
export interface BoundInput {
  from: string;
  key: string;
}

/** The store keys bound to a stage's slots, as its builder reads them. */
export interface BoundInputs {
  /** The one key of a slot; throws when the slot is unbound (the planner binds every required slot). */
  one(slot: string): string;
  /** The key of an optional slot, or undefined. */
  maybe(slot: string): string | undefined;
  /** Every key of a `many` slot, in binding order. */
  all(slot: string): readonly BoundInput[];
}

/** What the planner hands a stage's builder: its instance, raw parameters and bound inputs. */
export interface RawBuildContext {
  runId: string;
  /** The instance key; undefined for the stage's default instance. */
  instance?: string;
  /** Parameters as the spec (or SubmitRun `params`) gives them: strings, numbers, booleans, lists. */
  params: Readonly<Record<string, unknown>>;
  inputs: BoundInputs;
}

/** What a builder written with `defineStagePlan` sees: parameters already parsed by the stage's schema. */
export interface BuildContext<P> extends Omit<RawBuildContext, 'params'> {
  params: P;
}

/** A problem with a stage's parameters, with its path inside `params`. */
export interface ParamIssue {
  path: (string | number)[];
  message: string;
}

/** How a stage takes part in runs: its parameters, input slots and payload builder. */
export interface StagePlan<Payload> {
  readonly description: string;
  readonly slots: Readonly<Record<string, InputSlot>>;
  /** Whether the stage's result carries a `decision` (`StageDecision`), so a loop may end on it. */
  readonly decides: boolean;
  /** Issues with the parameters (unknown names, bad values), empty when they are valid. */
  checkParams(params: Readonly<Record<string, unknown>>): ParamIssue[];
  /** The parameter a payload field stands for (`config.windowTokens` → `window_tokens`), for messages. */
  paramOf(payloadPath: readonly PropertyKey[]): string | undefined;
  /** The payload (not yet validated: `stageJob` validates it); throws a ZodError for bad parameters. */
  build(context: RawBuildContext): Payload;
}

function issuesOf(error: z.ZodError): ParamIssue[] {
  const path = (parts: readonly PropertyKey[]) => parts.map((part) => (typeof part === 'number' ? part : String(part)));
  // zod reports every unknown key in one issue at the object; name each key instead.
  return error.issues.flatMap((issue) =>
    issue.code === 'unrecognized_keys'
      ? issue.keys.map((key) => ({ path: [...path(issue.path), key], message: 'unknown parameter' }))
      : [{ path: path(issue.path), message: issue.message }],
  );
}

/**
 * A stage plan from its parameter schema and a typed builder. Unrecognized parameters are issues
 * on their own name (`colour: unknown parameter`), so a refusal names the field. The instance key
 * is set on the payload here, so no builder can forget it.
 */
export function defineStagePlan<Payload, Params extends z.ZodType>(definition: {
  description: string;
  slots: Record<string, InputSlot>;
  params: Params;
  decides?: boolean;
  /** Payload paths (dot-joined) → parameter names, for cross-field checks of the payload schema. */
  paramPaths?: Record<string, string>;
  build(context: BuildContext<z.output<Params>>): Payload;
}): StagePlan<Payload> {
  const parse = (params: Readonly<Record<string, unknown>>) => definition.params.safeParse(params);
  return {
    description: definition.description,
    slots: definition.slots,
    decides: definition.decides ?? false,
    checkParams: (params) => {
      const parsed = parse(params);
      return parsed.success ? [] : issuesOf(parsed.error);
    },
    paramOf: (path) => definition.paramPaths?.[path.map(String).join('.')],
    build: (context) => {
      const parsed = parse(context.params);
      if (!parsed.success) throw parsed.error;
      const payload = definition.build({ ...context, params: parsed.data });
      return context.instance ? { ...payload, instance: context.instance } : payload;
    },
  };
}

/** Values a parameter may be given as: a string (SubmitRun `params`) or a YAML/JSON scalar or list. */
export const param = {
  int: (min = 0) => z.coerce.number().int().min(min),
  positiveInt: () => z.coerce.number().int().positive(),
  ratio: () => z.coerce.number().min(0).max(1),
  boolean: () => z.union([z.boolean(), z.enum(['true', 'false']).transform((v) => v === 'true')]),
  /** A list of positive integers: `[2048, 4096]`, `2048` or `"2048,4096"`. */
  intList: () =>
    z.union([
      z.array(z.number().int().positive()).min(1),
      z.number().int().positive().transform((n) => [n]),
      z
        .string()
        .regex(/^\d+(,\d+)*$/, 'comma-separated token counts, e.g. 2048,4096')
        .transform((list) => list.split(',').map(Number)),
    ]),
};

/** A stage's model-shape parameters (`layers`, `width`, `heads`, `context`), read by `architectureFromParams`. */
export const architectureParams = () => ({ layers: param.positiveInt(), width: param.positiveInt(), heads: param.positiveInt(), context: param.positiveInt() });

/** A model's shape from a stage's `layers`, `width`, `heads`, `context` params over the payload's defaults. */
export function architectureFromParams<A extends { layers: number; width: number; heads: number; context: number }>(
  defaults: A,
  p: { layers?: number; width?: number; heads?: number; context?: number },
): A {
  return { ...defaults, ...(p.layers ? { layers: p.layers } : {}), ...(p.width ? { width: p.width } : {}), ...(p.heads ? { heads: p.heads } : {}), ...(p.context ? { context: p.context } : {}) };
}

/** A figure per category before and after a job (validation or held-out loss), and the change. */
export const PerCategoryChange = z.record(z.string(), z.object({ before: z.number(), after: z.number(), change: z.number() }));
