import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import type { KubernetesObject } from '@xyp/contracts';
import { megatronCategoryBlend } from './category-blend';
import { ClusterEngine } from './cluster-engine';
import { renderCptMixturePlan, type CptMixtureStage } from './cpt-mixture-plan';
import { validateManifest } from './validate';

const resources = { namespace: 'xuanyuan', image: 'registry.example/xyp-megatron:1', nodes: 2, gpusPerNode: 8, tensorParallel: 4, pipelineParallel: 2 };
const llama70b = { layers: 80, width: 8192, heads: 64, context: 4096, queryGroups: 8, ffnHidden: 28672, ropeBase: 500000 };

const entry = (prefix: string, tokens: number) => ({ prefix, documents: tokens / 100, sequences: tokens / 50, tokens });
/** A `categories.json` as `xyp corpus split-categories` writes it: two buckets, one category in one only, one without data. */
const split = {
  news: { buckets: { '2048': entry('bucket_2048.cat-news', 3000), '4096': entry('bucket_4096.cat-news', 1000) } },
  general: { buckets: { '2048': entry('bucket_2048.cat-general', 1500), '4096': entry('bucket_4096.cat-general', 3000) } },
  'finance-encyclopedia': { buckets: { '2048': entry('bucket_2048.cat-finance-encyclopedia', 800) } },
  empty: { buckets: {} },
};
const weights: Record<string, number> = { news: 0.6, general: 0.3, 'finance-encyclopedia': 0.1, empty: 0 };

type Template = { spec: { containers: { name: string; command: string[] }[] } };
function commandOf(object: KubernetesObject): string[] {
  return (object.spec.pytorchReplicaSpecs as Record<string, { template: Template }>).Master.template.spec.containers[0].command;
}
function flag(args: string[], name: string): string | undefined {
  const at = args.indexOf(name);
  return at < 0 ? undefined : args[at + 1];
}
/** The `--data-path` values: everything up to the next flag. */
function dataPath(args: string[]): string[] {
  const at = args.indexOf('--data-path');
  const end = args.findIndex((a, i) => i > at && a.startsWith('--'));
  return args.slice(at + 1, end);
}

describe('megatronCategoryBlend', () => {
  it('divides a category weight among its buckets by tokens and drops zero weights', () => {
    const blend = megatronCategoryBlend(weights, split, { mountPrefix: 'corpus/xy3/by-category' });
    // general: 0.3 × 1500/4500 and 0.3 × 3000/4500; news: 0.6 × 3000/4000 and 0.6 × 1000/4000.
    expect(blend.map((e) => e.prefix)).toEqual([
      'corpus/xy3/by-category/bucket_2048.cat-finance-encyclopedia',
      'corpus/xy3/by-category/bucket_2048.cat-general',
      'corpus/xy3/by-category/bucket_4096.cat-general',
      'corpus/xy3/by-category/bucket_2048.cat-news',
      'corpus/xy3/by-category/bucket_4096.cat-news',
    ]);
    [0.1, 0.1, 0.2, 0.45, 0.15].forEach((w, i) => expect(blend[i].weight).toBeCloseTo(w, 12));
    expect(blend.reduce((sum, e) => sum + e.weight!, 0)).toBeCloseTo(1, 12);
    const only4096 = megatronCategoryBlend({ news: 0.6, general: 0.4 }, split, { bucket: 4096, mountPrefix: '/data/split' });
    expect(only4096).toEqual([
      { weight: 0.4, prefix: '/data/split/bucket_4096.cat-general' },
      { weight: 0.6, prefix: '/data/split/bucket_4096.cat-news' },
    ]);
  });

  it('names the category of every weight it cannot place', () => {
    const o = { mountPrefix: 'split' };
    expect(() => megatronCategoryBlend({ news: 0.5, crypto: 0.2 }, split, o)).toThrow('weights.crypto: no category "crypto" in the split (it has empty, finance-encyclopedia, general, news)');
    expect(() => megatronCategoryBlend({ empty: 0.5 }, split, o)).toThrow('weights.empty: category "empty" has weight 0.5 but no data in any bucket');
    expect(() => megatronCategoryBlend(weights, split, { ...o, bucket: 4096 })).toThrow(
      'weights.finance-encyclopedia: category "finance-encyclopedia" has weight 0.1 but no data in bucket 4096 (it has data in 2048)',
    );
    expect(() => megatronCategoryBlend({ news: -0.1 }, split, o)).toThrow('weights.news: -0.1 is not a finite non-negative number');
    expect(() => megatronCategoryBlend({ news: 0, general: 0 }, split, o)).toThrow('weights: no category has a positive weight');
    expect(() => megatronCategoryBlend({ toString: 1 }, split, o)).toThrow('weights.toString: no category "toString"');
    expect(() => megatronCategoryBlend({ news: 1 }, { news: { buckets: { '2048': { prefix: 'p', documents: 1, sequences: 1 } } } }, o)).toThrow(
      'category split (categories.json): news.buckets.2048.tokens:',
    );
  });
});

