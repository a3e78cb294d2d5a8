/**
 * cpt and sft on the cluster engine: the stage's inputs go onto the shared volume as Megatron-LM
 * indexed datasets with the Hugging Face tokenizer they were tokenized with, one Kubeflow
 * `PyTorchJob` (`pretrain_gpt.py`, rendered by `@xyp/cluster`) is submitted and followed, and its
 * `--save` directory becomes the stage's checkpoint.
 *
 * - cpt trains on the committed shards of the corpus.bucket stage bound to `shards` (`bucket_<L>.bin/
 *   .idx`, copied from the store). With `weights` the shards are first split per category
 *   (`splitBucketsByCategory` of `@xyp/bucketing`) and blended by those weights
 *   (`megatronCategoryBlend`, `--data-path w prefix …`). The job is one mixture stage: the mixture
 *   is not re-set in the job (Megatron reports no per-category loss).
 * - sft tokenizes the validated training conversations (the worker's ingest) in Llama 3's chat
 *   format, one dataset per category, blended by the first-epoch `ratios` (default: each
 *   category's share of the training tokens), for `epochs` passes over the training tokens.
 *
 * `init` is the checkpoint a cluster job wrote (its manifest says `engine: cluster`; a Megatron
 * checkpoint, `latest_checkpointed_iteration.txt`), else `XYP_CLUSTER_BASE_MODEL` (a Megatron
 * checkpoint on the volume), else none (a fresh model of `architecture`). Numbers the contract
 * asks for that Megatron does not report are read from the job's `metrics.json` when it writes
 * them (`validation.<category>.before|after`, `heldOut.<category>.before|after`,
 * `weights.next.<category>`), and are otherwise left empty or absent, never made up.
 */
import { existsSync } from 'node:fs';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { PassThrough } from 'node:stream';
import { dirname, join, posix } from 'node:path';
import { IndexedDatasetWriter, StoreArtifacts, binName, bucketPrefix, categorySlug, idxName, splitBucketsByCategory, type ArtifactSink, type ArtifactWriter } from '@xyp/bucketing';
import { megatronCategoryBlend, type CategorySplit, type MegatronDataEntries } from '@xyp/cluster';
import { Architecture, StageManifest, instanceId, splitInstanceId, type ArtifactEntry, type ParsedPayloadOf } from '@xyp/contracts';
import { StageFailedError, failForGoodIf, readStageJson, type StageContext, type StageOutput } from '@xyp/queue';
import { BYTE, LLAMA3, loadTokenizer, resolveTokenizerPath } from '@xyp/tokenizer';
import type { ClusterTraining } from './cluster-training';
import { clusterCheckpointOf, clusterCheckpointResult, submitClusterJob } from './cluster-stage';

type PerCategoryChange = Record<string, { before: number; after: number; change: number }>;

/**
 * `<prefix>.<category>.before` and `<prefix>.<category>.after` of a job's `metrics.json` (flat
 * numbers) as `{category: {before, after, change}}`; a category with only one of them is left out.
 */
export function perCategoryFromMetrics(metrics: Record<string, number>, prefix: string): PerCategoryChange {
  const out: PerCategoryChange = {};
  const head = `${prefix}.`;
  for (const [key, before] of Object.entries(metrics)) {
    if (!key.startsWith(head) || !key.endsWith('.before')) continue;
    const category = key.slice(head.length, -'.before'.length);
    const after = metrics[`${head}${category}.after`];
    if (category && typeof after === 'number') out[category] = { before, after, change: after - before };
  }
  return out;
}

/** `<prefix>.<category>` of a job's metrics as `{category: value}`; undefined when there is none. */
export function recordFromMetrics(metrics: Record<string, number>, prefix: string): Record<string, number> | undefined {
  const head = `${prefix}.`;
  const entries = Object.entries(metrics).filter(([key]) => key.startsWith(head) && key.length > head.length);
  return entries.length > 0 ? Object.fromEntries(entries.map(([key, value]) => [key.slice(head.length), value])) : undefined;
}

/**
 * Files written onto the shared volume under `inputs/<runId>/<stage>/<dir>/` through
 * `ClusterTraining.stageInput`, each streamed as it is written (a `PassThrough` into the volume's
 * write, with its back-pressure: a file is never held whole). In dry run nothing is written; the
 * paths are still those a submission uses.
 */
