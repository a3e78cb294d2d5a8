import {
  InstanceKey,
  RUNNABLE_STAGES,
  STAGES,
  STAGE_NAMES,
  isRunnableStage,
  isStageName,
  objectKey,
  manifestKey,
  splitInstanceId,
  stagePlan,
  type RunnableStage,
} from '@xyp/contracts';
import { CompiledPlan, roundInstanceId, type LoopTemplate, type PlannedInstance, type PlannedLoop, type SlotBinding } from './compiled-plan';
import { findCycle } from './graph';
import { RunSpecError, joinPath, type SpecIssue } from './issues';
import { boundInputs } from './bound-inputs';
import type { RunSpec } from './run-spec';

/** What a spec is checked against: the run it becomes and the input files it has. */
export interface CompileContext {
  runId: string;
  /** Store keys of the run's input files by name: `corpus.jsonl` and every uploaded file. */
  inputKeys: Readonly<Record<string, string>>;
  /** SubmitRun `params`: `<instance id or stage>.<param>` = value, over the spec's own. */
  overrides?: Readonly<Record<string, string>>;
}

/** The input that is always there: uploaded, or the bundled sample. */
export const CORPUS_INPUT = 'corpus.jsonl';

const ZEROS = '0'.repeat(64);

/** A binding as written: `input/<file>`, `<ref>` or `<ref>/<artifact>`. */
function splitBinding(text: string): { input: string } | { ref: string; artifact?: string } {
  if (text.startsWith('input/')) return { input: text.slice('input/'.length) };
  const at = text.indexOf('/');
  return at < 0 ? { ref: text } : { ref: text.slice(0, at), artifact: text.slice(at + 1) };
}

/**
 * Checks a run spec's meaning and compiles it into the plan the control plane runs. Every
 * problem is collected, each naming its field (`stages[2].params.window_tokens: …`), and thrown
 * together as one RunSpecError, so nothing is recorded for a spec that cannot run:
 * unknown or unrunnable stages, bad instance keys, duplicate ids, unknown or malformed
 * parameters (and payloads they would make), unknown input slots, references to inputs or
 * instances that do not exist, missing inputs, dependency cycles, and loops that cannot decide.
 */