describe('renderCptMixturePlan', () => {
  const spec = { runId: 'xy3-cpt', batchSize: 64, tokenizer: 'tokenizers/llama3', init: 'checkpoints/base/megatron', architecture: llama70b, resources };
  const stages: CptMixtureStage[] = [
    { weights, steps: 100 },
    { weights: { news: 0.5, general: 0.5 }, steps: 50 },
    { weights: { news: 0.2, 'finance-encyclopedia': 0.8 }, steps: 50 },
  ];

  it('renders one valid PyTorchJob per stage, chained by --load, with cumulative --train-iters and one LR schedule', () => {
    const plan = renderCptMixturePlan(spec, { stages, split, mountPrefix: 'corpus/xy3/by-category' });
    expect(plan.jobs.map((j) => j.name)).toEqual(['xy3-cpt-cpt-s1', 'xy3-cpt-cpt-s2', 'xy3-cpt-cpt-s3']);
    for (const manifest of plan.manifests) {
      expect(() => validateManifest(manifest)).not.toThrow();
      expect(manifest).toMatchObject({ apiVersion: 'kubeflow.org/v1', kind: 'PyTorchJob', metadata: { namespace: 'xuanyuan' } });
    }
    const args = plan.manifests.map(commandOf);
    expect(args.map((a) => flag(a, '--train-iters'))).toEqual(['100', '150', '200']);
    expect(args.map((a) => flag(a, '--lr-decay-iters'))).toEqual(['200', '200', '200']);
    expect(args.map((a) => flag(a, '--lr-warmup-iters'))).toEqual(['10', '10', '10']);
    const saves = ['/data/checkpoints/xy3-cpt/engine.lm/s1', '/data/checkpoints/xy3-cpt/engine.lm/s2', '/data/checkpoints/xy3-cpt/engine.lm/s3'];
    expect(args.map((a) => flag(a, '--save'))).toEqual(saves);
    expect(args.map((a) => flag(a, '--load'))).toEqual(['/data/checkpoints/base/megatron', saves[0], saves[1]]);
    expect(plan.jobs.map((j) => j.load)).toEqual(['/data/checkpoints/base/megatron', saves[0], saves[1]]);
    expect(plan.checkpoint).toBe(saves[2]);
    expect(args.every((a) => !a.includes('--finetune'))).toBe(true);
    // `weight prefix` pairs, each stage from its own weights.
    const root = '/data/corpus/xy3/by-category';
    expect(dataPath(args[0])).toEqual([
      '0.1', `${root}/bucket_2048.cat-finance-encyclopedia`,
      '0.1', `${root}/bucket_2048.cat-general`,
      '0.2', `${root}/bucket_4096.cat-general`,
      '0.45', `${root}/bucket_2048.cat-news`,
      '0.15', `${root}/bucket_4096.cat-news`,
    ]);
    expect(dataPath(args[1])).toEqual(['0.166667', `${root}/bucket_2048.cat-general`, '0.333333', `${root}/bucket_4096.cat-general`, '0.375', `${root}/bucket_2048.cat-news`, '0.125', `${root}/bucket_4096.cat-news`]);
    expect(dataPath(args[2])).toEqual(['0.8', `${root}/bucket_2048.cat-finance-encyclopedia`, '0.15', `${root}/bucket_2048.cat-news`, '0.05', `${root}/bucket_4096.cat-news`]);
    // Same model, layout, optimiser and seed in every stage: only these flags differ.
    const varying = new Set(['--data-path', '--train-iters', '--save', '--load', '--save-interval']);
    const fixed = (a: string[]) => a.filter((x, i) => !varying.has(x) && !varying.has(a[i - 1]) && !(a.indexOf('--data-path') < i && i < a.indexOf('--split')));
    expect(fixed(args[1])).toEqual(fixed(args[0]));
    expect(fixed(args[2])).toEqual(fixed(args[0]));
    expect(plan.manifests.map((m) => m.metadata.labels?.['xyp.io/mixture-stage'])).toEqual(['1', '2', '3']);
    expect(parseAllDocuments(plan.yaml).map((d) => d.toJSON() as unknown)).toEqual(plan.manifests);
  });

  it('renders the known stages only: stage 1 alone, given the run total, is the same job as in the full plan', () => {
    const full = renderCptMixturePlan(spec, { stages, split, mountPrefix: 'corpus/xy3/by-category' });
    const first = renderCptMixturePlan(spec, { stages: stages.slice(0, 1), split, mountPrefix: 'corpus/xy3/by-category', totalSteps: 200 });
    expect(first.manifests).toEqual(full.manifests.slice(0, 1));
    const twoOfThree = renderCptMixturePlan(spec, { stages: stages.slice(0, 2), split, mountPrefix: 'corpus/xy3/by-category', totalSteps: 200 });
    expect(twoOfThree.manifests).toEqual(full.manifests.slice(0, 2));
    // Without the run total, a lone first stage's schedule would end with it.
    expect(flag(commandOf(renderCptMixturePlan(spec, { stages: stages.slice(0, 1), split, mountPrefix: 'x' }).manifests[0]), '--lr-decay-iters')).toBe('100');
  });

  it('one bucket, no init, and a long run id still give DNS-1035 names within KubeRay and Kubeflow limits', () => {
    const runId = `xy3-${'a'.repeat(50)}-run`;
    const plan = renderCptMixturePlan({ ...spec, runId, init: undefined }, { stages: stages.slice(0, 2), split, bucket: 2048, mountPrefix: '/mnt/split' });
    for (const job of plan.jobs) expect(job.name).toMatch(/^[a-z]([-a-z0-9]*[a-z0-9])?$/);
    expect(plan.jobs.map((j) => j.name.length)).toEqual([47, 47]);
    expect(plan.jobs.map((j) => j.name.slice(-7))).toEqual(['-cpt-s1', '-cpt-s2']);
    const args = plan.manifests.map(commandOf);
    expect(flag(args[0], '--load')).toBeUndefined();
    expect(flag(args[1], '--load')).toBe(`/data/checkpoints/${runId}/engine.lm/s1`);
    expect(dataPath(args[0])).toEqual(['0.1', '/mnt/split/bucket_2048.cat-finance-encyclopedia', '0.3', '/mnt/split/bucket_2048.cat-general', '0.6', '/mnt/split/bucket_2048.cat-news']);
  });

  it('names what is wrong with a plan', () => {
    const base = { split, mountPrefix: 'split' };
    expect(() => renderCptMixturePlan(spec, { ...base, stages: [stages[0], { weights: { news: 0.5, crypto: 0.5 }, steps: 10 }] })).toThrow(
      'CPT mixture plan: stage 2: weights.crypto: no category "crypto" in the split',
    );
    expect(() => renderCptMixturePlan(spec, { ...base, stages: [] })).toThrow('CPT mixture plan: stages: give at least the first stage');
    expect(() => renderCptMixturePlan(spec, { ...base, stages: [{ weights, steps: 0 }] })).toThrow('CPT mixture plan: stages[0].steps: 0 is not a positive integer');
    expect(() => renderCptMixturePlan(spec, { ...base, stages, totalSteps: 150 })).toThrow("CPT mixture plan: totalSteps 150 is less than the given stages' 200 steps");
    expect(() => renderCptMixturePlan({ ...spec, batchSize: 5 }, { ...base, stages })).toThrow('CPT mixture plan: stage 1: causal LM spec: batchSize 5 is not divisible');
    expect(() => renderCptMixturePlan({ ...spec, resources: { ...resources, image: undefined } }, { ...base, stages })).toThrow('CPT mixture plan: stage 1: causal LM spec: resources.image');
  });
});