class VolumeSink implements ArtifactSink {
  private readonly paths = new Map<string, string>();

  constructor(
    private readonly cluster: ClusterTraining,
    private readonly runId: string,
    private readonly stage: string,
    private readonly dir: string,
  ) {}

  async create(name: string): Promise<ArtifactWriter> {
    const relative = `${this.dir}/${name}`;
    if (this.cluster.dryRun) {
      return {
        write: async () => undefined,
        close: async () => void this.paths.set(name, await this.cluster.stageInput(this.runId, this.stage, relative, Buffer.alloc(0))),
        abort: async () => undefined,
      };
    }
    const body = new PassThrough();
    const written = this.cluster.stageInput(this.runId, this.stage, relative, body);
    // Until close or abort awaits it, a failed write shows as a write that does not drain.
    written.catch(() => undefined);
    return {
      write: async (chunk) => {
        // A failed volume write ends the wait through `written` (the race also handles a later 'drain' rejection).
        if (!body.write(chunk)) await Promise.race([once(body, 'drain'), written]);
      },
      close: async () => {
        body.end();
        this.paths.set(name, await written);
      },
      abort: async () => {
        body.destroy(new Error(`kube: writing ${relative} was aborted`));
        await written.catch(() => undefined);
      },
    };
  }

  /** The directory in the job's pods (`<mount>/inputs/<runId>/<stage>/<dir>`) of the files at its top. */
  where(): string {
    const top = [...this.paths].find(([name]) => !name.includes('/'));
    if (!top) throw new Error(`kube: nothing was written under ${this.dir}`);
    return posix.dirname(top[1]);
  }
}

/**
 * Puts the Hugging Face tokenizer `spec` names (`llama3`: the bundled one; else a `tokenizer.json`
 * path or its directory, readable here) on the volume as `tokenizer/` (`tokenizer.json`, and its
 * `tokenizer_config.json` or a minimal one) and returns the directory (`--tokenizer-model`).
 */
async function tokenizerOnVolume(cluster: ClusterTraining, runId: string, stage: string, spec: string, what: string): Promise<string> {
  if (spec === BYTE) {
    throw new StageFailedError(`${stage}: ${what} tokenizer byte is the local engine's; Megatron-LM needs a Hugging Face tokenizer (pack the corpus with tokenizer llama3 or a tokenizer.json)`, []);
  }
  let path: string;
  try {
    path = resolveTokenizerPath(spec);
  } catch (error) {
    throw new StageFailedError(`${stage}: ${what} tokenizer ${spec}: ${error instanceof Error ? error.message : String(error)} (the trainer must read it to put it on the shared volume)`, []);
  }
  const config = join(dirname(path), 'tokenizer_config.json');
  // In dry run nothing is written, so nothing is read either.
  const read = async (file: string) => (cluster.dryRun ? Buffer.alloc(0) : readFile(file));
  const json = await cluster.stageInput(runId, stage, 'tokenizer/tokenizer.json', await read(path));
  await cluster.stageInput(runId, stage, 'tokenizer/tokenizer_config.json', existsSync(config) ? await read(config) : Buffer.from(`${JSON.stringify({ tokenizer_class: 'PreTrainedTokenizerFast' })}\n`));
  return posix.dirname(json);
}

/** `data.megatron` for per-category weights (`megatronCategoryBlend`); a weight it cannot place fails the stage for good, naming `slot`. */
function blend(stage: string, slot: string, weights: Record<string, number>, split: CategorySplit, mountPrefix: string, keep: ArtifactEntry[] = []): MegatronDataEntries {
  try {
    return megatronCategoryBlend(weights, split, { mountPrefix });
  } catch (error) {
    throw new StageFailedError(`${stage}: ${(error instanceof Error ? error.message : String(error)).replace(/^weights/, slot)}`, keep);
  }
}

