import { describe, expect, it } from 'vitest';
import { compileRunSpec, roundInstances, type CompileContext } from './compile';
import { RunSpecError } from './issues';
import { parseRunSpec, parseRunSpecText, type RunSpecInput } from './run-spec';
import { specFromStages } from './legacy';

const runId = 'run-spec-test';
const key = (name: string) => `runs/${runId}/input/objects/${name.replace(/[^a-z]/g, '').padEnd(64, 'a').slice(0, 64)}`;
const context = (files: string[] = [], overrides: Record<string, string> = {}): CompileContext => ({
  runId,
  inputKeys: Object.fromEntries(['corpus.jsonl', ...files].map((name) => [name, key(name)])),
  overrides,
});

/** The issues a spec is refused with, as `path: message` lines. */
function refusal(spec: RunSpecInput, ctx = context(['losses.jsonl', 'weights.json'])): string[] {
  try {
    compileRunSpec(parseRunSpec(spec), ctx);
  } catch (error) {
    if (error instanceof RunSpecError) return error.issues.map((i) => `${i.path}: ${i.message}`);
    throw error;
  }
  return [];
}

const mixInputs = { inputs: { 'losses.jsonl': {}, 'weights.json': {} } };

describe('run spec validation: each refusal names its field', () => {
  it('reads YAML and JSON, and names the line of a syntax error', () => {
    expect(parseRunSpecText('stages:\n  - id: corpus.inspect\n').stages[0].id).toBe('corpus.inspect');
    expect(parseRunSpecText('{"stages":[{"id":"corpus.inspect"}]}').stages).toHaveLength(1);
    expect(() => parseRunSpecText('stages:\n  - id: [corpus.inspect\n')).toThrow(/^spec: not valid YAML or JSON: .* at line 3, column 1$/);
    expect(() => parseRunSpecText('- just a list')).toThrow('spec: must be a mapping');
  });

  it('names unknown and malformed fields of the shape', () => {
    expect(() => parseRunSpec({ stages: [{ id: 'corpus.inspect', neds: [] }] })).toThrow('stages[0].neds: unknown field');
    expect(() => parseRunSpec({ stages: [{ id: 'corpus.inspect' }], loops: [{ name: 'Round', max_rounds: 0, body: [] }] })).toThrow(/loops\[0\]\.name: loop name.*loops\[0\]\.max_rounds: .*loops\[0\]\.body: /);
  });

  it('refuses an unknown stage, a stage not in this build and a bad instance key', () => {
    expect(refusal({ stages: [{ id: 'corpus.inspect' }, { id: 'corpus.bucket' }, { id: 'corpus.nope' }] })).toEqual([
      expect.stringMatching(/^stages\[2\]\.id: unknown stage "corpus\.nope" \(stages: corpus\.inspect, /),
    ]);
    expect(refusal({ stages: [{ id: 'pipeline.run' }] })).toEqual([expect.stringMatching(/^stages\[0\]\.id: stage pipeline\.run cannot be part of a run in this build \(runnable: corpus\.inspect, /)]);
    expect(refusal({ stages: [{ id: 'corpus.bucket#Phase_1' }] })).toEqual([expect.stringMatching(/^stages\[0\]\.id: instance key: /)]);
  });

  it('refuses an unknown or malformed parameter, and one that makes an invalid payload, naming the parameter', () => {
    expect(refusal({ stages: [{ id: 'corpus.inspect' }, { id: 'corpus.bucket', params: { colour: 'red', strategy: 'zigzag' } }] })).toEqual([
      expect.stringMatching(/^stages\[1\]\.params\.strategy: Invalid option/),
      'stages[1].params.colour: unknown parameter',
    ]);
    // A window smaller than the largest bucket passes the parameter schema, not the payload's.
    // A default instance may stand beside a keyed one; a second keyless one is a duplicate id.
    expect(refusal({ stages: [{ id: 'corpus.inspect' }, { id: 'corpus.inspect#x' }, { id: 'corpus.inspect' }, { id: 'corpus.bucket', params: { window_tokens: 1000, buckets: [2048, 4096] } }] })).toEqual([
      'stages[2].id: "corpus.inspect" is used twice (also stages[0])',
      'stages[3].params.window_tokens: must be at least the largest sequence length (4096)',
    ]);
    expect(refusal({ stages: [{ id: 'corpus.bucket', params: { buckets: '2048,x' } }] })).toEqual([expect.stringMatching(/^stages\[0\]\.params\.buckets: /)]);
  });

  it('refuses SubmitRun params that name no stage or instance, and bad values there', () => {
    const spec = parseRunSpec({ stages: [{ id: 'corpus.bucket#a' }, { id: 'corpus.bucket#b' }] });
    expect(() => compileRunSpec(spec, context([], { 'corpus.nope.x': '1' }))).toThrow(/^params\.corpus\.nope\.x: names no stage or instance of this run/);
    expect(() => compileRunSpec(spec, context([], { 'corpus.bucket#b.seed': '-1' }))).toThrow(/^stages\[1\]\.params\.seed: /);
    // A stage name sets every instance; an instance id only that one, over the stage's.
    const plan = compileRunSpec(spec, context([], { 'corpus.bucket.seed': '7', 'corpus.bucket#b.seed': '9' }));
    expect(plan.instances.map((i) => i.params.seed)).toEqual(['7', '9']);
  });

  it('refuses unknown input slots, inputs the run lacks and references to unknown instances', () => {
    const known = '(instances: corpus.mix#a, corpus.mix#b, corpus.mix#d)';
    expect(
      refusal({
        ...mixInputs,
        stages: [
          { id: 'corpus.mix#a', inputs: { wieghts: 'input/weights.json' } },
          { id: 'corpus.mix#b', inputs: { losses: 'input/loss.jsonl', weights: 'corpus.mix#c/weights.json' } },
          { id: 'corpus.mix#d', needs: ['corpus.mix#z'] },
        ],
      }),
    ).toEqual([
      'stages[0].inputs.wieghts: unknown input slot of corpus.mix (slots: losses, weights, config)',
      'stages[1].inputs.losses: no run input "loss.jsonl" (declare it under inputs)',
      `stages[1].inputs.weights: unknown instance "corpus.mix#c" ${known}`,
      `stages[2].needs[0]: unknown instance "corpus.mix#z" ${known}`,
    ]);
    expect(refusal({ inputs: { 'losses.jsonl': {} }, stages: [{ id: 'corpus.mix' }] }, context(['losses.jsonl']))).toEqual([
      'stages[0].inputs.weights: corpus.mix needs the input file weights.json (SubmitRun files), or a binding to an instance',
    ]);
    expect(refusal({ inputs: { 'extra.json': 'x.json' }, stages: [{ id: 'corpus.inspect' }] })).toEqual([expect.stringMatching(/^inputs\.extra\.json: not uploaded/)]);
  });

  it('refuses a dependency cycle, naming it', () => {
    expect(
      refusal({
        stages: [
          { id: 'corpus.inspect' },
          { id: 'corpus.bucket#a', needs: ['corpus.inspect', 'corpus.bucket#c'] },
          { id: 'corpus.bucket#b', needs: ['corpus.bucket#a'] },
          { id: 'corpus.bucket#c', needs: ['corpus.bucket#b'] },
        ],
      }),
    ).toEqual(['stages[1].needs: dependency cycle corpus.bucket#a -> corpus.bucket#c -> corpus.bucket#b -> corpus.bucket#a']);
    expect(refusal({ stages: [{ id: 'corpus.inspect', needs: ['corpus.inspect'] }] })).toEqual(['stages[0].needs[0]: an instance cannot need itself']);
  });

  it('refuses loops that cannot decide or cannot start', () => {
    expect(
      refusal({
        ...mixInputs,
        stages: [{ id: 'corpus.inspect' }],
        loops: [
          { name: 'pack', max_rounds: 2, body: [{ stage: 'corpus.bucket' }] },
          { name: 'mix', max_rounds: 2, body: [{ stage: 'corpus.mix', inputs: { weights: 'previous' } }] },
        ],
      }),
    ).toEqual([
      'loops[0].decide: corpus.bucket does not decide (its result says nothing about another round); deciding stages: corpus.mix, rlhf.improve',
      'loops[1].body[0].inputs.weights: previous needs loops[1].after (what round 1 continues from), or previous|<instance>',
    ]);
    expect(refusal({ ...mixInputs, stages: [{ id: 'corpus.mix#round-2' }], loops: [{ name: 'round', max_rounds: 2, body: [{ stage: 'corpus.mix' }] }] })).toEqual([
      'stages[0].id: collides with the instances of loop round (corpus.mix#round-<round>)',
    ]);
  });

  it('binds previous:<body stage> (another stage one round before) and previous|<instance> (what round 1 reads instead of after)', () => {
    const spec = {
      ...mixInputs,
      stages: [{ id: 'corpus.inspect' }, { id: 'corpus.mix#start' }],
      loops: [
        {
          name: 'round',
          after: 'corpus.inspect',
          max_rounds: 3,
          decide: 'corpus.mix',
          body: [
            { stage: 'corpus.bucket', inputs: { input: 'input/corpus.jsonl' } },
            { stage: 'corpus.mix', inputs: { losses: 'input/losses.jsonl', weights: 'previous:corpus.bucket|corpus.mix#start/weights.json', config: 'previous|corpus.mix#start' } },
          ],
        },
      ],
    };
    const plan = compileRunSpec(parseRunSpec(spec), context(['losses.jsonl', 'weights.json']));
    const [round1, round2] = [1, 2].map((r) => roundInstances(plan.loops[0], r).find((i) => i.stage === 'corpus.mix')!);
    expect(round1.inputs.weights).toEqual([{ kind: 'instance', instance: 'corpus.mix#start', artifact: 'weights.json' }]);
    expect(round1.inputs.config).toEqual([{ kind: 'instance', instance: 'corpus.mix#start' }]);
    expect(round2.inputs.weights).toEqual([{ kind: 'instance', instance: 'corpus.bucket#round-1', artifact: 'weights.json' }]);
    expect(round2.inputs.config).toEqual([{ kind: 'instance', instance: 'corpus.mix#round-1' }]);
    expect(round2.needs).toEqual(expect.arrayContaining(['corpus.bucket#round-1', 'corpus.mix#round-1']));
    const bad: RunSpecInput = {
      ...spec,
      loops: [{ ...spec.loops[0], body: [{ stage: 'corpus.bucket', inputs: { input: 'input/corpus.jsonl' } }, { stage: 'corpus.mix', inputs: { weights: 'previous:corpus.nope', config: 'previous|corpus.mix#nope' } }] }],
    };
    expect(refusal(bad)).toEqual([
      "loops[0].body[1].inputs.weights: previous:corpus.nope: corpus.nope is not a stage of this loop's body (corpus.bucket, corpus.mix)",
      expect.stringMatching(/^loops\[0\]\.body\[1\]\.inputs\.config: previous\|corpus\.mix#nope: unknown instance "corpus\.mix#nope"/),
    ]);
  });

  it('maps the old SubmitRun fields (stages, files) onto a chain', () => {
    const plan = compileRunSpec(parseRunSpec(specFromStages(['corpus.inspect', 'corpus.bucket'], [])), context());
    expect(plan.instances.map((i) => [i.id, i.needs])).toEqual([
      ['corpus.inspect', []],
      ['corpus.bucket', ['corpus.inspect']],
    ]);
    expect(plan.instances[1].inputs).toEqual({ input: [{ kind: 'input', name: 'corpus.jsonl' }] });
  });
});
