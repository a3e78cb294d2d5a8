import type { Command } from 'commander';
import { ClusterEngine } from '@xyp/cluster';
import type { CausalLmSpecInput, EngineJob } from '@xyp/contracts';
import { newRunId } from '@xyp/engine';
import { LocalEngine } from '@xyp/local-engine';
import { exitWithError, printResult, progress } from '../cli-output';
import { positiveInt as int, positiveNumber as positive } from '../flags';
import { commitCheckpoint, configuredBackend, configuredStore } from '../engine-runtime';
import { registerTrainPolicy } from './train-policy';

interface LmOptions {
  input?: string;
  shards?: string;
  bucket?: string;
  maxSequences?: string;
  steps: string;
  layers: string;
  width: string;
  heads: string;
  context: string;
  batch: string;
  lr?: string;
  seed: string;
  runId?: string;
  init?: string;
  engine: 'local' | 'cluster';
  dryRun?: boolean;
  dataPath?: string;
  tokenizer?: string;
  image?: string;
  namespace: string;
  nodes: string;
  gpusPerNode: string;
  tensorParallel: string;
  pipelineParallel: string;
  microBatch: string;
  json?: boolean;
}

/** `--data-path a,b` or `--data-path 0.7:a,0.3:b` (Megatron blend weights). */
function megatronData(value: string): { prefix: string; weight?: number }[] {
  return value.split(',').map((item) => {
    const at = item.indexOf(':');
    if (at < 0) return { prefix: item };
    return { weight: positive('data-path weight', item.slice(0, at)), prefix: item.slice(at + 1) };
  });
}

function human(job: EngineJob): string {
  if (job.engine === 'cluster') return job.yaml.trimEnd();
  const m = job.metrics;
  return `checkpoint ${job.checkpoint}: ${m.steps} steps, loss ${m.initialLoss.toFixed(4)} → ${m.finalLoss.toFixed(4)}, ${m.params} params, ${m.seconds.toFixed(1)} s`;
}

/**
 * `xyp train lm`: a small causal LM on a corpus JSONL or on the corpus stage's packed shards, saved
 * as a checkpoint in the store; or, with `--engine cluster --dry-run`, the Megatron PyTorchJob.
 */