export function compileRunSpec(spec: RunSpec, context: CompileContext): CompiledPlan {
  const issues: SpecIssue[] = [];
  const issue = (path: string, message: string) => issues.push({ path, message });
  const available = new Set(Object.keys(context.inputKeys));

  // Declared inputs must have come with the run.
  const declared = new Set([CORPUS_INPUT, ...Object.keys(spec.inputs)]);
  for (const name of Object.keys(spec.inputs)) {
    if (name !== CORPUS_INPUT && !available.has(name)) {
      issue(`inputs.${name}`, 'not uploaded: send it with the run (SubmitRun files; `xyp run submit SPEC` uploads the path it names)');
    }
  }
  const inputAvailable = (name: string) => declared.has(name) && available.has(name);

  if (spec.stages.length === 0 && spec.loops.length === 0) issue('stages', 'a run needs at least one stage');

  // Instance ids, stages and how often each stage is used.
  const staticIds = new Map<string, number>();
  const usage = new Map<string, number>();
  const stageOf = new Map<string, RunnableStage>();
  spec.stages.forEach((entry, i) => {
    const at = `stages[${i}].id`;
    const { stage, instance } = splitInstanceId(entry.id);
    let known = checkStage(stage, at, issue);
    if (instance !== undefined) {
      const key = InstanceKey.safeParse(instance);
      if (!key.success) {
        issue(at, key.error.issues[0].message);
        known = undefined;
      }
    }
    if (staticIds.has(entry.id)) issue(at, `${JSON.stringify(entry.id)} is used twice (also stages[${staticIds.get(entry.id)}])`);
    else staticIds.set(entry.id, i);
    if (known) stageOf.set(entry.id, known);
    usage.set(stage, (usage.get(stage) ?? 0) + 1);
  });
  const inLoops = new Set<string>();
  const loopNames = new Set<string>();
  spec.loops.forEach((loop, j) => {
    if (loopNames.has(loop.name)) issue(`loops[${j}].name`, `loop ${loop.name} is declared twice`);
    loopNames.add(loop.name);
    for (const entry of loop.body) {
      usage.set(entry.stage, (usage.get(entry.stage) ?? 0) + 1);
      inLoops.add(entry.stage);
    }
  });
  spec.stages.forEach((entry, i) => {
    const { stage, instance } = splitInstanceId(entry.id);
    // One keyless (default) instance may stand beside keyed ones (`corpus.bucket` and `corpus.bucket#byte`);
    // a stage whose rounds a loop adds must key its static instances too.
    if (instance === undefined && inLoops.has(stage)) {
      issue(`stages[${i}].id`, `${stage} is also in a loop body, so each of its instances needs a key (${stage}#<key>)`);
    }
    for (const loop of spec.loops) {
      if (instance !== undefined && new RegExp(`^${loop.name}-\\d+$`).test(instance) && loop.body.some((b) => b.stage === stage)) {
        issue(`stages[${i}].id`, `collides with the instances of loop ${loop.name} (${stage}#${loop.name}-<round>)`);
      }
    }
  });

  // SubmitRun params: `<instance id or stage>.<name>`, the longest matching name wins.
  const overrides = routeOverrides(context.overrides ?? {}, [...staticIds.keys()], [...usage.keys()], issue);
  for (const stage of Object.keys(spec.params)) {
    if (!usage.has(stage)) issue(`params.${stage}`, `names no stage of this spec (${[...usage.keys()].join(', ') || 'none'})`);
  }
  const paramsFor = (stage: string, id: string | undefined, own: Record<string, unknown>) => ({
    ...spec.params[stage],
    ...own,
    ...overrides.get(stage),
    ...(id !== undefined && id !== stage ? overrides.get(id) : {}),
  });

  // Static instances: needs, bindings, parameters, a payload built from them.
  const instances: PlannedInstance[] = [];
  spec.stages.forEach((entry, i) => {
    const origin = `stages[${i}]`;
    const stage = stageOf.get(entry.id);
    const needs = new Set<string>();
    entry.needs.forEach((need, k) => {
      if (!staticIds.has(need)) issue(`${origin}.needs[${k}]`, unknownInstance(need, [...staticIds.keys()]));
      else if (need === entry.id) issue(`${origin}.needs[${k}]`, 'an instance cannot need itself');
      else needs.add(need);
    });
    if (!stage) return;
    const resolveRef = (ref: string, path: string): SlotBinding | undefined => {
      if (ref === 'previous') return void issue(path, 'previous only means something in a loop body');
      if (!staticIds.has(ref)) return void issue(path, unknownInstance(ref, [...staticIds.keys()]));
      if (ref === entry.id) return void issue(path, 'an instance cannot read its own output');
      return { kind: 'instance', instance: ref };
    };
    const inputs = bindSlots(stage, entry.inputs, origin, resolveRef, inputAvailable, declared, issue);
    for (const bindings of Object.values(inputs)) for (const b of bindings) if (b.kind === 'instance') needs.add(b.instance);
    const { instance } = splitInstanceId(entry.id);
    const params = paramsFor(stage, entry.id, entry.params);
    const planned: PlannedInstance = { id: entry.id, stage, ...(instance ? { instance } : {}), origin, needs: [...needs], inputs, params };
    if (checkParams(planned, origin, issue)) dryBuild(planned, context, origin, issue);
    instances.push(planned);
  });
  const graph = new Map(instances.map((i) => [i.id, i.needs]));
  const cycle = findCycle([...graph.keys()], graph);
  if (cycle) issue(`${instances.find((i) => i.id === cycle[0])?.origin ?? 'stages'}.needs`, `dependency cycle ${cycle.join(' -> ')}`);

  // Loops: templates of one round, checked by building round 1.
  const loops: PlannedLoop[] = [];
  spec.loops.forEach((loop, j) => {
    const origin = `loops[${j}]`;
    if (loop.after !== undefined && !staticIds.has(loop.after)) issue(`${origin}.after`, unknownInstance(loop.after, [...staticIds.keys()]));
    const bodyStages = new Map<string, number>();
    const body: LoopTemplate[] = [];
    loop.body.forEach((entry, k) => {
      const at = `${origin}.body[${k}]`;
      const stage = checkStage(entry.stage, `${at}.stage`, issue);
      if (bodyStages.has(entry.stage)) issue(`${at}.stage`, `${entry.stage} is in the body twice (also body[${bodyStages.get(entry.stage)}])`);
      bodyStages.set(entry.stage, k);
      if (!stage) return;
      const resolveRef = (ref: string, path: string, artifact?: string): SlotBinding | undefined => {
        // previous[:<body stage>][|<instance>]: that body stage (default: this one) one round before;
        // in round 1 the instance after `|`, else the loop's `after`.
        const previous = /^previous(?::([^|]+))?(?:\|(.+))?$/.exec(ref);
        if (previous) {
          const [, stageName, first] = previous;
          if (stageName !== undefined && !loop.body.some((b) => b.stage === stageName)) {
            return void issue(path, `previous:${stageName}: ${stageName} is not a stage of this loop's body (${loop.body.map((b) => b.stage).join(', ')})`);
          }
          if (first !== undefined && !staticIds.has(first)) return void issue(path, `previous|${first}: ${unknownInstance(first, [...staticIds.keys()])}`);
          if (first === undefined && loop.after === undefined) return void issue(path, `previous needs ${origin}.after (what round 1 continues from), or previous|<instance>`);
          return { kind: 'previous', ...(stageName ? { stage: stageName } : {}), ...(first ? { first } : {}), ...(artifact ? { artifact } : {}) };
        }
        if (loop.body.some((b) => b.stage === ref)) {
          if (ref === entry.stage) return void issue(path, 'an instance cannot read its own output (previous is the same stage one round before)');
          return { kind: 'round', stage: ref, ...(artifact ? { artifact } : {}) };
        }
        if (staticIds.has(ref)) return { kind: 'instance', instance: ref, ...(artifact ? { artifact } : {}) };
        return void issue(path, unknownInstance(ref, ['previous', ...loop.body.map((b) => b.stage), ...staticIds.keys()]));
      };
      const inputs = bindSlots(stage, entry.inputs, at, (ref, path) => resolveRef(ref, path), inputAvailable, declared, issue);
      entry.needs.forEach((need, n) => {
        if (!loop.body.some((b) => b.stage === need)) issue(`${at}.needs[${n}]`, `${need} is not a stage of this loop's body (${loop.body.map((b) => b.stage).join(', ')})`);
      });
      body.push({ stage, origin: at, needs: entry.needs, inputs, params: paramsFor(stage, undefined, entry.params) });
    });
    const bodyGraph = new Map(loop.body.map((b) => [b.stage, b.needs]));
    const bodyCycle = findCycle([...bodyGraph.keys()], bodyGraph);
    if (bodyCycle) issue(`${origin}.body`, `dependency cycle ${bodyCycle.join(' -> ')}`);

    const decide = loop.decide ?? loop.body[loop.body.length - 1].stage;
    if (!loop.body.some((b) => b.stage === decide)) issue(`${origin}.decide`, `${decide} is not a stage of this loop's body`);
    else if (isRunnableStage(decide) && !stagePlan(decide).decides) {
      const deciding = RUNNABLE_STAGES.filter((s) => stagePlan(s).decides);
      issue(`${origin}.decide`, `${decide} does not decide (its result says nothing about another round); deciding stages: ${deciding.join(', ')}`);
    }
    if (body.length !== loop.body.length || !isRunnableStage(decide) || bodyCycle) return;
    const planned: PlannedLoop = { name: loop.name, origin, ...(loop.after ? { after: loop.after } : {}), maxRounds: loop.max_rounds, decide, body };
    for (const first of roundInstances(planned, 1)) if (checkParams(first, first.origin, issue)) dryBuild(first, context, first.origin, issue);
    loops.push(planned);
  });

  if (issues.length > 0) throw new RunSpecError(issues);
  return CompiledPlan.parse({
    version: 1,
    name: spec.name ?? '',
    description: spec.description ?? '',
    inputs: Object.fromEntries(Object.entries(context.inputKeys).filter(([name]) => declared.has(name))),
    models: spec.models,
    instances,
    loops,
  });
}

