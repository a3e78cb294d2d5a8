import { Inject } from '@nestjs/common';
import { Processor } from '@nestjs/bullmq';
import { UnrecoverableError } from 'bullmq';
import { CHECKPOINT_RESULT_KIND, StageManifest, instanceId, splitInstanceId, type ParsedPayloadOf } from '@xyp/contracts';
import { LocalEngine } from '@xyp/local-engine';
import { StageRuntime, StageWorker, checkpointOf, failForGoodIf, readStageJson, type StageContext, type StageOutput } from '@xyp/queue';
import { trainCausalLmOnCluster, type ClusterTraining } from '@xyp/kube';
import { TRAINER_CLUSTER, TRAINER_ENGINE_BACKEND, isInputError, resumable, type TrainerEngineBackend } from './engine-options';

/**
 * cpt: continued pretraining with the data mixture in the loop (`LocalEngine.trainCausalLm` with
 * `mixture`) on the committed shards of the corpus.bucket stage or instance bound to `shards`. The
 * checkpoint is `<runId>/cpt[#<instance>]`; the manifest lists it with the per-category losses, the
 * mixture decisions and the plots. With `XYP_TRAINING_ENGINE=cluster` the shards go onto the shared
 * volume and the job is a Megatron-LM PyTorchJob submitted and followed by `@xyp/kube`
 * (`trainCausalLmOnCluster`).
 */
@Processor('cpt')
export class CptWorker extends StageWorker<'cpt'> {
  readonly stage = 'cpt' as const;

  constructor(
    runtime: StageRuntime,
    @Inject(TRAINER_ENGINE_BACKEND) private readonly backend: TrainerEngineBackend,
    @Inject(TRAINER_CLUSTER) private readonly cluster: ClusterTraining | null,
  ) {
    super(runtime);
  }

  protected async execute(payload: ParsedPayloadOf<'cpt'>, context: StageContext): Promise<StageOutput<'cpt'>> {
    const shards = StageManifest.parse(JSON.parse((await context.store.getObject(payload.shardsManifestKey)).toString('utf8')));
    if (splitInstanceId(shards.stage).stage !== 'corpus.bucket') throw new UnrecoverableError(`shards: ${instanceId(shards.stage, shards.instance)} is not a corpus.bucket stage`);
    if (this.cluster) return trainCausalLmOnCluster(this.cluster, payload, instanceId(this.stage, context.instance), context);
    const init = payload.initManifestKey ? (await checkpointOf(context.store, payload.initManifestKey, 'init')).checkpoint : undefined;
    const weights = payload.weightsKey ? await readStageJson<Record<string, number>>(context.store, payload.weightsKey, 'weights') : undefined;
    const config = payload.configKey ? await readStageJson<Record<string, unknown>>(context.store, payload.configKey, 'config') : undefined;
    const engine = new LocalEngine({ store: context.store, backend: this.backend, onProgress: (line) => context.log(line) });
    const job = await failForGoodIf(() =>
      engine.trainCausalLm(
        {
          runId: payload.runId,
          stage: instanceId(this.stage, context.instance),
          steps: payload.steps,
          batchSize: payload.batchSize,
          seed: payload.seed,
          init,
          architecture: payload.architecture,
          optimizer: { lr: payload.lr, warmupSteps: Math.min(10, Math.floor(payload.steps / 10)), weightDecay: 0.1, clipNorm: 1 },
          data: { shards: { source: `${shards.runId}/${instanceId(shards.stage, shards.instance)}`, buckets: payload.buckets } },
          mixture: {
            stages: payload.stages,
            weights,
            config: config ?? {},
            validationFraction: payload.validationFraction,
            validationRows: payload.validationRows,
            evalEvery: payload.evalEvery,
            logEvery: payload.logEvery,
          },
        },
        resumable(context),
      ),
      isInputError,
    );
    if (job.engine !== 'local') throw new Error('cpt: the local engine returned a cluster job');
    const r = job.manifest.result as { validation: Record<string, { before: number; after: number; change: number }>; weights: { first: Record<string, number>; next: Record<string, number> } };
    return {
      result: { ...job.manifest.result, kind: CHECKPOINT_RESULT_KIND, files: job.manifest.artifacts.map((a) => a.name), checkpoint: job.checkpoint, metrics: job.metrics, validation: r.validation, weights: r.weights },
      artifacts: job.manifest.artifacts,
    };
  }
}