describe('ClusterEngine with per-category weights', () => {
  const engine = new ClusterEngine({ dryRun: true });
  const sftSplit = {
    'finance-qa': { buckets: { '4096': entry('bucket_4096.cat-finance-qa', 2000) } },
    'general-chat': { buckets: { '4096': entry('bucket_4096.cat-general-chat', 1000) } },
  };

  it('renders SFT as a --finetune job over the blend of its category ratios', async () => {
    const data = { megatron: megatronCategoryBlend({ 'finance-qa': 0.7, 'general-chat': 0.3 }, sftSplit, { mountPrefix: 'sft/xy3/by-category' }) };
    const job = await engine.trainSft({ runId: 'xy3-sft', steps: 200, batchSize: 32, data, tokenizer: 't', init: 'checkpoints/xy3-cpt/engine.lm/s3', architecture: llama70b, resources: { ...resources, nodes: 1, pipelineParallel: 1, tensorParallel: 8 } });
    if (job.engine !== 'cluster') throw new Error('expected a cluster job');
    const args = commandOf(job.manifests[0]);
    expect(args).toContain('--finetune');
    expect(dataPath(args)).toEqual(['0.7', '/data/sft/xy3/by-category/bucket_4096.cat-finance-qa', '0.3', '/data/sft/xy3/by-category/bucket_4096.cat-general-chat']);
    expect(flag(args, '--load')).toBe('/data/checkpoints/xy3-cpt/engine.lm/s3');
    expect(args).not.toContain('--lr-decay-iters');
  });

  it('refuses the local engine’s in-job mixtures, pointing to the cluster way', async () => {
    const base = { runId: 'xy3-bad', batchSize: 64, tokenizer: 't', architecture: llama70b, resources, data: { megatron: [{ prefix: 'a', weight: 1 }] } };
    await expect(engine.trainCausalLm({ ...base, steps: 10, mixture: { stages: 3 } })).rejects.toThrow('causal LM spec: mixture: re-setting the mixture inside one job is local only; on the cluster render one job per stage with renderCptMixturePlan');
    await expect(engine.trainSft({ ...base, init: 'c', epochs: { count: 2 } })).rejects.toThrow('SFT spec: epochs: per-epoch SFT ratios are re-set by the local engine only');
    await expect(engine.trainSft({ ...base, init: 'c' })).rejects.toThrow('SFT spec: steps: the cluster engine needs the number of optimiser steps');
  });
});
