/**
 * `TrainingEngine` for a Kubernetes cluster with KubeRay and the Kubeflow training operator. A call
 * renders the job's manifest and validates it; in dry-run mode it returns it with its YAML, otherwise
 * it hands it to a `ClusterJobRunner` (`KubeJobRunner` of `@xyp/kube`), which submits it, watches it
 * to the end, streams its logs and copies its outputs into the store. This library stays pure: the
 * runner is the only way out to the cluster, and it is given, never imported.
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
  type StageManifest,
  type PpoSpecInput,
  type Resources,
  type RewardModelSpecInput,
  type SftSpecInput,
  type TrainingEngine,
} from '@xyp/contracts';
import { DEFAULT_RENDER_OPTIONS, checkpointDir, renderPpoJob, renderPyTorchJob, renderRewardModelJob, type RenderOptions } from './render';
import { validateManifest } from './validate';

/** One job for a runner: the validated manifest and where its outputs land. */
export interface ClusterJobRequest {
  manifest: KubernetesObject;
  runId: string;
  /** The stage or stage instance (`reward.train#finetune-s1`) whose outputs these are. */
  stage: string;
  kind: JobKind;
  /** The job's `--save` / `--save_path` directory, an absolute path on the shared volume. */
  outputDir: string;
  /** Where the shared volume is mounted in the job's pods (`resources.mountPath`). */
  mountPath: string;
  signal?: AbortSignal;
  /** Each line of the job's driver or master pod log. */
  onLog?: (line: string) => void;
  /** Each change of the job's status, and the runner's own steps (submitted, ingesting), as one line. */
  onStatus?: (line: string) => void;
}

export interface ClusterJobResult {
  submitted: { kind: string; namespace: string; name: string; uid?: string };
  metrics: Record<string, number>;
  /** The stage manifest listing the outputs copied into the store; the caller commits it. */
  manifest: StageManifest;
}

/**
 * Runs a job on the cluster: submit, watch to success, stream logs, ingest outputs. Rejects with the
 * job's reason and message when it fails, and deletes the job when `signal` aborts.
 */
export interface ClusterJobRunner {
  run(request: ClusterJobRequest): Promise<ClusterJobResult>;
}

/** Per call: cancel and progress, as the local engine's job control. */
export interface ClusterJobControl {
  signal?: AbortSignal;
  onLog?: (line: string) => void;
  onStatus?: (line: string) => void;
}

export type ClusterEngineOptions = {
  megatronDir?: string;
  rayVersion?: string;
} & (
  | {
      /** Render and validate only: nothing is submitted. */
      dryRun: true;
    }
  | {
      dryRun: false;
      /** Submits and follows the jobs (`KubeJobRunner` of `@xyp/kube`). */
      runner: ClusterJobRunner;
    }
);

/** Multi-document YAML (`---` separated), as `kubectl apply -f -` reads it; shared objects are written out, not aliased. */
export function manifestsToYaml(objects: KubernetesObject[]): string {
  return objects.map((o) => stringify(o, { lineWidth: 0, aliasDuplicateObjects: false })).join('---\n');
}

export class ClusterEngine implements TrainingEngine {
  readonly name = 'cluster' as const;
  private readonly render: RenderOptions;
  private readonly runner: ClusterJobRunner | undefined;

  constructor(options: ClusterEngineOptions) {
    if (!options.dryRun && !options.runner) throw new Error('ClusterEngine: dryRun false needs a runner (KubeJobRunner of @xyp/kube) to submit jobs with');
    this.runner = options.dryRun ? undefined : options.runner;
    this.render = { megatronDir: options.megatronDir ?? DEFAULT_RENDER_OPTIONS.megatronDir, rayVersion: options.rayVersion ?? DEFAULT_RENDER_OPTIONS.rayVersion };
  }

  /** True when calls only render (no runner). */
  get dryRun(): boolean {
    return this.runner === undefined;
  }

  private async job(kind: JobKind, spec: { runId: string; stage: string; resources: Resources }, object: KubernetesObject, control: ClusterJobControl): Promise<EngineJob> {
    validateManifest(object);
    const manifests = [object];
    const checkpoint = checkpointDir(spec.resources, spec.runId, spec.stage);
    const yaml = manifestsToYaml(manifests);
    if (!this.runner) return { engine: 'cluster', kind, status: 'rendered', checkpoint, manifests, yaml };
    const result = await this.runner.run({
      manifest: object,
      runId: spec.runId,
      stage: spec.stage,
      kind,
      outputDir: checkpoint,
      mountPath: spec.resources.mountPath,
      signal: control.signal,
      onLog: control.onLog,
      onStatus: control.onStatus,
    });
    return { engine: 'cluster', kind, status: 'succeeded', checkpoint, manifests, yaml, submitted: result.submitted, metrics: result.metrics, manifest: result.manifest };
  }

  async trainCausalLm(input: CausalLmSpecInput, control: ClusterJobControl = {}): Promise<EngineJob> {
    const spec = parseSpec(CausalLmSpec, input, 'causal LM');
    return this.job('causal-lm', spec, renderPyTorchJob(spec, 'cpt', this.render), control);
  }

  async trainSft(input: SftSpecInput, control: ClusterJobControl = {}): Promise<EngineJob> {
    const spec = parseSpec(SftSpec, input, 'SFT');
    return this.job('sft', spec, renderPyTorchJob(spec, 'sft', this.render), control);
  }

  async trainRewardModel(input: RewardModelSpecInput, control: ClusterJobControl = {}): Promise<EngineJob> {
    const spec = parseSpec(RewardModelSpec, input, 'reward model');
    return this.job('reward-model', spec, renderRewardModelJob(spec, this.render), control);
  }

  async runPpo(input: PpoSpecInput, control: ClusterJobControl = {}): Promise<EngineJob> {
    const spec = parseSpec(PpoSpec, input, 'PPO');
    return this.job('ppo', spec, renderPpoJob(spec, this.render), control);
  }

  async generate(_input: GenerateSpecInput): Promise<GeneratedText[]> {
    throw new Error('ClusterEngine.generate: not built; serve the checkpoint with vLLM and call its OpenAI API, or use the local engine');
  }
}