export function registerTrain(parent: Command): void {
  const train = parent.command('train').description('Train models with the local engine, or render the cluster job');
  registerTrainPolicy(train);
  train
    .command('lm')
    .description('Causal LM (continued pretraining) on a corpus JSONL of {id, text, category} lines or on packed shards of `xyp corpus bucket`; prints the checkpoint ID')
    .option('--input <file>', 'corpus JSONL (local engine, byte tokenizer)')
    .option('--shards <dir|runId>', 'local engine, instead of --input: output directory of `xyp corpus bucket`, or the run id of a committed corpus.bucket stage in the store; the model takes the vocabulary of the tokenizer that packed them')
    .option('--bucket <L>', 'with --shards: the bucket length to train on (needed when the run has several non-empty buckets); rows are min(L, context + 1) tokens')
    .option('--max-sequences <n>', 'with --shards: read only the first n packed sequences of the bucket')
    .option('--steps <n>', 'optimiser steps', '60')
    .option('--layers <n>', 'transformer layers', '2')
    .option('--width <n>', 'model width', '64')
    .option('--heads <n>', 'attention heads', '4')
    .option('--context <n>', 'model context: tokens per training row (bytes with --input; packed sequences of --shards longer than context + 1 are cut into several rows)', '128')
    .option('--batch <n>', 'rows per step', '8')
    .option('--lr <x>', 'peak learning rate (default: 3e-3 local, for the small byte-level model; 1e-5 cluster, a continued-pretraining rate for a large model)')
    .option('--seed <n>', 'seed of weights, data order and dropout', '1')
    .option('--run-id <id>', 'run id of the checkpoint (default: lm-<time>-<random>)')
    .option('--init <checkpoint>', 'continue from this checkpoint (ID or directory; cluster: Megatron --load path)')
    .option('--engine <name>', 'local or cluster', 'local')
    .option('--dry-run', 'cluster engine: print the manifests instead of submitting (the only mode built)')
    .option('--data-path <prefixes>', 'cluster: Megatron shard prefixes, comma-separated, optionally weight:prefix')
    .option('--tokenizer <dir>', 'cluster: Hugging Face tokenizer directory (--tokenizer-model)')
    .option('--image <image>', 'cluster: container image with Megatron-LM')
    .option('--namespace <ns>', 'cluster: namespace', 'default')
    .option('--nodes <n>', 'cluster: nodes', '1')
    .option('--gpus-per-node <n>', 'cluster: GPUs per node', '8')
    .option('--tensor-parallel <n>', 'cluster: tensor parallel size', '1')
    .option('--pipeline-parallel <n>', 'cluster: pipeline parallel size', '1')
    .option('--micro-batch <n>', 'cluster: sequences per GPU per forward pass', '1')
    .option('--json', 'print one JSON object')
    .action(async (o: LmOptions) => {
      try {
        if (o.engine !== 'local' && o.engine !== 'cluster') throw new Error(`--engine must be local or cluster, got ${o.engine}`);
        const steps = int('steps', o.steps);
        const spec: CausalLmSpecInput = {
          runId: o.runId ?? newRunId('lm'),
          steps,
          batchSize: int('batch', o.batch),
          microBatchSize: int('micro-batch', o.microBatch),
          seed: Number(o.seed),
          init: o.init,
          optimizer: { lr: o.lr ? positive('lr', o.lr) : o.engine === 'cluster' ? 1e-5 : 3e-3, warmupSteps: Math.min(10, Math.floor(steps / 10)), weightDecay: 0.1, clipNorm: 1 },
          architecture: { layers: int('layers', o.layers), width: int('width', o.width), heads: int('heads', o.heads), context: int('context', o.context) },
          data: {},
        };
        let job: EngineJob;
        if (o.engine === 'cluster') {
          if (!o.dryRun) throw new Error('--engine cluster needs --dry-run: submitting jobs is not built; the manifests are printed instead');
          if (!o.dataPath) throw new Error('--engine cluster needs --data-path (Megatron shard prefixes on the shared volume)');
          spec.data = { megatron: megatronData(o.dataPath) };
          spec.tokenizer = o.tokenizer;
          spec.resources = {
            namespace: o.namespace,
            image: o.image,
            nodes: int('nodes', o.nodes),
            gpusPerNode: int('gpus-per-node', o.gpusPerNode),
            tensorParallel: int('tensor-parallel', o.tensorParallel),
            pipelineParallel: int('pipeline-parallel', o.pipelineParallel),
          };
          job = await new ClusterEngine({ dryRun: true }).trainCausalLm(spec);
        } else {
          if (o.input && o.shards) throw new Error('give --input or --shards, not both');
          if (o.shards) {
            spec.data = {
              shards: {
                source: o.shards,
                bucket: o.bucket === undefined ? undefined : int('bucket', o.bucket),
                maxSequences: o.maxSequences === undefined ? undefined : int('max-sequences', o.maxSequences),
              },
            };
          } else {
            if (!o.input) throw new Error('--input or --shards is required: a corpus JSONL of {id, text, category} lines (e.g. data/sample/corpus.jsonl), or the output of `xyp corpus bucket`');
            if (o.bucket !== undefined || o.maxSequences !== undefined) throw new Error('--bucket and --max-sequences go with --shards');
            spec.data = { jsonl: o.input };
          }
          const engine = new LocalEngine({ store: () => configuredStore(), backend: configuredBackend(), onProgress: progress });
          job = await engine.trainCausalLm(spec);
          if (job.engine === 'local') await commitCheckpoint(engine.store, job);
        }
        printResult(job.engine === 'local' ? { checkpoint: job.checkpoint, ...job.metrics } : job, o.json === true, () => human(job));
        process.exit(0);
      } catch (error) {
        exitWithError(error);
      }
    });
}
