import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BUCKET_STAGE, MemoryStore, StoreArtifacts, bucketCorpus, bucketStageResult, inProcessRunner, parseIndex, tokenizerRef } from '@xyp/bucketing';
import { CHECKPOINT_RESULT_KIND, CptPayload, STAGES, SftPayload, manifestKey } from '@xyp/contracts';
import { parsePackConfig } from '@xyp/packing';
import type { StageContext } from '@xyp/queue';
import { LocalDirectoryStore } from '@xyp/storage';
import { loadTokenizer, type TextTokenizer } from '@xyp/tokenizer';
import { UnrecoverableError } from 'bullmq';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ClusterTraining } from './cluster-training';
import { llama3ChatText, trainCausalLmOnCluster, trainSftOnCluster, type SftIngested } from './cpt-sft-job';
import { startFakeKubeApi, type FakeKubeApi } from './testing/fake-kube-api';

const resources = { namespace: 'xuanyuan', image: 'registry.example/megatron:24.09', gpusPerNode: 8, volumeClaim: 'xyp-shared', mountPath: '/data' };
const architecture = { layers: 2, width: 64, heads: 4, context: 128 };
const WORDS = ['rates', 'rose', 'bond', 'yields', 'fell', 'the', 'central', 'bank', 'equity', 'market'];
const docs = Array.from({ length: 24 }, (_, i) => ({
  id: `d${i}`,
  text: Array.from({ length: 5 + ((i * 7) % 30) }, (_, w) => WORDS[(i + w * 3) % WORDS.length]).join(' '),
  category: i % 3 === 0 ? 'news' : 'finance',
}));
const tick = (ms = 60) => new Promise((r) => setTimeout(r, ms));

/** The error a stage fails with, checked to be one BullMQ does not retry (`UnrecoverableError`, or its `StageFailedError`). */
async function failsForGood(work: Promise<unknown>): Promise<Error & { artifacts?: { name: string; key: string }[] }> {
  const error = await work.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(UnrecoverableError);
  return error as Error & { artifacts?: { name: string; key: string }[] };
}