/** The instances of one round of a loop, with `previous` and same-round references resolved. */
export function roundInstances(loop: PlannedLoop, round: number): PlannedInstance[] {
  const id = (stage: string, r = round) => roundInstanceId(stage, loop.name, r);
  return loop.body.map((template) => {
    const needs = new Set(template.needs.map((stage) => id(stage)));
    if (template.needs.length === 0) {
      if (round > 1) needs.add(id(loop.decide, round - 1));
      else if (loop.after) needs.add(loop.after);
    }
    const inputs = Object.fromEntries(
      Object.entries(template.inputs).map(([slot, bindings]) => [
        slot,
        bindings.map((binding): SlotBinding => {
          const artifact = 'artifact' in binding && binding.artifact ? { artifact: binding.artifact } : {};
          if (binding.kind === 'previous') return { kind: 'instance', instance: round === 1 ? (binding.first ?? loop.after ?? '') : id(binding.stage ?? template.stage, round - 1), ...artifact };
          if (binding.kind === 'round') return { kind: 'instance', instance: id(binding.stage), ...artifact };
          return binding;
        }),
      ]),
    );
    for (const bindings of Object.values(inputs)) for (const b of bindings) if (b.kind === 'instance') needs.add(b.instance);
    return {
      id: id(template.stage),
      stage: template.stage,
      instance: `${loop.name}-${round}`,
      origin: template.origin,
      needs: [...needs],
      inputs,
      params: template.params,
      loop: loop.name,
      round,
    };
  });
}

