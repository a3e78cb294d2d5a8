/**
 * rlhf.ppo on the cluster engine: the round's drawn prompts go onto the shared volume, OpenRLHF's
 * `train_ppo_ray` runs as a KubeRay `RayJob` (rendered by `@xyp/cluster`) from the bound policy
 * against the bound reward model, and its `--save_path` becomes the round's checkpoint.
 *
 * The prompts are drawn by the worker as on the local engine (`drawPrompts` of
 * `@xyp/rlhf-stages`: `rounds × promptsPerRound` of them by the round's subdomain ratios); the job
 * makes one pass (`--num_episodes 1`) over them in rollouts of `promptsPerRound`
 * (`--rollout_batch_size`), so it runs the stage's `rounds` rollouts on the same prompts (OpenRLHF
 * shuffles their order). Policy and reward model must be Hugging Face models a cluster job wrote
 * (`config.json`; OpenRLHF's `--pretrain` / `--reward_pretrain`): a local-engine checkpoint or a
 * Megatron one fails the stage for good. OpenRLHF's KL reference is the starting policy itself.
 */
import type { ArtifactEntry, ParsedPayloadOf } from '@xyp/contracts';
import { StageFailedError, checkpointOf, type StageContext, type StageOutput } from '@xyp/queue';
import type { ClusterTraining } from './cluster-training';
import { clusterCheckpointOf, clusterCheckpointResult, submitClusterJob } from './cluster-stage';

/** The round's inputs as the worker drew them. */
export interface PpoRound {
  /** The drawn prompts in order (`drawPrompts(...).draws`): `rounds × promptsPerRound` of them. */
  draws: readonly { id: string; subdomain: string; prompt: string }[];
  /** Prompts drawn per subdomain (`drawPrompts(...).bySubdomain`). */
  bySubdomain: Record<string, number>;
  /** The round's `ratios.json`. */
  ratios: Record<string, number>;
  kl: number;
}

const jsonl = (rows: readonly unknown[]) => rows.map((row) => JSON.stringify(row)).join('\n') + '\n';

export async function trainPpoOnCluster(cluster: ClusterTraining, payload: ParsedPayloadOf<'rlhf.ppo'>, stage: string, context: StageContext, round: PpoRound): Promise<StageOutput<'rlhf.ppo'>> {
  if (round.draws.length === 0) throw new StageFailedError(`${stage}: prompts: no prompt was drawn`, []);
  const policy = await clusterCheckpointOf(context.store, payload.policyManifestKey, 'policy', stage, 'huggingface');
  const reward = await clusterCheckpointOf(context.store, payload.rewardManifestKey, 'reward', stage, 'huggingface');
  const reference = (await checkpointOf(context.store, payload.referenceManifestKey, 'reference')).checkpoint;
  if (reference !== policy.id) {
    context.log(`${stage}: reference: OpenRLHF's KL reference is the starting policy (--pretrain ${policy.path}); ${reference} is not loaded`);
  }
  const prompts = await cluster.stageInput(payload.runId, stage, 'prompts.jsonl', Buffer.from(jsonl(round.draws.map((d) => ({ prompt: d.prompt })))));
  const files: ArtifactEntry[] = [
    await context.store.putObject(payload.runId, stage, 'ratios.json', `${JSON.stringify({ ratios: round.ratios, kl: round.kl }, null, 2)}\n`, 'application/json'),
    await context.store.putObject(payload.runId, stage, 'drawn.jsonl', jsonl(round.draws.map((d) => ({ id: d.id, subdomain: d.subdomain, prompt: d.prompt }))), 'application/x-ndjson'),
  ];
  const rollouts = Math.ceil(round.draws.length / payload.promptsPerRound);
  context.log(`${stage}: ${round.draws.length} prompts drawn (${Object.entries(round.bySubdomain).map(([s, n]) => `${s} ${n}`).join(', ')}); one episode of ${rollouts} rollouts of ${payload.promptsPerRound} prompts × ${payload.samplesPerPrompt} samples, KL β ${round.kl}`);

  const job = await submitClusterJob(
    cluster,
    context,
    payload.runId,
    stage,
    (control) =>
      cluster.engineFor(context.store).runPpo(
        {
          runId: payload.runId,
          stage,
          policy: policy.path,
          rewardModel: reward.path,
          data: { jsonl: prompts },
          rounds: 1,
          promptsPerRound: payload.promptsPerRound,
          samplesPerPrompt: payload.samplesPerPrompt,
          maxTokens: payload.maxTokens,
          klCoef: round.kl,
          klEstimator: payload.klEstimator,
          temperature: payload.temperature,
          epochs: payload.epochs,
          seed: payload.seed,
          optimizer: { lr: payload.lr, warmupSteps: 0, weightDecay: 0, clipNorm: 1 },
          resources: { ...cluster.settings.resources },
        },
        control,
      ),
    files,
  );
  return {
    result: {
      ...clusterCheckpointResult(job),
      ratios: round.ratios,
      kl: round.kl,
      draws: round.bySubdomain,
      policy: policy.path,
      rewardModel: reward.path,
      reference: policy.path,
    },
    artifacts: [...job.manifest.artifacts, ...files],
  };
}