describe('cpt and sft on the cluster engine (the trainer with XYP_TRAINING_ENGINE=cluster)', () => {
  let tok: TextTokenizer;
  let dir: string;
  let store: LocalDirectoryStore;
  let fake: FakeKubeApi;
  let lines: string[];
  let controller: AbortController;
  // The parts of a stage context these paths use: the store, the cancel signal and the log.
  const context = () => ({ store, signal: controller.signal, log: (line: string) => lines.push(line) }) as unknown as StageContext;
  const volume = (path: string) => join(dir, 'volume', path);

  beforeAll(async () => {
    tok = await loadTokenizer('llama3');
  });
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'xyp-kube-cpt-'));
    store = new LocalDirectoryStore(join(dir, 'store'));
    fake = await startFakeKubeApi();
    lines = [];
    controller = new AbortController();
    await writeFile(join(dir, 'kubeconfig'), fake.kubeconfig);
  });
  afterEach(async () => {
    await fake.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const submitting = () =>
    ClusterTraining.create({ dryRun: false, kubeconfigPath: join(dir, 'kubeconfig'), resources, baseModel: 'models/llama-3-8b-megatron', volume: { kind: 'directory', root: join(dir, 'volume') } });

  /** A committed corpus.bucket stage of run `runId`: the sample documents packed with Llama 3 into bucket 128. */
  async function bucketed(runId: string): Promise<string> {
    const corpus = join(dir, 'corpus.jsonl');
    await writeFile(corpus, docs.map((d) => JSON.stringify(d)).join('\n') + '\n');
    const config = parsePackConfig({ strategy: 'bfd', bucketLengths: [128], windowLines: 64, windowTokens: 4096, shardLines: 64 });
    const out = new StoreArtifacts(store, runId, BUCKET_STAGE);
    const scratch = new MemoryStore();
    const { manifest } = await bucketCorpus({ input: corpus, config, tokenizer: tokenizerRef('llama3', tok, config), out, scratch, runShard: inProcessRunner(tok, scratch) });
    await store.commitManifest({ version: 1, runId, stage: BUCKET_STAGE, committedAt: new Date().toISOString(), artifacts: Object.values(out.written()), result: bucketStageResult(manifest) });
    return manifestKey(runId, BUCKET_STAGE);
  }

  /** A committed checkpoint manifest of `stage`: a cluster job's (with `marker` among its files) or, with `engine` local, the local engine's. */
  async function checkpoint(runId: string, stage: string, marker: string, result: Record<string, unknown> = {}): Promise<string> {
    const file = await store.putObject(runId, stage, marker, '1');
    await store.commitManifest({ version: 1, runId, stage, committedAt: new Date().toISOString(), artifacts: [file], result: { kind: CHECKPOINT_RESULT_KIND, files: [marker], metrics: {}, ...result } });
    return manifestKey(runId, stage);
  }

  /** Plays the training operator: the job runs, logs, writes its checkpoint and metrics under --save, succeeds. */
  async function succeed(name: string, save: string, metrics: Record<string, unknown>) {
    fake.setStatus('pytorchjobs', 'xuanyuan', name, { conditions: [{ type: 'Running', status: 'True', reason: 'PyTorchJobRunning' }] });
    await tick(150);
    const [pod] = fake.pods();
    fake.log('xuanyuan', pod.name, ' iteration        1/      40 | lm loss: 1.17E+01', ' iteration       40/      40 | lm loss: 6.02E+00');
    await mkdir(volume(`${save}/iter_0000040`), { recursive: true });
    await writeFile(volume(`${save}/latest_checkpointed_iteration.txt`), '40');
    await writeFile(volume(`${save}/iter_0000040/model_optim_rng.pt`), 'weights');
    await writeFile(volume(`${save}/metrics.json`), JSON.stringify(metrics));
    await tick();
    fake.setStatus('pytorchjobs', 'xuanyuan', name, { conditions: [{ type: 'Succeeded', status: 'True', reason: 'PyTorchJobSucceeded', message: 'PyTorchJob xuanyuan/xy3-cpt is successfully completed.' }] });
    fake.endLog('xuanyuan', pod.name);
  }

  it('cpt: splits the shards per category onto the volume, submits the weighted PyTorchJob, follows it and commits its checkpoint and metrics', async () => {
    const cluster = await submitting();
    const shardsManifestKey = await bucketed('xy3-cpt');
    const weightsKey = (await store.putObject('xy3-cpt', 'corpus.mix', 'weights.json', JSON.stringify({ finance: 0.25, news: 0.75 }))).key;
    const payload = CptPayload.parse({ runId: 'xy3-cpt', shardsManifestKey, weightsKey, steps: 40, batchSize: 8, architecture });
    const running = trainCausalLmOnCluster(cluster, payload, 'cpt', context());

    const object = await fake.waitFor('pytorchjobs', 'xuanyuan', 'xy3-cpt-cpt');
    const command = (object.spec as { pytorchReplicaSpecs: { Master: { template: { spec: { containers: { command: string[] }[] } } } } }).pytorchReplicaSpecs.Master.template.spec.containers[0].command;
    const flag = (name: string) => command[command.indexOf(name) + 1];
    const dataPath = command.slice(command.indexOf('--data-path') + 1, command.indexOf('--split'));
    // Weighted blend: finance then news (name order), each weight and its per-category dataset on the volume.
    expect(dataPath).toEqual(['0.25', '/data/inputs/xy3-cpt/cpt/categories/bucket_128.cat-finance', '0.75', '/data/inputs/xy3-cpt/cpt/categories/bucket_128.cat-news']);
    for (const prefix of ['bucket_128.cat-finance', 'bucket_128.cat-news']) {
      const idx = parseIndex(await readFile(volume(`inputs/xy3-cpt/cpt/categories/${prefix}.idx`)));
      expect(idx.sequenceLengths.length).toBeGreaterThan(0);
      expect((await stat(volume(`inputs/xy3-cpt/cpt/categories/${prefix}.bin`))).size).toBeGreaterThan(0);
    }
    expect(JSON.parse(await readFile(volume('inputs/xy3-cpt/cpt/categories/categories.json'), 'utf8'))).toHaveProperty('news.buckets.128');
    // The shards' own tokenizer, with its config, is the job's --tokenizer-model.
    expect(flag('--tokenizer-model')).toBe('/data/inputs/xy3-cpt/cpt/tokenizer');
    expect(JSON.parse(await readFile(volume('inputs/xy3-cpt/cpt/tokenizer/tokenizer_config.json'), 'utf8'))).toMatchObject({ eos_token: '<|end_of_text|>' });
    expect((await stat(volume('inputs/xy3-cpt/cpt/tokenizer/tokenizer.json'))).size).toBeGreaterThan(1_000_000);
    // No init bound: the service's base model; no --finetune for cpt.
    expect(flag('--load')).toBe('/data/models/llama-3-8b-megatron');
    expect(command).not.toContain('--finetune');
    expect(flag('--train-iters')).toBe('40');
    expect(flag('--save')).toBe('/data/checkpoints/xy3-cpt/cpt');

    await succeed('xy3-cpt-cpt', 'checkpoints/xy3-cpt/cpt', { 'lm loss': 6.02, 'validation.news.before': 11.7, 'validation.news.after': 6.5, 'validation.finance.before': 11.6, 'weights.next.news': 0.6, 'weights.next.finance': 0.4 });
    const out = await running;
    expect(out.result).toMatchObject({
      engine: 'cluster',
      kind: 'xyp-engine-checkpoint',
      checkpoint: '/data/checkpoints/xy3-cpt/cpt',
      jobKind: 'causal-lm',
      tokenizer: 'llama3',
      // finance has no `after`: left out rather than made up.
      validation: { news: { before: 11.7, after: 6.5, change: 6.5 - 11.7 } },
      weights: { first: { finance: 0.25, news: 0.75 }, next: { news: 0.6, finance: 0.4 } },
    });
    expect(out.result.metrics['lm loss']).toBe(6.02);
    expect(out.artifacts.map((a) => a.name)).toEqual(['checkpoint/iter_0000040/model_optim_rng.pt', 'checkpoint/latest_checkpointed_iteration.txt', 'checkpoint/metrics.json', 'cluster/job.yaml', 'cluster/status.json']);
    expect((await store.getObject(out.artifacts[0].key)).toString()).toBe('weights');
    expect(lines).toContain(' iteration       40/      40 | lm loss: 6.02E+00');
    expect(lines.some((l) => l.includes('PyTorchJob xuanyuan/xy3-cpt-cpt: condition Succeeded'))).toBe(true);
    expect(lines.some((l) => l.includes('stages 3: the cluster runs one Megatron job'))).toBe(true);
    // What the worker commits is a valid cpt result.
    expect(STAGES.cpt.result.safeParse(out.result).success).toBe(true);
  });

  it('cpt: a volume that refuses the per-category files fails the stage with its error, submits nothing and leaves no stray rejection', async () => {
    // The volume's root is a file: every write under it fails (ENOTDIR) while the split streams into it.
    await writeFile(join(dir, 'not-a-directory'), 'x');
    const cluster = await ClusterTraining.create({ dryRun: false, kubeconfigPath: join(dir, 'kubeconfig'), resources, baseModel: 'models/llama-3-8b-megatron', volume: { kind: 'directory', root: join(dir, 'not-a-directory') } });
    const shardsManifestKey = await bucketed('xy3-cpt-bad');
    const weightsKey = (await store.putObject('xy3-cpt-bad', 'corpus.mix', 'weights.json', JSON.stringify({ finance: 0.25, news: 0.75 }))).key;
    const payload = CptPayload.parse({ runId: 'xy3-cpt-bad', shardsManifestKey, weightsKey, steps: 40, batchSize: 8, architecture });
    const stray: unknown[] = [];
    const onRejection = (reason: unknown) => void stray.push(reason);
    process.on('unhandledRejection', onRejection);
    try {
      await expect(trainCausalLmOnCluster(cluster, payload, 'cpt', context())).rejects.toThrow(/ENOTDIR|ENOENT|EEXIST/);
      await tick(100);
      expect(stray).toEqual([]);
      expect(fake.get('pytorchjobs', 'xuanyuan', 'xy3-cpt-bad-cpt')).toBeUndefined();
      expect(fake.requests.some((r) => r.method === 'POST')).toBe(false);
    } finally {
      process.off('unhandledRejection', onRejection);
    }
  });

  it('cpt without weights: the buckets unweighted, copied byte for byte; with no metrics.json nothing is made up', async () => {
    const cluster = await submitting();
    const shardsManifestKey = await bucketed('xy3-cpt');
    const initManifestKey = await checkpoint('xy3-base', 'cpt', 'checkpoint/latest_checkpointed_iteration.txt', { engine: 'cluster', checkpoint: '/data/checkpoints/xy3-base/cpt' });
    const payload = CptPayload.parse({ runId: 'xy3-cpt', shardsManifestKey, initManifestKey, steps: 20, batchSize: 8, architecture });
    const running = trainCausalLmOnCluster(cluster, payload, 'cpt', context());
    const object = await fake.waitFor('pytorchjobs', 'xuanyuan', 'xy3-cpt-cpt');
    const command = String((object.spec as { pytorchReplicaSpecs: { Master: { template: { spec: { containers: { command: string[] }[] } } } } }).pytorchReplicaSpecs.Master.template.spec.containers[0].command.join(' '));
    expect(command).toContain('--data-path /data/inputs/xy3-cpt/cpt/shards/bucket_128 --split');
    expect(command).toContain('--load /data/checkpoints/xy3-base/cpt');
    const shards = (await store.readManifest('xy3-cpt', BUCKET_STAGE))!;
    const bin = shards.artifacts.find((a) => a.name === 'bucket_128.bin')!;
    expect(Buffer.compare(await readFile(volume('inputs/xy3-cpt/cpt/shards/bucket_128.bin')), await store.getObject(bin.key))).toBe(0);

    fake.setStatus('pytorchjobs', 'xuanyuan', 'xy3-cpt-cpt', { conditions: [{ type: 'Running', status: 'True' }] });
    await tick(150);
    await mkdir(volume('checkpoints/xy3-cpt/cpt'), { recursive: true });
    await writeFile(volume('checkpoints/xy3-cpt/cpt/latest_checkpointed_iteration.txt'), '20');
    fake.setStatus('pytorchjobs', 'xuanyuan', 'xy3-cpt-cpt', { conditions: [{ type: 'Succeeded', status: 'True', reason: 'PyTorchJobSucceeded' }] });
    fake.endLog('xuanyuan', fake.pods()[0].name);
    const out = await running;
    expect(out.result.validation).toEqual({});
    expect(out.result.weights).toEqual({ first: {} });
    expect(out.result.metrics).toEqual({});
    expect(STAGES.cpt.result.safeParse(out.result).success).toBe(true);
  });

  it("fails for good with the controller's reason when the PyTorchJob fails, and leaves the job for inspection", async () => {
    const cluster = await submitting();
    const payload = CptPayload.parse({ runId: 'xy3-cpt', shardsManifestKey: await bucketed('xy3-cpt'), steps: 20, architecture });
    const running = trainCausalLmOnCluster(cluster, payload, 'cpt', context());
    await fake.waitFor('pytorchjobs', 'xuanyuan', 'xy3-cpt-cpt');
    fake.setStatus('pytorchjobs', 'xuanyuan', 'xy3-cpt-cpt', { conditions: [{ type: 'Running', status: 'True' }] });
    await tick(150);
    fake.setStatus('pytorchjobs', 'xuanyuan', 'xy3-cpt-cpt', {
      conditions: [{ type: 'Running', status: 'False' }, { type: 'Failed', status: 'True', reason: 'PyTorchJobFailed', message: 'PyTorchJob xuanyuan/xy3-cpt-cpt has failed because 1 Master replica(s) failed.' }],
    });
    fake.endLog('xuanyuan', fake.pods()[0].name);
    expect((await failsForGood(running)).message).toContain('PyTorchJob xuanyuan/xy3-cpt-cpt failed: PyTorchJobFailed: PyTorchJob xuanyuan/xy3-cpt-cpt has failed because 1 Master replica(s) failed.');
    expect(fake.deletes).toEqual([]);
    expect(await store.readManifest('xy3-cpt', 'cpt')).toBeNull();
  });

  it('a cancel deletes the PyTorchJob', async () => {
    const cluster = await submitting();
    const payload = CptPayload.parse({ runId: 'xy3-cpt', shardsManifestKey: await bucketed('xy3-cpt'), steps: 20, architecture });
    const running = trainCausalLmOnCluster(cluster, payload, 'cpt', context());
    await fake.waitFor('pytorchjobs', 'xuanyuan', 'xy3-cpt-cpt');
    fake.setStatus('pytorchjobs', 'xuanyuan', 'xy3-cpt-cpt', { conditions: [{ type: 'Running', status: 'True' }] });
    await tick(150);
    controller.abort(new Error('cpt: cancelled by the run'));
    await expect(running).rejects.toThrow('cpt: cancelled by the run');
    expect(fake.deletes).toEqual([{ plural: 'pytorchjobs', namespace: 'xuanyuan', name: 'xy3-cpt-cpt', propagationPolicy: 'Foreground' }]);
    expect(fake.get('pytorchjobs', 'xuanyuan', 'xy3-cpt-cpt')).toBeUndefined();
  });

  it('in dry run renders and keeps the manifest, and fails for good saying nothing was submitted', async () => {
    const cluster = await ClusterTraining.create({ dryRun: true, resources, baseModel: 'models/llama-3-8b-megatron' });
    const payload = CptPayload.parse({ runId: 'xy3-cpt', shardsManifestKey: await bucketed('xy3-cpt'), steps: 20, architecture });
    const failing = trainCausalLmOnCluster(cluster, payload, 'cpt', context());
    const error = await failsForGood(failing);
    expect(error.message).toBe('cpt: dry run: rendered and validated PyTorchJob xuanyuan/xy3-cpt-cpt (cluster/job.yaml); set XYP_KUBECONFIG, or run in the cluster, to submit it');
    expect(error.artifacts?.map((a) => a.name)).toEqual(['cluster/job.yaml']);
    expect((await store.getObject(error.artifacts![0].key)).toString()).toContain('--data-path');
    expect(fake.requests).toEqual([]);
  });

  it('refuses a local-engine init, and a Hugging Face one, for good', async () => {
    const cluster = await ClusterTraining.create({ dryRun: true, resources });
    const shardsManifestKey = await bucketed('xy3-cpt');
    const local = await checkpoint('xy3-local', 'cpt', 'params.bin');
    const error = await failsForGood(trainCausalLmOnCluster(cluster, CptPayload.parse({ runId: 'xy3-cpt', shardsManifestKey, initManifestKey: local, architecture }), 'cpt', context()));
    expect(error.message).toBe(`cpt: init: ${local} is a local-engine checkpoint; on the cluster engine init must be a checkpoint a cluster job wrote on the shared volume`);
    const hf = await checkpoint('xy3-rm', 'reward.train', 'checkpoint/config.json', { engine: 'cluster', checkpoint: '/data/checkpoints/xy3-rm/reward.train' });
    const wrong = await failsForGood(trainCausalLmOnCluster(cluster, CptPayload.parse({ runId: 'xy3-cpt', shardsManifestKey, initManifestKey: hf, architecture }), 'cpt', context()));
    expect(wrong.message).toBe(
      "cpt: init: xy3-rm/reward.train (/data/checkpoints/xy3-rm/reward.train) is not a Megatron-LM checkpoint: Megatron-LM's --load needs a Megatron checkpoint (latest_checkpointed_iteration.txt); it is a Hugging Face model (an OpenRLHF job)",
    );
  });

  const conversations = [
    ...Array.from({ length: 6 }, (_, i) => ({ category: 'calc', messages: [{ role: 'user', content: `What is ${i} + ${i}?` }, { role: 'assistant', content: `${2 * i}` }] })),
    ...Array.from({ length: 3 }, (_, i) => ({ category: 'law', messages: [{ role: 'system', content: 'You are a lawyer.' }, { role: 'user', content: `Case ${i}?` }, { role: 'assistant', content: ' It depends. ' }] })),
  ];
  async function ingested(runId: string): Promise<SftIngested> {
    const train = await store.putObject(runId, 'sft', 'train.jsonl', conversations.map((c) => JSON.stringify(c)).join('\n') + '\n');
    return { train: conversations, input: { lines: 10, accepted: 9, rejected: 1, duplicates: 0, train: 9, heldOut: 0 }, artifacts: [train] };
  }

  it('sft: tokenizes the conversations per category onto the volume and fine-tunes the upstream cluster cpt checkpoint', async () => {
    const cluster = await submitting();
    const cptArchitecture = { layers: 4, width: 128, heads: 8, context: 64 };
    const initManifestKey = await checkpoint('xy3-sft', 'cpt', 'checkpoint/latest_checkpointed_iteration.txt', { engine: 'cluster', checkpoint: '/data/checkpoints/xy3-sft/cpt', tokenizer: 'llama3', architecture: cptArchitecture });
    const ratiosKey = (await store.putObject('xy3-sft', 'corpus.mix', 'ratios.json', JSON.stringify({ calc: 2, law: 1 }))).key;
    const payload = SftPayload.parse({ runId: 'xy3-sft', dataKey: 'unused', initManifestKey, ratiosKey, epochs: 3, batchSize: 8 });
    const running = trainSftOnCluster(cluster, payload, 'sft', context(), await ingested('xy3-sft'));

    const object = await fake.waitFor('pytorchjobs', 'xuanyuan', 'xy3-sft-sft');
    const command = (object.spec as { pytorchReplicaSpecs: { Master: { template: { spec: { containers: { command: string[] }[] } } } } }).pytorchReplicaSpecs.Master.template.spec.containers[0].command;
    const flag = (name: string) => command[command.indexOf(name) + 1];
    expect(command).toContain('--finetune');
    expect(flag('--load')).toBe('/data/checkpoints/xy3-sft/cpt');
    // The shape is the upstream checkpoint's, not the payload's default.
    expect([flag('--num-layers'), flag('--hidden-size'), flag('--num-attention-heads'), flag('--seq-length')]).toEqual(['4', '128', '8', '64']);
    expect(command.slice(command.indexOf('--data-path') + 1, command.indexOf('--split'))).toEqual(['2', '/data/inputs/xy3-sft/sft/data/sft.cat-calc', '1', '/data/inputs/xy3-sft/sft/data/sft.cat-law']);

    // One Megatron document per conversation, in Llama 3's chat format with <|end_of_text|> after it.
    const [first] = await tok.encodeBatch([llama3ChatText(conversations[0].messages)], { appendId: tok.eosId! });
    const calcIdx = parseIndex(await readFile(volume('inputs/xy3-sft/sft/data/sft.cat-calc.idx')));
    expect(calcIdx.sequenceLengths.length).toBe(6);
    const calcBin = await readFile(volume('inputs/xy3-sft/sft/data/sft.cat-calc.bin'));
    expect(Array.from(new Int32Array(calcBin.buffer, calcBin.byteOffset, first.length))).toEqual(Array.from(first));
    expect(first[0]).toBe(128000);
    expect(first.at(-1)).toBe(128001);
    const lawIdx = parseIndex(await readFile(volume('inputs/xy3-sft/sft/data/sft.cat-law.idx')));
    expect(lawIdx.sequenceLengths.length).toBe(3);
    const tokens = (calcBin.length + (await stat(volume('inputs/xy3-sft/sft/data/sft.cat-law.bin'))).size) / 4;
    expect(flag('--train-iters')).toBe(String(Math.ceil((3 * tokens) / (8 * 64))));
    expect(flag('--tokenizer-model')).toBe('/data/inputs/xy3-sft/sft/tokenizer');

    await succeed('xy3-sft-sft', 'checkpoints/xy3-sft/sft', { 'lm loss': 1.2, 'heldOut.calc.before': 2, 'heldOut.calc.after': 1.5 });
    const out = await running;
    expect(out.result).toMatchObject({
      engine: 'cluster',
      jobKind: 'sft',
      checkpoint: '/data/checkpoints/xy3-sft/sft',
      heldOut: { calc: { before: 2, after: 1.5, change: -0.5 } },
      ratios: { first: { calc: 2, law: 1 }, last: { calc: 2, law: 1 } },
      input: { lines: 10, accepted: 9, rejected: 1 },
      architecture: cptArchitecture,
    });
    expect(out.artifacts.map((a) => a.name)).toEqual(['checkpoint/iter_0000040/model_optim_rng.pt', 'checkpoint/latest_checkpointed_iteration.txt', 'checkpoint/metrics.json', 'cluster/job.yaml', 'cluster/status.json', 'train.jsonl']);
    expect(STAGES.sft.result.safeParse(out.result).success).toBe(true);
  });

  it('sft: a ratio for a category with no conversation fails for good naming it; without ratios the token shares are used', async () => {
    const cluster = await ClusterTraining.create({ dryRun: true, resources, baseModel: 'models/llama-3-8b-megatron' });
    const ratiosKey = (await store.putObject('xy3-sft', 'corpus.mix', 'ratios.json', JSON.stringify({ calc: 1, tax: 1 }))).key;
    const unknown = await failsForGood(trainSftOnCluster(cluster, SftPayload.parse({ runId: 'xy3-sft', dataKey: 'unused', ratiosKey }), 'sft', context(), await ingested('xy3-sft')));
    expect(unknown.message).toBe('sft: ratios.tax: no category "tax" in the split (it has calc, law)');
    expect(unknown.artifacts?.map((a) => a.name)).toEqual(['train.jsonl']);
    const failing = trainSftOnCluster(cluster, SftPayload.parse({ runId: 'xy3-sft', dataKey: 'unused' }), 'sft', context(), await ingested('xy3-sft'));
    const error = await failsForGood(failing);
    expect(error.message).toContain('sft: dry run: rendered and validated PyTorchJob xuanyuan/xy3-sft-sft (cluster/job.yaml)');
    expect(error.artifacts?.map((a) => a.name)).toEqual(['train.jsonl', 'cluster/job.yaml']);
    const yaml = (await store.getObject(error.artifacts![1].key)).toString();
    expect(yaml).toContain('- /data/models/llama-3-8b-megatron');
    // Dry run writes nothing on a volume, but the blend is the token shares of the two categories.
    const weights = [...yaml.matchAll(/- "?(0\.\d+)"?\n\s+- \/data\/inputs\/xy3-sft\/sft\/data\/sft\.cat-(calc|law)/g)].map((m) => Number(m[1]));
    expect(weights).toHaveLength(2);
    expect(weights[0] + weights[1]).toBeCloseTo(1, 5);
    expect(fake.requests).toEqual([]);
  });
});
