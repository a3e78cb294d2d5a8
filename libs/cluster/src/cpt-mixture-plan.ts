/**
 * Continued pretraining with a dynamic data mixture on the cluster: one Megatron-LM `PyTorchJob`
 * per mixture stage, each training on the same packed shards (split by category) with that
 * stage's per-category weights, each resuming from the stage before.
 *
 * Only the first stage's weights are known before training. Later ones come from per-category
 * validation loss (`nextMixture` of `@xyp/mixture`), which Megatron does not report per category:
 * the trainer evaluates stage k's checkpoint per category, computes stage k+1's weights and renders
 * the plan again with one more stage. So this renders exactly the stages whose weights are given;
 * rendering is deterministic, so the earlier stages come out unchanged and the caller applies the
 * new last one.
 */
import { CausalLmSpec, parseSpec, type CausalLmSpecInput, type KubernetesObject } from '@xyp/contracts';
import { megatronCategoryBlend, parseCategorySplit, type MegatronDataEntries } from './category-blend';
import { manifestsToYaml } from './cluster-engine';
import { joinPosix } from './posix-path';
import { DEFAULT_RENDER_OPTIONS, checkpointDir, jobName, onVolume, renderPyTorchJob, type RenderOptions } from './render';
import { validateManifest } from './validate';

/** One mixture stage: per-category weights and how many optimiser steps it trains. */
export interface CptMixtureStage {
  weights: Record<string, number>;
  steps: number;
}

export interface CptMixturePlanInput {
  /** The stages whose weights are known, in order (at least one). */
  stages: CptMixtureStage[];
  /** Parsed `categories.json` of the split shards (`xyp corpus split-categories`). */
  split: unknown;
  /** The split's directory on the shared volume (relative to its mount point, or absolute). */
  mountPrefix: string;
  /** Train on this bucket length only (default: every bucket, weights split by tokens; see `megatronCategoryBlend`). */
  bucket?: number;
  /**
   * Optimiser steps of the whole CPT run, all stages together: the cosine schedule's length
   * (`--lr-decay-iters`), the same in every stage's job. Default: the sum of the given stages'
   * steps, which is right only when every stage is given; a caller rendering stage by stage must
   * pass the run's total each time (Megatron asserts that a resumed checkpoint's LR schedule
   * matches the arguments, and the schedule would otherwise end with the given stages).
   */
  totalSteps?: number;
}

/** A CPT spec without `steps` and `data` (the plan sets them per stage) and without the local engine's in-job `mixture`. */
export type CptMixtureSpecInput = Omit<CausalLmSpecInput, 'steps' | 'data' | 'mixture'>;

export interface CptMixtureJob {
  /** 1-based stage number. */
  stage: number;
  name: string;
  /** This stage's steps. */
  steps: number;
  /** `--train-iters`: steps of this and every earlier stage. */
  trainIters: number;
  /** `--load`: the previous stage's `--save` (the spec's `init` for stage 1, if any). */
  load?: string;
  save: string;
  data: MegatronDataEntries;
  manifest: KubernetesObject;
}

export interface CptMixturePlan {
  jobs: CptMixtureJob[];
  manifests: KubernetesObject[];
  /** Every stage's manifest, `---` separated; apply them one at a time, each after the one before finished. */
  yaml: string;
  /** Where the last given stage writes its checkpoint. */
  checkpoint: string;
}

/**
 * Renders one `PyTorchJob` per given mixture stage, `<runId>-cpt-s<k>` (k from 1), each validated
 * like `ClusterEngine`'s jobs. Stage k: `--data-path` from its weights over the split
 * (`megatronCategoryBlend`), `--train-iters` = the cumulative steps through stage k, `--save
 * <checkpoints>/<runId>/<stage>/s<k>`, `--load` stage k−1's save directory (Megatron resumes its
 * iteration, optimiser state and consumed samples; the new blend is read from there on); stage 1
 * loads the spec's `init` if it has one. Same architecture, parallel layout, optimiser and seed in
 * every stage; the LR schedule runs once over `totalSteps`.
 */
export function renderCptMixturePlan(input: CptMixtureSpecInput, plan: CptMixturePlanInput, options: Partial<RenderOptions> = {}): CptMixturePlan {
  const render: RenderOptions = { ...DEFAULT_RENDER_OPTIONS, ...options };
  if (plan.stages.length === 0) throw new Error('CPT mixture plan: stages: give at least the first stage (its weights and steps)');
  plan.stages.forEach((stage, i) => {
    if (!Number.isInteger(stage.steps) || stage.steps <= 0) throw new Error(`CPT mixture plan: stages[${i}].steps: ${stage.steps} is not a positive integer`);
  });
  const given = plan.stages.reduce((sum, stage) => sum + stage.steps, 0);
  const totalSteps = plan.totalSteps ?? given;
  if (!Number.isInteger(totalSteps) || totalSteps < given) throw new Error(`CPT mixture plan: totalSteps ${totalSteps} is less than the given stages' ${given} steps`);
  const split = parseCategorySplit(plan.split);
  const jobs: CptMixtureJob[] = [];
  let trainIters = 0;
  let load: string | undefined;
  for (const [i, stage] of plan.stages.entries()) {
    const k = i + 1;
    trainIters += stage.steps;
    try {
      const data = megatronCategoryBlend(stage.weights, split, { bucket: plan.bucket, mountPrefix: plan.mountPrefix });
      const spec = parseSpec(CausalLmSpec, { ...input, steps: trainIters, data: { megatron: data }, ...(load !== undefined ? { init: load } : {}) }, 'causal LM');
      if (k === 1) load = spec.init === undefined ? undefined : onVolume(spec.resources, spec.init);
      const save = joinPosix(checkpointDir(spec.resources, spec.runId, spec.stage), `s${k}`);
      const name = jobName(spec.runId, `cpt-s${k}`, spec.stage);
      const manifest = renderPyTorchJob(spec, 'cpt', render, { name, save, lrDecayIters: totalSteps, labels: { 'xyp.io/mixture-stage': String(k) } });
      validateManifest(manifest);
      jobs.push({ stage: k, name, steps: stage.steps, trainIters, ...(load !== undefined ? { load } : {}), save, data, manifest });
      load = save;
    } catch (error) {
      throw new Error(`CPT mixture plan: stage ${k}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
  }
  const manifests = jobs.map((job) => job.manifest);
  return { jobs, manifests, yaml: manifestsToYaml(manifests), checkpoint: jobs[jobs.length - 1].save };
}