function checkStage(stage: string, at: string, issue: (path: string, message: string) => void): RunnableStage | undefined {
  if (!isStageName(stage)) {
    issue(at, `unknown stage ${JSON.stringify(stage)} (stages: ${STAGE_NAMES.filter((s) => s !== 'pipeline.run').join(', ')})`);
    return undefined;
  }
  if (!isRunnableStage(stage)) {
    issue(at, `stage ${stage} cannot be part of a run in this build (runnable: ${RUNNABLE_STAGES.join(', ')})`);
    return undefined;
  }
  return stage;
}

function unknownInstance(ref: string, known: readonly string[]): string {
  return `unknown instance ${JSON.stringify(ref)} (instances: ${known.join(', ') || 'none'})`;
}

/**
 * Binds every slot of a stage: the spec's bindings, else the slot's default run input where the
 * run has it. Unknown slots, malformed bindings, missing inputs and unbound required slots are issues.
 */
function bindSlots(
  stage: RunnableStage,
  given: Record<string, string | string[]>,
  origin: string,
  resolveRef: (ref: string, path: string) => SlotBinding | undefined,
  inputAvailable: (name: string) => boolean,
  declared: ReadonlySet<string>,
  issue: (path: string, message: string) => void,
): Record<string, SlotBinding[]> {
  const slots = stagePlan(stage).slots;
  const bound: Record<string, SlotBinding[]> = {};
  for (const slot of Object.keys(given)) {
    if (!(slot in slots)) issue(joinPath(origin, 'inputs', slot), `unknown input slot of ${stage} (slots: ${Object.keys(slots).join(', ') || 'none'})`);
  }
  for (const [slot, definition] of Object.entries(slots)) {
    const path = joinPath(origin, 'inputs', slot);
    const raw = given[slot];
    if (raw === undefined) {
      if (definition.defaultInput && inputAvailable(definition.defaultInput)) bound[slot] = [{ kind: 'input', name: definition.defaultInput }];
      else if (!definition.optional) {
        issue(
          path,
          definition.defaultInput
            ? `${stage} needs the input file ${definition.defaultInput} (SubmitRun files), or a binding to an instance`
            : `required: ${definition.description}`,
        );
      }
      continue;
    }
    const texts = Array.isArray(raw) ? raw : [raw];
    if (!definition.many && texts.length !== 1) {
      issue(path, `takes one binding, got ${texts.length}`);
      continue;
    }
    const bindings: SlotBinding[] = [];
    texts.forEach((text, n) => {
      const at = Array.isArray(raw) ? `${path}[${n}]` : path;
      const parts = splitBinding(text);
      if ('input' in parts) {
        if (!declared.has(parts.input)) issue(at, `no run input ${JSON.stringify(parts.input)} (declare it under inputs)`);
        else if (inputAvailable(parts.input)) bindings.push({ kind: 'input', name: parts.input });
        return;
      }
      const resolved = resolveRef(parts.ref, at);
      if (!resolved) return;
      const artifact = parts.artifact ?? definition.artifact;
      if (artifact !== undefined && artifact.length === 0) return void issue(at, 'an artifact name follows the /');
      bindings.push(artifact && resolved.kind !== 'input' ? { ...resolved, artifact } : resolved);
    });
    if (bindings.length === texts.length) bound[slot] = bindings;
  }
  return bound;
}

