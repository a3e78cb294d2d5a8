import { describe, expect, it } from 'vitest';
import { synthesisAnalysisPlan, synthesisEnsemblePlan, synthesisEvolvePlan, synthesisSelfQaPlan, type BoundInputs } from '@xyp/contracts';
import { AnalysisRunConfig, EnsembleRunConfig, EvolRunConfig, SelfQaRunConfig, parseRunConfig } from './config';

/** Bound slots as the planner hands them to a builder: two checkpoints on `models`, no registry. */
const inputs: BoundInputs = {
  one: (slot) => `runs/r/input/${slot}.jsonl`,
  maybe: () => undefined,
  all: (slot) => (slot === 'models' ? [{ from: 'cpt', key: 'runs/r/cpt/manifest.json' }, { from: 'cpt#small', key: 'runs/r/cpt#small/manifest.json' }] : []),
};

const built = (plan: { build: (c: { runId: string; inputs: BoundInputs; params: Record<string, unknown> }) => unknown }, params: Record<string, unknown>) =>
  plan.build({ runId: 'run-synth', inputs, params }) as { config: Record<string, unknown>; localModels: { name: string }[] };

describe('the synthesis stage plans build run configurations the generators accept', () => {
  it('maps every stage parameter onto the generator config field it names', () => {
    const common = { concurrency: 3, chunk_size: 5, seed: 7, temperature: 0.4, max_tokens: 9 };
    const selfqa = parseRunConfig(SelfQaRunConfig, built(synthesisSelfQaPlan, { ...common, generator: 'cpt', instructions_per_document: 2, min_support: 0.3 }).config, 'selfqa');
    expect(selfqa).toMatchObject({ concurrency: 3, chunkSize: 5, seed: 7, sampling: { temperature: 0.4, max_tokens: 9, seed: 7 }, instructionsPerDocument: 2, filter: { minSupport: 0.3 } });
    const evolve = parseRunConfig(EvolRunConfig, built(synthesisEvolvePlan, { generator: 'cpt', judge: 'cpt:small', rounds: 2, max_depth: 3 }).config, 'evolve');
    expect(evolve).toMatchObject({ models: { generator: 'cpt', judge: 'cpt:small' }, pool: { maxRounds: 2, maxDepth: 3 } });
    const analysis = parseRunConfig(AnalysisRunConfig, built(synthesisAnalysisPlan, { generator: 'cpt', exemplars_per_topic: 2 }).config, 'analysis');
    expect(analysis.exemplarsPerTopic).toBe(2);
    const ensemble = parseRunConfig(EnsembleRunConfig, built(synthesisEnsemblePlan, { ensemble: 'cpt,cpt:small', aggregator: 'cpt', threshold_quantile: 0.25, max_survivors: 1 }).config, 'ensemble');
    expect(ensemble).toMatchObject({ models: { ensemble: ['cpt', 'cpt:small'], aggregator: 'cpt' }, selection: { threshold: { quantile: 0.25 }, maxSurvivors: 1 } });
  });

  it('names the served checkpoints by instance id, with # written :', () => {
    expect(built(synthesisSelfQaPlan, {}).localModels.map((m) => m.name)).toEqual(['cpt', 'cpt:small']);
  });
});
