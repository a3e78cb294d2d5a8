/**
 * `TrainingEngine` for a Kubernetes cluster with KubeRay and the Kubeflow training operator. In
 * dry-run mode (the only mode built) a call renders the job's manifests, validates them, and
 * returns them with their YAML; nothing is submitted.
 */
import { stringify } from 'yaml';
import {
  CausalLmSpec,
  PpoSpec,
  RewardModelSpec,
  SftSpec,
  parseSpec,
  type CausalLmSpecInput,
  type EngineJob,
  type GenerateSpecInput,
  type GeneratedText,
  type JobKind,
  type KubernetesObject,
  type PpoSpecInput,
  type Resources,
  type RewardModelSpecInput,
  type SftSpecInput,
  type TrainingEngine,
} from '@xyp/contracts';
import { DEFAULT_RENDER_OPTIONS, checkpointDir, renderPpoJob, renderPyTorchJob, renderRewardModelJob, type RenderOptions } from './render';
import { validateManifest } from './validate';

export interface ClusterEngineOptions {
  /** Render and validate only. Submission is not built; `false` is refused. */
  dryRun: boolean;
  megatronDir?: string;
  rayVersion?: string;
}

/** Multi-document YAML (`---` separated), as `kubectl apply -f -` reads it; shared objects are written out, not aliased. */
export function manifestsToYaml(objects: KubernetesObject[]): string {
  return objects.map((o) => stringify(o, { lineWidth: 0, aliasDuplicateObjects: false })).join('---\n');
}

export class ClusterEngine implements TrainingEngine {
  readonly name = 'cluster' as const;
  private readonly render: RenderOptions;

  constructor(options: ClusterEngineOptions) {
    if (!options.dryRun) throw new Error('ClusterEngine: only dry-run mode is built (render and validate manifests); submitting jobs is not');
    this.render = { megatronDir: options.megatronDir ?? DEFAULT_RENDER_OPTIONS.megatronDir, rayVersion: options.rayVersion ?? DEFAULT_RENDER_OPTIONS.rayVersion };
  }

  private job(kind: JobKind, spec: { runId: string; stage: string; resources: Resources }, object: KubernetesObject): EngineJob {
    validateManifest(object);
    const manifests = [object];
    return {
      engine: 'cluster',
      kind,
      status: 'rendered',
      checkpoint: checkpointDir(spec.resources, spec.runId, spec.stage),
      manifests,
      yaml: manifestsToYaml(manifests),
    };
  }

  async trainCausalLm(input: CausalLmSpecInput): Promise<EngineJob> {
    const spec = parseSpec(CausalLmSpec, input, 'causal LM');
    return this.job('causal-lm', spec, renderPyTorchJob(spec, 'cpt', this.render));
  }

  async trainSft(input: SftSpecInput): Promise<EngineJob> {
    const spec = parseSpec(SftSpec, input, 'SFT');
    return this.job('sft', spec, renderPyTorchJob(spec, 'sft', this.render));
  }

  async trainRewardModel(input: RewardModelSpecInput): Promise<EngineJob> {
    const spec = parseSpec(RewardModelSpec, input, 'reward model');
    return this.job('reward-model', spec, renderRewardModelJob(spec, this.render));
  }

  async runPpo(input: PpoSpecInput): Promise<EngineJob> {
    const spec = parseSpec(PpoSpec, input, 'PPO');
    return this.job('ppo', spec, renderPpoJob(spec, this.render));
  }

  async generate(_input: GenerateSpecInput): Promise<GeneratedText[]> {
    throw new Error('ClusterEngine.generate: not built; serve the checkpoint with vLLM and call its OpenAI API, or use the local engine');
  }
}
