/**
 * `xyp train cpt` and `xyp train sft`: the recipe's policy training with the data mixture in the
 * loop, on the local engine (progress on stderr, one JSON object with `--json`).
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import type { CausalLmSpecInput, EngineJob, SftSpecInput } from '@xyp/contracts';
import { newRunId } from '@xyp/engine';
import { renderCptMixturePlan } from '@xyp/cluster';
import { LocalEngine, stageEnd } from '@xyp/local-engine';
import { ingestSft, writeSftCollections } from '@xyp/training-data';
import { exitWithError, printResult, progress } from '../cli-output';
import { fraction, jsonObjectFile, positiveInt as int, positiveNumber as positive } from '../flags';
import { commitCheckpoint, configuredBackend, configuredStore } from '../engine-runtime';
import { SAMPLE_CORPUS, sampleShards } from '../sample-shards';

/** Where the repo's bundled samples are, wherever the command runs from. */
const REPO = resolve(__dirname, '../../../..');
export { SAMPLE_CORPUS };
export const SAMPLE_SFT = join(REPO, 'data/sample/sft.jsonl');

interface ModelOptions {
  steps?: string;
  layers: string;
  width: string;
  heads: string;
  context: string;
  batch: string;
  lr: string;
  seed: string;
  runId?: string;
  init?: string;
  json?: boolean;
}

function withModelOptions(command: Command, defaults: { layers: string; width: string; context: string; batch: string; lr: string }): Command {
  return command
    .option('--layers <n>', 'transformer layers (fresh model)', defaults.layers)
    .option('--width <n>', 'model width (fresh model)', defaults.width)
    .option('--heads <n>', 'attention heads (fresh model)', '4')
    .option('--context <n>', 'model context in tokens (fresh model)', defaults.context)
    .option('--batch <n>', 'sequences per step', defaults.batch)
    .option('--lr <x>', 'peak learning rate', defaults.lr)
    .option('--seed <n>', 'seed of weights, sampling and dropout', '1')
    .option('--run-id <id>', 'run id of the checkpoint')
    .option('--init <checkpoint>', 'start from this checkpoint (ID or directory)')
    .option('--json', 'print one JSON object');
}

function modelSpec(o: ModelOptions, steps: number | undefined) {
  return {
    batchSize: int('batch', o.batch),
    seed: Number(o.seed),
    init: o.init,
    optimizer: { lr: positive('lr', o.lr), warmupSteps: steps === undefined ? 5 : Math.min(10, Math.floor(steps / 10)), weightDecay: 0.1, clipNorm: 1 },
    architecture: { layers: int('layers', o.layers), width: int('width', o.width), heads: int('heads', o.heads), context: int('context', o.context) },
  };
}

function local(job: EngineJob): Extract<EngineJob, { engine: 'local' }> {
  if (job.engine !== 'local') throw new Error('expected a local job');
  return job;
}

const fixed = (x: number) => Number(x.toFixed(4));

interface CptOptions extends ModelOptions {
  engine: string;
  dryRun?: boolean;
  split?: string;
  mountPrefix?: string;
  image?: string;
  namespace: string;
  nodes: string;
  gpusPerNode: string;
  tokenizer?: string;
  sample?: boolean;
  shards?: string;
  buckets?: string;
  stages: string;
  steps: string;
  weights?: string;
  mixtureConfig?: string;
  validationFraction: string;
  validationRows: string;
  evalEvery: string;
  logEvery: string;
}

interface SftOptions extends ModelOptions {
  sample?: boolean;
  input?: string;
  heldOut?: string;
  heldOutFraction: string;
  epochs: string;
  examplesPerEpoch?: string;
  ratios?: string;
  mixtureConfig?: string;
}

/**
 * The cluster path of `xyp train cpt`: the first mixture stage's Megatron-LM PyTorchJob over the
 * per-category datasets of a split (`renderCptMixturePlan`), its weights from `--weights` or the
 * split's token shares. Later stages' weights come from per-category evaluation of each stage's
 * checkpoint, which the cluster path does not run (see libs/cluster/README.md).
 */
