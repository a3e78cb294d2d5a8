/**
 * What the stages on the cluster engine share (reward.train, cpt, sft, rlhf.ppo): which errors fail
 * a stage for good, submitting a job with its log and status in the stage's log and dry run kept
 * as `cluster/job.yaml`, an upstream checkpoint as a cluster job reads it, and what the stage's
 * result says of its job.
 */
import { CHECKPOINT_RESULT_KIND, StageManifest, type ArtifactEntry, type EngineJob } from '@xyp/contracts';
import { StageFailedError, checkpointOf, failForGoodIf, type StageContext } from '@xyp/queue';
import type { ClusterTraining } from './cluster-training';
import { KubeJobConflictError, KubeJobFailedError } from './kube-jobs';

/** A failed or conflicting job, a bad spec or manifest does not go away on retry. */
export function isPermanentClusterError(error: unknown): boolean {
  return error instanceof KubeJobFailedError || error instanceof KubeJobConflictError || (error instanceof Error && (error.name === 'ManifestValidationError' || /spec: /.test(error.message)));
}

/** What a checkpoint directory holds: Megatron-LM's (`--load`) or a Hugging Face model (OpenRLHF's `--pretrain`). */
export type CheckpointFormat = 'megatron' | 'huggingface';

/** The file that tells each format apart, as the stage's artifact (`checkpoint/<path>` of `KubeJobRunner`). */
export const CHECKPOINT_MARKERS: Record<CheckpointFormat, string> = {
  megatron: 'checkpoint/latest_checkpointed_iteration.txt',
  huggingface: 'checkpoint/config.json',
};

/**
 * The checkpoint of a committed upstream manifest as a cluster job reads it: its path on the shared
 * volume. A local-engine checkpoint, or (with `format`) one of the other format, fails the stage
 * for good.
 */
export async function clusterCheckpointOf(
  store: StageContext['store'],
  manifestKey: string,
  slot: string,
  stage: string,
  format?: CheckpointFormat,
): Promise<{ path: string; id: string; manifest: StageManifest }> {
  const { manifest, checkpoint: id } = await checkpointOf(store, manifestKey, slot);
  const { engine, checkpoint } = manifest.result as { engine?: unknown; checkpoint?: unknown };
  if (engine !== 'cluster' || typeof checkpoint !== 'string') {
    throw new StageFailedError(`${stage}: ${slot}: ${manifestKey} is a local-engine checkpoint; on the cluster engine ${slot} must be a checkpoint a cluster job wrote on the shared volume`, []);
  }
  const names = new Set(manifest.artifacts.map((a) => a.name));
  if (format && !names.has(CHECKPOINT_MARKERS[format])) {
    const why =
      format === 'megatron'
        ? `Megatron-LM's --load needs a Megatron checkpoint (${CHECKPOINT_MARKERS.megatron.slice('checkpoint/'.length)})${names.has(CHECKPOINT_MARKERS.huggingface) ? '; it is a Hugging Face model (an OpenRLHF job)' : ''}`
        : `OpenRLHF loads a Hugging Face model (${CHECKPOINT_MARKERS.huggingface.slice('checkpoint/'.length)})${names.has(CHECKPOINT_MARKERS.megatron) ? '; it is a Megatron-LM checkpoint (a cpt or sft PyTorchJob), which must be converted to Hugging Face format first (not built)' : ''}`;
    throw new StageFailedError(`${stage}: ${slot}: ${id} (${checkpoint}) is not a ${format === 'megatron' ? 'Megatron-LM' : 'Hugging Face'} checkpoint: ${why}`, []);
  }
  return { path: checkpoint, id, manifest };
}

type ClusterJob = Extract<EngineJob, { engine: 'cluster' }>;

/**
 * Submits a stage's job through the cluster engine, its log and status lines to the stage's log; a
 * failed job fails the stage for good. In dry run keeps `cluster/job.yaml` (with `keep`) and fails
 * for good naming what was rendered.
 */
export async function submitClusterJob(
  cluster: ClusterTraining,
  context: StageContext,
  runId: string,
  stage: string,
  run: (control: { signal: AbortSignal; onLog: (line: string) => void; onStatus: (line: string) => void }) => Promise<EngineJob>,
  keep: ArtifactEntry[] = [],
): Promise<Extract<ClusterJob, { status: 'succeeded' }>> {
  const job = await failForGoodIf(() => run({ signal: context.signal, onLog: (line) => context.log(line), onStatus: (line) => context.log(line) }), isPermanentClusterError);
  if (job.engine !== 'cluster') throw new Error(`${stage}: the cluster engine returned a ${job.engine} job`);
  if (job.status === 'rendered') {
    const kept = await context.store.putObject(runId, stage, 'cluster/job.yaml', job.yaml, 'application/yaml');
    const m = job.manifests[0].metadata;
    throw new StageFailedError(`${stage}: dry run: rendered and validated ${job.manifests[0].kind} ${m.namespace ?? 'default'}/${m.name} (cluster/job.yaml); set XYP_KUBECONFIG, or run in the cluster, to submit it`, [...keep, kept]);
  }
  return job;
}

/** What every cluster stage's result says of its job: `engine: cluster`, the checkpoint on the volume, its files and metrics. */
export function clusterCheckpointResult(job: Extract<ClusterJob, { status: 'succeeded' }>) {
  return { ...job.manifest.result, engine: 'cluster' as const, kind: CHECKPOINT_RESULT_KIND as typeof CHECKPOINT_RESULT_KIND, files: job.manifest.artifacts.map((a) => a.name), checkpoint: job.checkpoint, metrics: job.metrics };
}
