import { dirname } from 'node:path';
import { Inject } from '@nestjs/common';
import { Processor } from '@nestjs/bullmq';
import { UnrecoverableError } from 'bullmq';
import { CHECKPOINT_RESULT_KIND, instanceId, type ParsedPayloadOf } from '@xyp/contracts';
import { LocalEngine, stageJobControl } from '@xyp/local-engine';
import { StageRuntime, StageWorker, checkpointOf, failForGoodIf, withLocalCopies, type StageContext, type StageOutput } from '@xyp/queue';
import { trainPpoOnCluster, type ClusterTraining } from '@xyp/kube';
import { drawPrompts, ppoStage, readRlhfPrompts, readRoundRatios } from '@xyp/rlhf-stages';
import { RLHF_CLUSTER, RLHF_ENGINE_BACKEND, isInputError, type RlhfEngineBackend } from './engine-options';
import { putStageFiles } from './stage-files';

/**
 * rlhf.ppo: a PEI round's PPO (`ppoStage` of `@xyp/rlhf-stages` over `LocalEngine.runPpo`) from the
 * bound policy, against the frozen reference, scored by the UFRM reward model, on the filtered
 * prompts drawn by the round's subdomain ratios, with the round's KL coefficient. Resume
 * checkpoints at PPO round ends are kept on the job, so a retry goes on from the last one. With
 * `XYP_TRAINING_ENGINE=cluster` the same draws go onto the shared volume and OpenRLHF's PPO runs as a
 * RayJob submitted and followed by `@xyp/kube` (`trainPpoOnCluster`).
 */
@Processor('rlhf.ppo')
export class RlhfPpoWorker extends StageWorker<'rlhf.ppo'> {
  readonly stage = 'rlhf.ppo' as const;

  constructor(
    runtime: StageRuntime,
    @Inject(RLHF_ENGINE_BACKEND) private readonly backend: RlhfEngineBackend,
    @Inject(RLHF_CLUSTER) private readonly cluster: ClusterTraining | null,
  ) {
    super(runtime);
  }

  protected async execute(payload: ParsedPayloadOf<'rlhf.ppo'>, context: StageContext): Promise<StageOutput<'rlhf.ppo'>> {
    const stage = instanceId(this.stage, context.instance);
    if (this.cluster) return this.onCluster(this.cluster, payload, stage, context);
    const policy = (await checkpointOf(context.store, payload.policyManifestKey, 'policy')).checkpoint;
    const reference = (await checkpointOf(context.store, payload.referenceManifestKey, 'reference')).checkpoint;
    const rewardModel = (await checkpointOf(context.store, payload.rewardManifestKey, 'reward')).checkpoint;
    const ratiosText = (await context.store.getObject(payload.ratiosKey)).toString('utf8');
    const { ratios, kl } = await failForGoodIf(async () => readRoundRatios(ratiosText, 'ratios'), () => true);
    return withLocalCopies(context.store, { 'prompts.jsonl': payload.promptsKey }, async (paths) => {
      const read = await readRlhfPrompts(paths['prompts.jsonl'], { subdomainPrefix: '' });
      const engine = new LocalEngine({ store: context.store, backend: this.backend, onProgress: (line) => context.log(line) });
      const out = await failForGoodIf(
        () => ppoStage(engine, { runId: payload.runId, stage, policy, reference, rewardModel, prompts: read.prompts, ratios, kl, settings: payload, workDir: dirname(paths['prompts.jsonl']), control: stageJobControl(context) }),
        (error) => isInputError(error) || (error instanceof Error && /ratios: |prompts: /.test(error.message)),
      );
      const { job } = out;
      return {
        result: { ...job.manifest.result, kind: CHECKPOINT_RESULT_KIND, files: job.manifest.artifacts.map((a) => a.name), checkpoint: job.checkpoint, metrics: job.metrics, ratios, kl, draws: out.draws },
        artifacts: [...job.manifest.artifacts, ...(await putStageFiles(context, payload.runId, stage, out.files))],
      };
    });
  }

  /** The round's prompts drawn as `ppoStage` draws them, then the RayJob (`trainPpoOnCluster`). */
  private async onCluster(cluster: ClusterTraining, payload: ParsedPayloadOf<'rlhf.ppo'>, stage: string, context: StageContext): Promise<StageOutput<'rlhf.ppo'>> {
    const ratiosText = (await context.store.getObject(payload.ratiosKey)).toString('utf8');
    const { ratios, kl } = await failForGoodIf(async () => readRoundRatios(ratiosText, 'ratios'), () => true);
    const read = await withLocalCopies(context.store, { 'prompts.jsonl': payload.promptsKey }, (paths) => readRlhfPrompts(paths['prompts.jsonl'], { subdomainPrefix: '' }));
    if (read.prompts.length === 0) throw new UnrecoverableError(`${stage}: prompts: no prompt`);
    const drawn = await failForGoodIf(async () => drawPrompts(read.prompts, ratios, payload.rounds * payload.promptsPerRound, payload.seed), isInputError);
    return trainPpoOnCluster(cluster, payload, stage, context, { draws: drawn.draws, bySubdomain: drawn.bySubdomain, ratios, kl });
  }
}
