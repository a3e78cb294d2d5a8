import { Inject } from '@nestjs/common';
import { Processor } from '@nestjs/bullmq';
import { instanceId, type ParsedPayloadOf } from '@xyp/contracts';
import { CHECKPOINT_RESULT_KIND } from '@xyp/engine';
import { LocalEngine } from '@xyp/local-engine';
import { StageRuntime, StageWorker, checkpointOf, failForGoodIf, withLocalCopies, type StageContext, type StageOutput } from '@xyp/queue';
import { trainRewardModelOnCluster, type ClusterTraining } from '@xyp/kube';
import { REWARD_CLUSTER, REWARD_ENGINE_BACKEND, type RewardEngineBackend } from './engine-options';

/**
 * reward.train: one UFRM reward-model job on the local engine (`LocalEngine.trainRewardModel`), as
 * a stage instance. Its checkpoint is `<runId>/reward.train#<instance>`; the manifest this worker
 * commits lists the checkpoint files and curves and says which phase, variant and seed it is.
 * Phase 2 starts from the checkpoint of the instance bound to `init`. With `XYP_TRAINING_ENGINE=cluster`
 * the job is an OpenRLHF RayJob submitted and followed by `@xyp/kube` (`trainRewardModelOnCluster`).
 */
@Processor('reward.train')
export class RewardTrainWorker extends StageWorker<'reward.train'> {
  readonly stage = 'reward.train' as const;

  constructor(
    runtime: StageRuntime,
    @Inject(REWARD_ENGINE_BACKEND) private readonly backend: RewardEngineBackend,
    @Inject(REWARD_CLUSTER) private readonly cluster: ClusterTraining | null,
  ) {
    super(runtime);
  }

  protected async execute(payload: ParsedPayloadOf<'reward.train'>, context: StageContext): Promise<StageOutput<'reward.train'>> {
    const stage = instanceId(this.stage, context.instance);
    if (this.cluster) return trainRewardModelOnCluster(this.cluster, payload, stage, context);
    const init = payload.initManifestKey ? (await checkpointOf(context.store, payload.initManifestKey, 'init')).checkpoint : undefined;
    const engine = new LocalEngine({ store: context.store, backend: this.backend, onProgress: (line) => context.log(line) });
    const objects: Record<string, string> = { 'train.jsonl': payload.pairsKey, ...(payload.heldOutKey ? { 'held-out.jsonl': payload.heldOutKey } : {}) };
    const job = await withLocalCopies(context.store, objects, (paths) =>
      failForGoodIf(() =>
        engine.trainRewardModel(
          {
            runId: payload.runId,
            stage,
            steps: payload.steps,
            batchSize: payload.batchSize,
            seed: payload.seed,
            init,
            architecture: payload.architecture,
            dropout: payload.dropout,
            ...(payload.pooling ? { pooling: payload.pooling } : {}),
            weights: payload.weights,
            evalEvery: payload.evalEvery,
            maxLength: payload.architecture.context,
            phase: payload.phase,
            optimizer: { lr: payload.lr, warmupSteps: Math.min(10, Math.floor(payload.steps / 10)), weightDecay: 0.01, clipNorm: 1 },
            data: { jsonl: paths['train.jsonl'], ...(paths['held-out.jsonl'] ? { heldOut: paths['held-out.jsonl'] } : {}) },
          },
          { signal: context.signal, onProgress: (p) => context.progress(p.done, p.total, 'steps', p.message, { loss: p.loss }) },
        ),
        // A spec or data problem does not go away on retry.
        (error) => error instanceof Error && /spec: |:\d+: /.test(error.message),
      ),
    );
    if (job.engine !== 'local') throw new Error('reward.train: the local engine returned a cluster job');
    return {
      result: { ...job.manifest.result, kind: CHECKPOINT_RESULT_KIND, files: job.manifest.artifacts.map((a) => a.name), checkpoint: job.checkpoint, phase: payload.phase, variant: payload.variant, seed: payload.seed, metrics: job.metrics },
      artifacts: job.manifest.artifacts,
    };
  }
}
