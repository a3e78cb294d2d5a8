/**
 * reward.train on the cluster engine: the stage's pairs are put on the shared volume, the reward
 * model job (OpenRLHF `train_rm` in a RayJob) is submitted and followed, and its outputs become the
 * instance's artifacts. Phase 2 starts from the checkpoint a cluster job of phase 1 wrote (its
 * manifest says `engine: cluster`); phase 1 from `XYP_CLUSTER_BASE_MODEL`. In dry run the manifest
 * is rendered, validated and kept (`cluster/job.yaml`), and the stage fails for good saying so.
 */
import type { ParsedPayloadOf } from '@xyp/contracts';
import type { StageContext, StageOutput } from '@xyp/queue';
import { clusterCheckpointOf, clusterCheckpointResult, submitClusterJob } from './cluster-stage';
import type { ClusterTraining } from './cluster-training';

export async function trainRewardModelOnCluster(cluster: ClusterTraining, payload: ParsedPayloadOf<'reward.train'>, stage: string, context: StageContext): Promise<StageOutput<'reward.train'>> {
  const init = payload.initManifestKey ? (await clusterCheckpointOf(context.store, payload.initManifestKey, 'init', stage)).path : cluster.settings.baseModel;
  const data = await cluster.stageInput(payload.runId, stage, 'train.jsonl', cluster.dryRun ? Buffer.alloc(0) : await context.store.getObjectStream(payload.pairsKey));
  const job = await submitClusterJob(cluster, context, payload.runId, stage, (control) =>
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
      control,
    ),
  );
  return {
    result: { ...clusterCheckpointResult(job), phase: payload.phase, variant: payload.variant, seed: payload.seed },
    artifacts: job.manifest.artifacts,
  };
}