function clusterCpt(o: CptOptions): void {
  if (!o.dryRun) throw new Error('--engine cluster needs --dry-run: submitting jobs is not built; the manifests are printed instead');
  if (!o.split || !o.mountPrefix) throw new Error('--engine cluster needs --split (categories.json of `xyp corpus split-categories`) and --mount-prefix (its directory on the shared volume)');
  const split = jsonObjectFile('split', o.split) as Record<string, { buckets: Record<string, { tokens: number }> }>;
  const tokens: Record<string, number> = {};
  for (const [c, v] of Object.entries(split)) {
    const n = Object.values(v.buckets).reduce((sum, b) => sum + b.tokens, 0);
    if (n > 0) tokens[c] = n;
  }
  const total = Object.values(tokens).reduce((a, b) => a + b, 0);
  const weights = o.weights ? (jsonObjectFile('weights', o.weights) as Record<string, number>) : Object.fromEntries(Object.entries(tokens).map(([c, n]) => [c, n / total]));
  const steps = int('steps', o.steps);
  const stages = int('stages', o.stages);
  const plan = renderCptMixturePlan(
    {
      runId: o.runId ?? newRunId('cpt'),
      stage: 'cpt',
      ...modelSpec(o, steps),
      tokenizer: o.tokenizer,
      resources: { namespace: o.namespace, image: o.image, nodes: int('nodes', o.nodes), gpusPerNode: int('gpus-per-node', o.gpusPerNode) },
    },
    { stages: [{ weights, steps: stageEnd(steps, stages, 0) }], split, mountPrefix: o.mountPrefix, totalSteps: steps },
  );
  printResult({ checkpoint: plan.checkpoint, jobs: plan.jobs.map(({ manifest: _m, ...job }) => job), manifests: plan.manifests }, o.json === true, () => plan.yaml.trimEnd());
  process.exit(0);
}

