import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalDirectoryStore } from '@xyp/storage';
import { initBackend } from './backend';
import { DirectorySink, loadModel, loadTrainer, saveModel, saveTrainer } from './checkpoint';
import { ArtifactStoreSink, checkpointManifest, createStoreCheckpoint, newRunId, openCheckpoint, parseCheckpointRef } from './checkpoint-store';
import { disposeModel, initParams } from './model';
import { Trainer } from './train';

const dir = mkdtempSync(join(tmpdir(), 'xyp-ckpt-'));
const store = new LocalDirectoryStore(join(dir, 'store'));
const config = { vocabSize: 260, contextLength: 16, layers: 1, width: 16, heads: 2 };

beforeAll(async () => {
  await initBackend();
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function sameWeights(a: Record<string, { dataSync(): ArrayLike<number> }>, b: Record<string, { dataSync(): ArrayLike<number> }>): void {
  expect(Object.keys(b).sort()).toEqual(Object.keys(a).sort());
  for (const name of Object.keys(a)) expect(Array.from(b[name].dataSync())).toEqual(Array.from(a[name].dataSync()));
}

describe('checkpoint IDs', () => {
  it('reads <runId>/<stage> as a store checkpoint and paths as directories', () => {
    expect(parseCheckpointRef('lm-abc1/engine.lm')).toEqual({ kind: 'store', runId: 'lm-abc1', stage: 'engine.lm', id: 'lm-abc1/engine.lm' });
    expect(parseCheckpointRef(dir)).toMatchObject({ kind: 'directory', dir });
    expect(parseCheckpointRef('./some/ckpt')).toMatchObject({ kind: 'directory' });
    expect(newRunId('lm')).toMatch(/^lm-[a-z0-9]+-[a-z0-9]{4}$/);
  });

  it('names the bad part of an invalid ID', () => {
    expect(() => parseCheckpointRef('')).toThrow(/empty/);
    expect(() => parseCheckpointRef('Bad_Run/engine.lm')).toThrow(/bad run id "Bad_Run"/);
    expect(() => parseCheckpointRef('lm-abc1/Engine LM')).toThrow(/bad stage "Engine LM"/);
    expect(() => parseCheckpointRef('a/b/c')).toThrow(/not <runId>\/<stage>/);
  });
});

describe('checkpoints in the ArtifactStore', () => {
  it('writes a trainer as objects without committing, and once the caller commits their manifest loads it back by ID, bit for bit', async () => {
    const model = initParams(config, 1);
    const trainer = new Trainer(model, { lr: 1e-3 }, 2);
    const sink = await createStoreCheckpoint(store, 'ckpt-roundtrip', 'engine.lm');
    await saveTrainer(sink, trainer);
    const manifest = checkpointManifest(sink, { note: 'test' });
    expect(manifest.artifacts.map((a) => a.name)).toEqual(['config.json', 'model.safetensors', 'optimizer.safetensors', 'trainer.json']);
    expect(manifest.artifacts).toEqual(sink.entries());
    expect(manifest.result).toMatchObject({ kind: 'xyp-engine-checkpoint', files: ['config.json', 'model.safetensors', 'optimizer.safetensors', 'trainer.json'], note: 'test' });
    // Writing the objects committed nothing: the checkpoint does not exist yet.
    expect(await store.readManifest('ckpt-roundtrip', 'engine.lm')).toBeNull();
    await expect(openCheckpoint('ckpt-roundtrip/engine.lm', store)).rejects.toThrow(/not found/);
    expect((await store.commitManifest(manifest)).committed).toBe(true);

    const { ref, sink: reader } = await openCheckpoint('ckpt-roundtrip/engine.lm', store);
    expect(ref.kind).toBe('store');
    const resumed = await loadTrainer(reader);
    expect(resumed.step).toBe(trainer.step);
    sameWeights(model.params, resumed.model.params);
    trainer.dispose();
    resumed.dispose();
    disposeModel(model);
    disposeModel(resumed.model);
  });

  it('opens a DirectorySink checkpoint from its path', async () => {
    const model = initParams(config, 3);
    const path = join(dir, 'plain');
    await saveModel(new DirectorySink(path), model);
    const { ref, sink } = await openCheckpoint(path, store);
    expect(ref.kind).toBe('directory');
    const loaded = await loadModel(sink, false);
    sameWeights(model.params, loaded.params);
    disposeModel(model);
    disposeModel(loaded);
  });

  it('refuses a taken ID, a missing checkpoint, and a stage that is not a checkpoint', async () => {
    await expect(createStoreCheckpoint(store, 'ckpt-roundtrip', 'engine.lm')).rejects.toThrow(/ckpt-roundtrip\/engine.lm already exists/);
    await expect(openCheckpoint('ckpt-missing/engine.lm', store)).rejects.toThrow(/ckpt-missing\/engine.lm not found in local:/);
    const entry = await store.putObject('ckpt-other', 'corpus.bucket', 'x.txt', 'x');
    await store.commitManifest({ version: 1, runId: 'ckpt-other', stage: 'corpus.bucket', committedAt: new Date().toISOString(), artifacts: [entry], result: {} });
    await expect(openCheckpoint('ckpt-other/corpus.bucket', store)).rejects.toThrow(/not an engine checkpoint/);
    await expect(openCheckpoint(join(dir, 'nowhere'), store)).rejects.toThrow(/has no config.json/);
    await expect(openCheckpoint('ckpt-roundtrip/engine.lm')).rejects.toThrow(/ckpt-roundtrip\/engine.lm: a store checkpoint, but no artifact store was given/);
    expect(() => checkpointManifest(new ArtifactStoreSink(store, 'ckpt-empty', 'engine.lm'))).toThrow(/ckpt-empty\/engine.lm: nothing written/);
  });
});
