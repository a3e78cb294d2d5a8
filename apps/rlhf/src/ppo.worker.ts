import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Inject } from '@nestjs/common';
import { Processor } from '@nestjs/bullmq';
import { UnrecoverableError } from 'bullmq';
import { CHECKPOINT_RESULT_KIND, instanceId, type ParsedPayloadOf } from '@xyp/contracts';
import { LocalEngine, stageJobControl } from '@xyp/local-engine';
import { StageRuntime, StageWorker, checkpointOf, withLocalCopies, type StageContext, type StageOutput } from '@xyp/queue';
import { drawPrompts, ppoLogChart, readRlhfPrompts, readRoundRatios } from '@xyp/rlhf-stages';
import { RLHF_ENGINE_BACKEND, isInputError, type RlhfEngineBackend } from './engine-options';

/**
 * rlhf.ppo: a PEI round's PPO (`LocalEngine.runPpo`) from the bound policy, against the frozen
 * reference, scored by the UFRM reward model, on the filtered prompts drawn by the round's
 * subdomain ratios (`drawPrompts`), with the round's KL coefficient. Resume checkpoints at PPO
 * round ends are kept on the job, so a retry goes on from the last one.
 */
@Processor('rlhf.ppo')
export class RlhfPpoWorker extends StageWorker<'rlhf.ppo'> {
  readonly stage = 'rlhf.ppo' as const;

  constructor(
    runtime: StageRuntime,
    @Inject(RLHF_ENGINE_BACKEND) private readonly backend: RlhfEngineBackend,
  ) {
    super(runtime);
  }

  protected async execute(payload: ParsedPayloadOf<'rlhf.ppo'>, context: StageContext): Promise<StageOutput<'rlhf.ppo'>> {
    const stage = instanceId(this.stage, context.instance);
    const policy = (await checkpointOf(context.store, payload.policyManifestKey, 'policy')).checkpoint;
    const reference = (await checkpointOf(context.store, payload.referenceManifestKey, 'reference')).checkpoint;
    const rewardModel = (await checkpointOf(context.store, payload.rewardManifestKey, 'reward')).checkpoint;
    const { ratios, kl } = readRoundRatios((await context.store.getObject(payload.ratiosKey)).toString('utf8'), 'ratios');
    return withLocalCopies(context.store, { 'prompts.jsonl': payload.promptsKey }, async (paths) => {
      const read = await readRlhfPrompts(paths['prompts.jsonl'], { subdomainPrefix: '' });
      if (read.prompts.length === 0) throw new UnrecoverableError(`rlhf.ppo: prompts: no prompt (${read.lines} lines, ${read.rejects.length} rejected)`);
      let drawn;
      try {
        drawn = drawPrompts(read.prompts, ratios, payload.rounds * payload.promptsPerRound, payload.seed);
      } catch (error) {
        throw new UnrecoverableError(error instanceof Error ? error.message : String(error));
      }
      const drawnFile = join(paths['prompts.jsonl'], '..', 'drawn.jsonl');
      await writeFile(drawnFile, drawn.draws.map((p) => JSON.stringify({ prompt: p.prompt })).join('\n') + '\n');
      const engine = new LocalEngine({ store: context.store, backend: this.backend, onProgress: (line) => context.log(line) });
      const job = await engine
        .runPpo(
          {
            runId: payload.runId,
            stage,
            policy,
            reference,
            rewardModel,
            data: { jsonl: drawnFile, ordered: true },
            rounds: payload.rounds,
            promptsPerRound: payload.promptsPerRound,
            samplesPerPrompt: payload.samplesPerPrompt,
            maxTokens: payload.maxTokens,
            klCoef: kl,
            klEstimator: payload.klEstimator,
            temperature: payload.temperature,
            epochs: payload.epochs,
            seed: payload.seed,
            optimizer: { lr: payload.lr, warmupSteps: 0, weightDecay: 0, clipNorm: 1 },
          },
          stageJobControl(context),
        )
        .catch((error: unknown) => {
          if (isInputError(error)) throw new UnrecoverableError(error.message);
          throw error;
        });
      if (job.engine !== 'local') throw new Error('rlhf.ppo: the local engine returned a cluster job');
      const log = ((job.manifest.result as { rounds?: unknown[] }).rounds ?? []) as Record<string, unknown>[];
      const extra = [
        await context.store.putObject(payload.runId, stage, 'ratios.json', `${JSON.stringify({ ratios, kl }, null, 2)}\n`, 'application/json'),
        await context.store.putObject(payload.runId, stage, 'ppo-log.jsonl', log.map((r) => JSON.stringify(r)).join('\n') + '\n', 'application/x-ndjson'),
        await context.store.putObject(payload.runId, stage, 'ppo.png', Buffer.from(ppoLogChart(log, stage)), 'image/png'),
      ];
      return {
        result: { ...job.manifest.result, kind: CHECKPOINT_RESULT_KIND, files: job.manifest.artifacts.map((a) => a.name), checkpoint: job.checkpoint, metrics: job.metrics, ratios, kl, draws: drawn.bySubdomain },
        artifacts: [...job.manifest.artifacts, ...extra],
      };
    });
  }
}
