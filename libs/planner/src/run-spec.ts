import { parseDocument } from 'yaml';
import { z } from 'zod';
import { RunSpecError, formatPath } from './issues';

/**
 * The run spec: what a run does, as a person writes it (YAML or JSON, `recipes/xuanyuan3.yaml`).
 *
 * ```yaml
 * version: 1
 * name: mixture-demo
 * inputs:                          # run input files besides corpus.jsonl (always there: uploaded, or the sample)
 *   losses.jsonl: data/losses.jsonl  # a path the CLI uploads from, relative to the spec
 *   weights.json: { path: data/weights.json, description: starting mixture }
 * params:                          # defaults for every instance of a stage
 *   corpus.bucket: { tokenizer: llama3 }
 * stages:                          # static instances: a DAG
 *   - id: corpus.inspect
 *   - id: corpus.bucket#short      # <stage>#<instance key>; a stage used once may leave the key out
 *     needs: [corpus.inspect]
 *     params: { strategy: bfd, buckets: 2048 }
 *   - id: corpus.mix#stage-1
 *     inputs: { losses: input/losses.jsonl, weights: input/weights.json }
 *   - id: corpus.mix#stage-2       # reads what stage-1 committed
 *     inputs: { losses: input/losses.jsonl, weights: corpus.mix#stage-1/weights.json }
 * loops:                           # dynamic tails: rounds added while the deciding stage says continue
 *   - name: round                  # instances corpus.mix#round-1, corpus.mix#round-2, ...
 *     after: corpus.mix#stage-2    # what round 1 continues from
 *     max_rounds: 4
 *     body:
 *       - stage: corpus.mix
 *         inputs: { losses: input/losses.jsonl, weights: previous/weights.json }
 *         params: { stop_below: 0.001 }
 * ```
 *
 * An input binding is `input/<file>` (a run input), `<instance>/<artifact>` (an artifact that
 * instance committed), `<instance>` alone (the slot's usual artifact, or the instance's manifest)
 * or, in a loop body, `previous[/<artifact>]` (the same stage one round before; in round 1 the
 * loop's `after`). Referring to an instance makes it a dependency; `needs` adds ordering only.
 * This file checks the shape; `compile.ts` checks the meaning (stages, parameters, references, cycles).
 */

const ParamScalar = z.union([z.string(), z.number(), z.boolean()]);
export const ParamValue = z.union([ParamScalar, z.array(ParamScalar)]);
const Params = z.record(z.string(), ParamValue);
const Binding = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]);
const Description = z.string().max(2000).optional();

/** File names of run inputs: plain names, not paths (`losses.jsonl`). */
export const InputName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'a plain file name such as losses.jsonl');

export const StageEntry = z
  .object({
    /** `<stage>` or `<stage>#<instance key>`. */
    id: z.string().min(1),
    needs: z.array(z.string().min(1)).default([]),
    inputs: z.record(z.string(), Binding).default({}),
    params: Params.default({}),
    description: Description,
  })
  .strict();

export const LoopBodyEntry = z
  .object({
    stage: z.string().min(1),
    /** Other stages of the same round (by stage name) this one runs after. */
    needs: z.array(z.string().min(1)).default([]),
    inputs: z.record(z.string(), Binding).default({}),
    params: Params.default({}),
    description: Description,
  })
  .strict();

export const LoopEntry = z
  .object({
    /** Round r's instances are `<stage>#<name>-<r>`. */
    name: z.string().regex(/^[a-z][a-z0-9-]{0,40}$/, 'loop name: a-z, 0-9 and -, starting with a letter'),
    /** The static instance round 1 continues from (its `previous`). */
    after: z.string().min(1).optional(),
    max_rounds: z.number().int().min(1).max(1000),
    /** The body stage whose result decides whether another round follows; default: the body's last. */
    decide: z.string().min(1).optional(),
    body: z.array(LoopBodyEntry).min(1),
    description: Description,
  })
  .strict();

export const RunSpec = z
  .object({
    version: z.literal(1).default(1),
    name: z.string().regex(/^[a-z][a-z0-9-]{0,62}$/, 'spec name: a-z, 0-9 and -, starting with a letter').optional(),
    description: Description,
    inputs: z
      .record(InputName, z.union([z.string().min(1).transform((path) => ({ path })), z.object({ path: z.string().min(1).optional(), description: Description }).strict()]))
      .default({}),
    /** Models the recipe uses (base policy, reference model), by name: recorded with the run and its report. */
    models: z.record(z.string().regex(/^[a-z][a-z0-9-]{0,62}$/), z.object({ source: z.string().min(1), description: Description }).strict()).default({}),
    /** Parameter defaults per stage name, under each instance's own `params`. */
    params: z.record(z.string(), Params).default({}),
    stages: z.array(StageEntry).default([]),
    loops: z.array(LoopEntry).default([]),
  })
  .strict();
export type RunSpec = z.output<typeof RunSpec>;
export type RunSpecInput = z.input<typeof RunSpec>;

/** Every zod issue as `path: message`, an unknown key named by its own path. */
export function zodIssues(error: z.ZodError, base: readonly PropertyKey[] = []): { path: string; message: string }[] {
  return error.issues.flatMap((issue) =>
    issue.code === 'unrecognized_keys'
      ? issue.keys.map((key) => ({ path: formatPath([...base, ...issue.path, key]), message: 'unknown field' }))
      : [{ path: formatPath([...base, ...issue.path]), message: issue.message }],
  );
}

/** The spec's shape from its text (YAML, or JSON, which YAML reads too); throws RunSpecError naming the field. */
export function parseRunSpecText(text: string): RunSpec {
  const document = parseDocument(text);
  if (document.errors.length > 0) {
    // The first line of yaml's message ends with "at line L, column C:".
    const first = document.errors[0].message.split('\n')[0].replace(/:$/, '');
    throw new RunSpecError([{ path: 'spec', message: `not valid YAML or JSON: ${first}` }]);
  }
  return parseRunSpec(document.toJS());
}

/** The spec's shape from a parsed value; throws RunSpecError naming every bad field. */
export function parseRunSpec(value: unknown): RunSpec {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new RunSpecError([{ path: 'spec', message: 'must be a mapping with stages (and optionally inputs, params, loops)' }]);
  }
  const parsed = RunSpec.safeParse(value);
  if (!parsed.success) throw new RunSpecError(zodIssues(parsed.error));
  return parsed.data;
}