function checkParams(instance: PlannedInstance, origin: string, issue: (path: string, message: string) => void): boolean {
  const problems = stagePlan(instance.stage).checkParams(instance.params);
  for (const problem of problems) issue(joinPath(origin, 'params', ...problem.path), problem.message);
  return problems.length === 0;
}

/**
 * Builds the instance's payload with stand-in keys for what it will read and validates it, so a
 * payload-level problem (e.g. a window smaller than the largest bucket) is refused now, naming the
 * parameter behind it.
 */
function dryBuild(instance: PlannedInstance, context: CompileContext, origin: string, issue: (path: string, message: string) => void): void {
  const plan = stagePlan(instance.stage);
  // An unbound required slot was reported where it was found.
  if (!Object.entries(plan.slots).every(([slot, definition]) => definition.optional || (instance.inputs[slot]?.length ?? 0) > 0)) return;
  const keys = Object.fromEntries(
    Object.entries(instance.inputs).map(([slot, bindings]) => [
      slot,
      bindings.map((binding) => {
        if (binding.kind === 'input') return { from: 'input', key: context.inputKeys[binding.name] };
        const ref = binding.kind === 'instance' ? binding.instance : instance.id;
        return { from: ref, key: binding.artifact ? objectKey(context.runId, ref, ZEROS) : manifestKey(context.runId, ref) };
      }),
    ]),
  );
  let payload: unknown;
  try {
    payload = plan.build({ runId: context.runId, ...(instance.instance ? { instance: instance.instance } : {}), params: instance.params, inputs: boundInputs(keys, instance.id) });
  } catch (error) {
    issue(origin, `cannot build a ${instance.stage} payload: ${error instanceof Error ? error.message : String(error)}`);
    return;
  }
  const parsed = STAGES[instance.stage].payload.safeParse(payload);
  if (parsed.success) return;
  for (const problem of parsed.error.issues) {
    const param = plan.paramOf(problem.path);
    if (param) issue(joinPath(origin, 'params', param), problem.message);
    else issue(origin, `invalid ${instance.stage} payload: ${joinPath('', ...problem.path) || '(payload)'}: ${problem.message}`);
  }
}

function routeOverrides(
  overrides: Readonly<Record<string, string>>,
  instanceIds: readonly string[],
  stages: readonly string[],
  issue: (path: string, message: string) => void,
): Map<string, Record<string, string>> {
  const targets = [...new Set([...instanceIds, ...stages])].sort((a, b) => b.length - a.length);
  const routed = new Map<string, Record<string, string>>();
  for (const [key, value] of Object.entries(overrides)) {
    const target = targets.find((t) => key.startsWith(`${t}.`) && key.length > t.length + 1);
    if (!target) {
      issue(`params.${key}`, `names no stage or instance of this run (${targets.join(', ') || 'none'})`);
      continue;
    }
    routed.set(target, { ...routed.get(target), [key.slice(target.length + 1)]: value });
  }
  return routed;
}