/** `init` of a Megatron job: the upstream cluster checkpoint, else the service's base model, else none. */
async function megatronInit(cluster: ClusterTraining, context: StageContext, initManifestKey: string | undefined, stage: string): Promise<{ init?: string; manifest?: StageManifest }> {
  if (!initManifestKey) return cluster.settings.baseModel ? { init: cluster.settings.baseModel } : {};
  const { path, manifest } = await clusterCheckpointOf(context.store, initManifestKey, 'init', stage, 'megatron');
  return { init: path, manifest };
}

function optimizer(lr: number, warmupSteps: number) {
  return { lr, warmupSteps, weightDecay: 0.1, clipNorm: 1 };
}

/**
 * cpt on the cluster: the bound corpus.bucket stage's shards (every non-empty bucket, or
 * `buckets`) onto the volume, blended by `weights` when bound, one Megatron job of `steps`
 * iterations; the result says `engine: cluster` and where the checkpoint is.
 */
export async function trainCausalLmOnCluster(cluster: ClusterTraining, payload: ParsedPayloadOf<'cpt'>, stage: string, context: StageContext): Promise<StageOutput<'cpt'>> {
  const shards = StageManifest.parse(JSON.parse((await context.store.getObject(payload.shardsManifestKey)).toString('utf8')));
  const shardsId = instanceId(shards.stage, shards.instance);
  if (splitInstanceId(shards.stage).stage !== 'corpus.bucket') throw new StageFailedError(`${stage}: shards: ${shardsId} is not a corpus.bucket stage`, []);
  const bucketed = shards.result as { tokenizer?: unknown; sequencesPerBucket?: unknown };
  const perBucket = (bucketed.sequencesPerBucket ?? {}) as Record<string, number>;
  const nonEmpty = Object.keys(perBucket).map(Number).filter((length) => perBucket[String(length)] > 0).sort((a, b) => a - b);
  const buckets = payload.buckets ?? nonEmpty;
  const missing = buckets.filter((length) => !nonEmpty.includes(length));
  if (missing.length > 0) throw new StageFailedError(`${stage}: buckets: ${shardsId} has no packed sequences of length ${missing.join(', ')} (it has ${nonEmpty.join(', ') || 'none'})`, []);
  if (buckets.length === 0) throw new StageFailedError(`${stage}: shards: ${shardsId} packed no sequences`, []);
  const byName = Object.fromEntries(shards.artifacts.map((a) => [a.name, a]));
  const tokenizerSpec = typeof bucketed.tokenizer === 'string' ? bucketed.tokenizer : LLAMA3;

  const { init } = await megatronInit(cluster, context, payload.initManifestKey, stage);
  const weights = payload.weightsKey ? await readStageJson<Record<string, number>>(context.store, payload.weightsKey, 'weights') : undefined;
  if (payload.configKey) context.log(`${stage}: config: the mixture controller's settings are not used on the cluster (one Megatron job, no per-category loss to re-set the weights from)`);
  if (payload.stages > 1) context.log(`${stage}: stages ${payload.stages}: the cluster runs one Megatron job of ${payload.steps} iterations on the first-stage mixture; the weights are not re-set between stages`);

  const tokenizer = await tokenizerOnVolume(cluster, payload.runId, stage, tokenizerSpec, `shards ${shardsId}:`);
  let megatron: MegatronDataEntries;
  if (weights) {
    // Megatron blends datasets, not categories: one dataset per (bucket, category), then the blend.
    const sink = new VolumeSink(cluster, payload.runId, stage, 'categories');
    const split = await failForGoodIf(
      () => splitBucketsByCategory(new StoreArtifacts(context.store, shards.runId, shardsId, byName), sink, { progress: (line) => context.log(line) }),
      (error) => error instanceof Error && /manifest\.json|no artifact named/.test(error.message),
    );
    const chosen: CategorySplit = Object.fromEntries(
      Object.entries(split.index).map(([category, entry]) => [category, { buckets: Object.fromEntries(Object.entries(entry.buckets).filter(([length]) => buckets.includes(Number(length)))) }]),
    );
    megatron = blend(stage, 'weights', weights, chosen, sink.where());
  } else {
    megatron = [];
    for (const length of buckets) {
      const prefix = bucketPrefix(length);
      let path = '';
      for (const name of [binName(prefix), idxName(prefix)]) {
        const entry = byName[name];
        if (!entry) throw new StageFailedError(`${stage}: shards: ${shardsId} lists no ${name}`, []);
        path = await cluster.stageInput(payload.runId, stage, `shards/${name}`, cluster.dryRun ? Buffer.alloc(0) : await context.store.getObjectStream(entry.key));
      }
      megatron.push({ prefix: path.slice(0, -'.idx'.length) });
    }
  }

  const job = await submitClusterJob(cluster, context, payload.runId, stage, (control) =>
    cluster.engineFor(context.store).trainCausalLm(
      {
        runId: payload.runId,
        stage,
        steps: payload.steps,
        batchSize: payload.batchSize,
        seed: payload.seed,
        ...(init ? { init } : {}),
        architecture: payload.architecture,
        optimizer: optimizer(payload.lr, Math.min(10, Math.floor(payload.steps / 10))),
        data: { megatron },
        tokenizer,
        resources: { ...cluster.settings.resources },
      },
      control,
    ),
  );
  const next = recordFromMetrics(job.metrics, 'weights.next');
  return {
    result: {
      ...clusterCheckpointResult(job),
      validation: perCategoryFromMetrics(job.metrics, 'validation'),
      weights: { first: weights ?? {}, ...(next ? { next } : {}) },
      tokenizer: tokenizerSpec,
      architecture: payload.architecture,
      data: megatron,
      mixtureStages: 1,
    },
    artifacts: job.manifest.artifacts,
  };
}

