/**
 * reward.train on the cluster engine: the stage's pairs are put on the shared volume, the reward
 * model job (OpenRLHF `train_rm` in a RayJob) is submitted and followed, and its outputs become the
 * instance's artifacts. Phase 2 starts from the checkpoint a cluster job of phase 1 wrote (its
 * manifest says `engine: cluster`); phase 1 from `XYP_CLUSTER_BASE_MODEL`. In dry run the manifest
 * is rendered, validated and kept (`cluster/job.yaml`), and the stage fails for good saying so.
 */
import { CHECKPOINT_RESULT_KIND, type ParsedPayloadOf } from '@xyp/contracts';
import { StageFailedError, checkpointOf, failForGoodIf, type StageContext, type StageOutput } from '@xyp/queue';
import type { ClusterTraining } from './cluster-training';
import { KubeJobConflictError, KubeJobFailedError } from './kube-jobs';

/** A failed or conflicting job, a bad spec or manifest does not go away on retry. */
export function isPermanentClusterError(error: unknown): boolean {
  return error instanceof KubeJobFailedError || error instanceof KubeJobConflictError || (error instanceof Error && (error.name === 'ManifestValidationError' || /spec: /.test(error.message)));
}

export async function trainRewardModelOnCluster(cluster: ClusterTraining, payload: ParsedPayloadOf<'reward.train'>, stage: string, context: StageContext): Promise<StageOutput<'reward.train'>> {
  let init = cluster.settings.baseModel;
  if (payload.initManifestKey) {
    const { manifest } = await checkpointOf(context.store, payload.initManifestKey, 'init');
    const { engine, checkpoint } = manifest.result as { engine?: unknown; checkpoint?: unknown };
    if (engine !== 'cluster' || typeof checkpoint !== 'string') {
      throw new StageFailedError(`${stage}: init: ${payload.initManifestKey} is a local-engine checkpoint; on the cluster engine init must be a checkpoint a cluster job wrote on the shared volume`, []);
    }
    init = checkpoint;
  }
  const data = await cluster.stageInput(payload.runId, stage, 'train.jsonl', await context.store.getObject(payload.pairsKey));
  const job = await failForGoodIf(
    () =>
      cluster.engineFor(context.store).trainRewardModel(
        {
          runId: payload.runId,
          stage,
          steps: payload.steps,
          batchSize: payload.batchSize,
          seed: payload.seed,
          init,
          weights: payload.weights,
          maxLength: payload.architecture.context,
          optimizer: { lr: payload.lr, warmupSteps: Math.min(10, Math.floor(payload.steps / 10)), weightDecay: 0.01, clipNorm: 1 },
          data: { jsonl: data },
          resources: { ...cluster.settings.resources, nodes: 1 },
        },
        { signal: context.signal, onLog: (line) => context.log(line), onStatus: (line) => context.log(line) },
      ),
    isPermanentClusterError,
  );
  if (job.engine !== 'cluster') throw new Error(`${stage}: the cluster engine returned a ${job.engine} job`);
  if (job.status === 'rendered') {
    const kept = await context.store.putObject(payload.runId, stage, 'cluster/job.yaml', job.yaml, 'application/yaml');
    const m = job.manifests[0].metadata;
    throw new StageFailedError(`${stage}: dry run: rendered and validated ${job.manifests[0].kind} ${m.namespace ?? 'default'}/${m.name} (cluster/job.yaml); set XYP_KUBECONFIG, or run in the cluster, to submit it`, [kept]);
  }
  return {
    result: { ...job.manifest.result, engine: 'cluster', kind: CHECKPOINT_RESULT_KIND, files: job.manifest.artifacts.map((a) => a.name), checkpoint: job.checkpoint, phase: payload.phase, variant: payload.variant, seed: payload.seed, metrics: job.metrics },
    artifacts: job.manifest.artifacts,
  };
}
