import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Inject } from '@nestjs/common';
import { Processor } from '@nestjs/bullmq';
import { CHECKPOINT_RESULT_KIND, instanceId, type ArtifactEntry, type ParsedPayloadOf } from '@xyp/contracts';
import { LocalEngine } from '@xyp/local-engine';
import { StageFailedError, StageRuntime, StageWorker, checkpointOf, failForGoodIf, readStageJson, withLocalCopies, type StageContext, type StageOutput } from '@xyp/queue';
import { SFT_FILES, ingestSft, writeSftCollections } from '@xyp/training-data';
import { trainSftOnCluster, type ClusterTraining } from '@xyp/kube';
import { TRAINER_CLUSTER, TRAINER_ENGINE_BACKEND, isInputError, resumable, type TrainerEngineBackend } from './engine-options';

/**
 * sft: validates the conversations (rejects with line numbers), splits them by prompt hash into
 * `train.jsonl` and `held-out.jsonl` (or takes `held_out`), and fine-tunes the policy bound to `init`
 * in epochs whose category ratios the mixture controller re-sets after each epoch
 * (`LocalEngine.trainSft` with `epochs`). Over `maxRejectRatio` rejected lines the stage fails for
 * good with `rejects.jsonl` kept. With `XYP_TRAINING_ENGINE=cluster` the training conversations are
 * tokenized onto the shared volume and fine-tuned in one Megatron-LM PyTorchJob (`trainSftOnCluster`
 * of `@xyp/kube`).
 */
@Processor('sft')
export class SftWorker extends StageWorker<'sft'> {
  readonly stage = 'sft' as const;

  constructor(
    runtime: StageRuntime,
    @Inject(TRAINER_ENGINE_BACKEND) private readonly backend: TrainerEngineBackend,
    @Inject(TRAINER_CLUSTER) private readonly cluster: ClusterTraining | null,
  ) {
    super(runtime);
  }

  protected async execute(payload: ParsedPayloadOf<'sft'>, context: StageContext): Promise<StageOutput<'sft'>> {
    const stage = instanceId(this.stage, context.instance);
    const init = payload.initManifestKey ? (await checkpointOf(context.store, payload.initManifestKey, 'init')).checkpoint : undefined;
    const ratios = payload.ratiosKey ? await readStageJson<Record<string, number>>(context.store, payload.ratiosKey, 'ratios') : undefined;
    const config = payload.configKey ? await readStageJson<Record<string, unknown>>(context.store, payload.configKey, 'config') : undefined;
    const engine = new LocalEngine({ store: context.store, backend: this.backend, onProgress: (line) => context.log(line) });
    const objects: Record<string, string> = { 'input.jsonl': payload.dataKey, ...(payload.heldOutKey ? { 'given-held-out.jsonl': payload.heldOutKey } : {}) };
    return withLocalCopies(context.store, objects, async (paths) => {
      const ingested = await ingestSft(paths['input.jsonl'], { heldOutFraction: payload.heldOutKey ? 0 : payload.heldOutFraction, source: 'sft.jsonl' });
      const dir = join(paths['input.jsonl'], '..', 'collections');
      const files = await writeSftCollections(ingested, dir);
      const artifacts: ArtifactEntry[] = [];
      for (const name of [SFT_FILES.train, SFT_FILES.heldOut, SFT_FILES.rejects]) {
        artifacts.push(await context.store.putObject(payload.runId, stage, name, await readFile(join(dir, name)), 'application/x-ndjson'));
      }
      const c = ingested.counts;
      if (c.lines > 0 && c.rejected / c.lines > payload.maxRejectRatio) {
        throw new StageFailedError(`sft: ${c.rejected} of ${c.lines} lines rejected (${((100 * c.rejected) / c.lines).toFixed(1)}% > max_reject_ratio ${payload.maxRejectRatio}); see rejects.jsonl`, artifacts);
      }
      const input = { lines: c.lines, accepted: c.accepted, rejected: c.rejected, duplicates: c.duplicates, train: c.train, heldOut: c.heldOut };
      if (this.cluster) return trainSftOnCluster(this.cluster, payload, stage, context, { train: ingested.train, input, artifacts });
      let heldOut = files.heldOut;
      if (paths['given-held-out.jsonl']) {
        const given = await ingestSft(paths['given-held-out.jsonl'], { heldOutFraction: 0, source: 'held_out' });
        heldOut = (await writeSftCollections(given, join(dir, 'given'))).train;
      }
      const job = await failForGoodIf(() =>
        engine.trainSft(
          {
            runId: payload.runId,
            stage,
            batchSize: payload.batchSize,
            seed: payload.seed,
            init,
            architecture: payload.architecture,
            optimizer: { lr: payload.lr, warmupSteps: 5, weightDecay: 0.1, clipNorm: 1 },
            data: { jsonl: files.train, heldOut },
            epochs: { count: payload.epochs, examplesPerEpoch: payload.examplesPerEpoch, ratios, config: config ?? {} },
          },
          resumable(context),
        ),
        isInputError,
      );
      if (job.engine !== 'local') throw new Error('sft: the local engine returned a cluster job');
      const r = job.manifest.result as { heldOut: Record<string, { before: number; after: number; change: number }>; ratios: { first: Record<string, number>; last: Record<string, number> } };
      return {
        result: {
          ...job.manifest.result,
          kind: CHECKPOINT_RESULT_KIND,
          files: job.manifest.artifacts.map((a) => a.name),
          checkpoint: job.checkpoint,
          metrics: job.metrics,
          heldOut: r.heldOut,
          ratios: r.ratios,
          input,
        },
        artifacts: [...job.manifest.artifacts, ...artifacts],
      };
    });
  }
}