/** One validated training conversation (`SftConversation` of `@xyp/training-data`, as the worker ingested it). */
export interface SftClusterConversation {
  category: string;
  messages: readonly { role: string; content: string }[];
}

/** What the sft worker's ingest produced before training: the training side, its counts, and what it committed. */
export interface SftIngested {
  train: readonly SftClusterConversation[];
  input: { lines: number; accepted: number; rejected: number; duplicates: number; train: number; heldOut: number };
  /** `train.jsonl`, `held-out.jsonl`, `rejects.jsonl` as the worker put them; listed with the checkpoint's files. */
  artifacts: ArtifactEntry[];
}

/**
 * A conversation in Llama 3's chat format: what the chat template of the bundled tokenizer's
 * `tokenizer_config.json` renders (`<|begin_of_text|>`, then per message `<|start_header_id|>role
 * <|end_header_id|>\n\n` + trimmed content + `<|eot_id|>`), without the trailing generation prompt.
 */
export function llama3ChatText(messages: readonly { role: string; content: string }[]): string {
  return `<|begin_of_text|>${messages.map((m) => `<|start_header_id|>${m.role}<|end_header_id|>\n\n${m.content.trim()}<|eot_id|>`).join('')}`;
}

/**
 * sft on the cluster: the training conversations tokenized (Llama 3 chat format, `<|end_of_text|>`
 * after each) into one Megatron dataset per category on the volume, blended by the first-epoch
 * ratios, one `--finetune` job of `⌈epochs × tokens per epoch / (batchSize × context)⌉`
 * iterations (a Megatron sample is `context` tokens; `examplesPerEpoch` conversations of the mean
 * length make an epoch when given, else every training token).
 */