export function registerTrainPolicy(train: Command): void {
  withModelOptions(
    train
      .command('cpt')
      .description('Continued pretraining with the dynamic data mixture in the loop, on packed corpus shards; prints the checkpoint ID, per-category losses and the weights of every stage')
      .option('--sample', 'bucket the bundled sample corpus (data/sample/corpus.jsonl) with the byte tokenizer and train on it')
      .option('--shards <dir|runId>', 'output directory of `xyp corpus bucket`, or a run id (`<runId>` or `<runId>/corpus.bucket#<instance>`) with a committed corpus.bucket stage')
      .option('--buckets <L,...>', 'bucket lengths to read (default: every non-empty bucket)')
      .option('--stages <n>', 'mixture stages: the controller re-sets the weights at each boundary', '3')
      .option('--steps <n>', 'optimiser steps over all stages', '240')
      .option('--weights <file>', 'first-stage weights, JSON {category: weight} (default: token shares)')
      .option('--mixture-config <file>', 'controller settings, JSON (libs/mixture MixtureConfig)')
      .option('--validation-fraction <f>', 'share of packed sequences held out', '0.1')
      .option('--validation-rows <n>', 'validation rows scored per category at each evaluation', '16')
      .option('--eval-every <n>', 'validation loss every n steps', '20')
      .option('--log-every <n>', 'training-loss line per category every n steps', '2')
      .option('--engine <name>', 'local, or cluster (with --dry-run: the Megatron-LM PyTorchJob of the first mixture stage)', 'local')
      .option('--dry-run', 'cluster: print the manifests instead of submitting (the only mode built)')
      .option('--split <categories.json>', 'cluster: the index `xyp corpus split-categories` wrote (per-category Megatron datasets)')
      .option('--mount-prefix <dir>', 'cluster: that split directory on the shared volume')
      .option('--tokenizer <dir>', 'cluster: Hugging Face tokenizer directory (--tokenizer-model)')
      .option('--image <image>', 'cluster: container image with Megatron-LM')
      .option('--namespace <ns>', 'cluster: namespace', 'default')
      .option('--nodes <n>', 'cluster: nodes', '1')
      .option('--gpus-per-node <n>', 'cluster: GPUs per node', '8'),
    { layers: '2', width: '64', context: '256', batch: '8', lr: '3e-3' },
  ).action(async (o: CptOptions) => {
    try {
      if (o.engine === 'cluster') return clusterCpt(o);
      if (o.engine !== 'local') throw new Error(`--engine must be local or cluster, got ${o.engine}`);
      if (o.sample === Boolean(o.shards)) throw new Error('give --sample or --shards (one of them)');
      const steps = int('steps', o.steps);
      let source = o.shards as string;
      if (o.sample) {
        source = await sampleShards(progress);
      }
      const spec: CausalLmSpecInput = {
        runId: o.runId ?? newRunId('cpt'),
        stage: 'cpt',
        steps,
        ...modelSpec(o, steps),
        data: { shards: { source, buckets: o.buckets?.split(',').map((b) => int('buckets', b.trim())) } },
        mixture: {
          stages: int('stages', o.stages),
          weights: o.weights ? (jsonObjectFile('weights', o.weights) as Record<string, number>) : undefined,
          config: o.mixtureConfig ? jsonObjectFile('mixture-config', o.mixtureConfig) : {},
          validationFraction: fraction('validation-fraction', o.validationFraction),
          validationRows: int('validation-rows', o.validationRows),
          evalEvery: int('eval-every', o.evalEvery),
          logEvery: int('log-every', o.logEvery),
        },
      };
      const engine = new LocalEngine({ store: () => configuredStore(), backend: configuredBackend(), onProgress: progress });
      const job = local(await engine.trainCausalLm(spec));
      await commitCheckpoint(engine.store, job);
      const result = job.manifest.result as { validation: Record<string, { before: number; after: number; change: number }>; weights: { first: Record<string, number>; next: Record<string, number> } };
      const out = {
        checkpoint: job.checkpoint,
        ...job.metrics,
        validationLoss: Object.fromEntries(Object.entries(result.validation).map(([c, v]) => [c, { before: fixed(v.before), after: fixed(v.after), change: fixed(v.change) }])),
        weights: result.weights,
        stages: (job.manifest.result as { stages?: unknown }).stages,
        artifacts: job.manifest.artifacts.map((a) => a.name).filter((n) => !n.startsWith('model') && !n.startsWith('optimizer') && !n.endsWith('.bin')),
      };
      printResult(out, o.json === true, () =>
        [
          `checkpoint ${job.checkpoint}: ${job.metrics.steps} steps in ${job.metrics.stages} mixture stages, ${job.metrics.seconds.toFixed(1)} s`,
          ...Object.entries(out.validationLoss).map(([c, v]) => `  ${c.padEnd(24)} validation loss ${v.before.toFixed(4)} → ${v.after.toFixed(4)}   weight ${(result.weights.first[c] ?? 0).toFixed(3)} → ${(result.weights.next[c] ?? 0).toFixed(3)}`),
        ].join('\n'),
      );
      process.exit(0);
    } catch (error) {
      exitWithError(error);
    }
  });

  withModelOptions(
    train
      .command('sft')
      .description('SFT in epochs whose category ratios are re-set from per-category loss after every epoch (loss on assistant tokens only); prints the checkpoint ID, per-category losses and the ratios of every epoch')
      .option('--sample', 'the bundled sample SFT set (data/sample/sft.jsonl)')
      .option('--input <file>', 'chat JSONL {messages: [{role, content}], category}, or {prompt, response} / {instruction, input, output} lines')
      .option('--held-out <file>', 'held-out conversations (default: a split of the input by prompt hash)')
      .option('--held-out-fraction <f>', 'share of the input held out when --held-out is not given', '0.1')
      .option('--epochs <n>', 'epochs', '3')
      .option('--examples-per-epoch <n>', 'conversations drawn per epoch (default: the training set size)')
      .option('--ratios <file>', 'first-epoch ratios, JSON {category: ratio} (default: conversation shares)')
      .option('--mixture-config <file>', 'controller settings, JSON (libs/mixture MixtureConfig)'),
    { layers: '2', width: '64', context: '256', batch: '8', lr: '2e-3' },
  ).action(async (o: SftOptions) => {
    try {
      if (o.sample === Boolean(o.input)) throw new Error('give --sample or --input (one of them)');
      const input = o.sample ? SAMPLE_SFT : (o.input as string);
      if (!existsSync(input)) throw new Error(`input file not found: ${input}`);
      const runId = o.runId ?? newRunId('sft');
      const ingested = await ingestSft(input, { heldOutFraction: o.heldOut ? 0 : fraction('held-out-fraction', o.heldOutFraction), onProgress: (p) => progress(`sft input: ${p.lines} lines read, ${p.accepted} accepted, ${p.rejected} rejected`) });
      const dir = resolve('.xyp/sft', runId);
      await writeSftCollections(ingested, dir);
      let heldOut = join(dir, 'held-out.jsonl');
      if (o.heldOut) {
        const held = await ingestSft(o.heldOut, { heldOutFraction: 0 });
        const heldDir = join(dir, 'given-held-out');
        await writeSftCollections(held, heldDir);
        heldOut = join(heldDir, 'train.jsonl');
      }
      const spec: SftSpecInput = {
        runId,
        stage: 'sft',
        ...modelSpec(o, undefined),
        init: o.init,
        data: { jsonl: join(dir, 'train.jsonl'), heldOut },
        epochs: {
          count: int('epochs', o.epochs),
          examplesPerEpoch: o.examplesPerEpoch === undefined ? undefined : int('examples-per-epoch', o.examplesPerEpoch),
          ratios: o.ratios ? (jsonObjectFile('ratios', o.ratios) as Record<string, number>) : undefined,
          config: o.mixtureConfig ? jsonObjectFile('mixture-config', o.mixtureConfig) : {},
        },
      };
      const engine = new LocalEngine({ store: () => configuredStore(), backend: configuredBackend(), onProgress: progress });
      const job = local(await engine.trainSft(spec));
      await commitCheckpoint(engine.store, job);
      const result = job.manifest.result as { heldOut: Record<string, { before: number; after: number; change: number }>; ratios: { first: Record<string, number>; last: Record<string, number> } };
      const out = {
        checkpoint: job.checkpoint,
        ...job.metrics,
        input: { lines: ingested.counts.lines, accepted: ingested.counts.accepted, rejected: ingested.counts.rejected, duplicates: ingested.counts.duplicates, train: ingested.counts.train, heldOut: ingested.counts.heldOut, rejects: ingested.rejects.slice(0, 10) },
        heldOutLoss: Object.fromEntries(Object.entries(result.heldOut).map(([c, v]) => [c, { before: fixed(v.before), after: fixed(v.after), change: fixed(v.change) }])),
        ratios: result.ratios,
        epochs: (job.manifest.result as { epochs?: unknown }).epochs,
        collections: dir,
      };
      printResult(out, o.json === true, () =>
        [
          `checkpoint ${job.checkpoint}: ${job.metrics.epochs} epochs, ${job.metrics.steps} steps, ${job.metrics.seconds.toFixed(1)} s`,
          ...Object.entries(out.heldOutLoss).map(([c, v]) => `  ${c.padEnd(28)} held-out loss ${v.before.toFixed(4)} → ${v.after.toFixed(4)}   ratio ${(result.ratios.first[c] ?? 0).toFixed(3)} → ${(result.ratios.last[c] ?? 0).toFixed(3)}`),
        ].join('\n'),
      );
      process.exit(0);
    } catch (error) {
      exitWithError(error);
    }
  });
}