export async function trainSftOnCluster(cluster: ClusterTraining, payload: ParsedPayloadOf<'sft'>, stage: string, context: StageContext, ingested: SftIngested): Promise<StageOutput<'sft'>> {
  const { init, manifest: initManifest } = await megatronInit(cluster, context, payload.initManifestKey, stage);
  const upstream = (initManifest?.result ?? {}) as { tokenizer?: unknown; architecture?: unknown };
  const tokenizerSpec = typeof upstream.tokenizer === 'string' ? upstream.tokenizer : LLAMA3;
  if (tokenizerSpec !== LLAMA3) {
    throw new StageFailedError(`${stage}: init: ${payload.initManifestKey} was trained with tokenizer ${tokenizerSpec}; sft on the cluster writes conversations in Llama 3's chat format and supports the llama3 tokenizer only`, ingested.artifacts);
  }
  // With an upstream cluster checkpoint its shape is the model's; Megatron's flags must match it.
  const recorded = Architecture.safeParse(upstream.architecture);
  const architecture = recorded.success && upstream.architecture !== undefined ? recorded.data : payload.architecture;
  const ratios = payload.ratiosKey ? await readStageJson<Record<string, number>>(context.store, payload.ratiosKey, 'ratios') : undefined;
  if (payload.configKey) context.log(`${stage}: config: the mixture controller's settings are not used on the cluster (one Megatron job; the ratios are not re-set between epochs)`);
  if (ingested.train.length === 0) throw new StageFailedError(`${stage}: no training conversation left after the ingest`, ingested.artifacts);

  const tok = await loadTokenizer(LLAMA3);
  if (tok.eosId === null) throw new Error(`${stage}: tokenizer ${LLAMA3} has no end-of-text id`);
  const byCategory = new Map<string, SftClusterConversation[]>();
  for (const c of ingested.train) {
    const list = byCategory.get(c.category);
    if (list) list.push(c);
    else byCategory.set(c.category, [c]);
  }
  const sink = new VolumeSink(cluster, payload.runId, stage, 'data');
  const split: CategorySplit = {};
  const slugs = new Map<string, string>();
  let tokens = 0;
  for (const category of [...byCategory.keys()].sort()) {
    const slug = categorySlug(category);
    if (slugs.has(slug)) throw new StageFailedError(`${stage}: categories ${JSON.stringify(slugs.get(slug))} and ${JSON.stringify(category)} have the same file name slug ${slug}`, ingested.artifacts);
    slugs.set(slug, category);
    const prefix = `sft.cat-${slug}`;
    const writer = await IndexedDatasetWriter.create(sink, prefix, 'int32', { hash: false });
    const conversations = byCategory.get(category) ?? [];
    for (let at = 0; at < conversations.length; at += 256) {
      const batch = conversations.slice(at, at + 256);
      for (const ids of await tok.encodeBatch(batch.map((c) => llama3ChatText(c.messages)), { appendId: tok.eosId })) {
        writer.addSequence(ids);
        writer.endDocument();
      }
      await writer.drain();
    }
    const summary = await writer.close();
    tokens += summary.tokens;
    split[category] = { buckets: { [String(architecture.context)]: { prefix, documents: summary.documents, sequences: summary.sequences, tokens: summary.tokens } } };
  }
  // Default ratios: each category's share of the training tokens (what an unweighted job would draw).
  const first = ratios ?? Object.fromEntries(Object.entries(split).map(([category, entry]) => [category, Object.values(entry.buckets)[0].tokens / tokens]));
  const megatron = blend(stage, 'ratios', first, split, sink.where(), ingested.artifacts);
  const tokensPerEpoch = payload.examplesPerEpoch ? (payload.examplesPerEpoch * tokens) / ingested.train.length : tokens;
  const steps = Math.max(1, Math.ceil((payload.epochs * tokensPerEpoch) / (payload.batchSize * architecture.context)));
  context.log(`${stage}: ${ingested.train.length} conversations, ${tokens} tokens in ${byCategory.size} categories; ${payload.epochs} epochs of ${Math.round(tokensPerEpoch)} tokens = ${steps} iterations of ${payload.batchSize} × ${architecture.context} tokens`);
  const tokenizer = await tokenizerOnVolume(cluster, payload.runId, stage, LLAMA3, 'sft');

  const job = await submitClusterJob(
    cluster,
    context,
    payload.runId,
    stage,
    (control) =>
      cluster.engineFor(context.store).trainSft(
        {
          runId: payload.runId,
          stage,
          steps,
          batchSize: payload.batchSize,
          seed: payload.seed,
          ...(init ? { init } : {}),
          architecture,
          optimizer: optimizer(payload.lr, 5),
          data: { megatron },
          tokenizer,
          resources: { ...cluster.settings.resources },
        },
        control,
      ),
    ingested.artifacts,
  );
  return {
    result: {
      ...clusterCheckpointResult(job),
      heldOut: perCategoryFromMetrics(job.metrics, 'heldOut'),
      // One job: the ratios it trained with are its first and its last epoch's.
      ratios: { first, last: first },
      input: ingested.input,
      tokenizer: LLAMA3,
      architecture,
      data: megatron,
      steps,
    },
    artifacts: [...job.manifest.artifacts, ...ingested.artifacts],
  };
}
