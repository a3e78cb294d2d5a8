import { readdirSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, sep } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { manifestKey, objectKey } from '@xyp/contracts';
import { describeArtifactStoreContract, GeneratedStream } from './artifact-store.contract';
import { LocalDirectoryStore } from './local-directory-store';

async function listFiles(root: string, prefix: string): Promise<string[]> {
  const start = join(root, ...prefix.split('/').filter(Boolean));
  const entries = await readdir(start, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => relative(root, join(entry.parentPath, entry.name)).split(sep).join('/'))
    .sort();
}

describeArtifactStoreContract('LocalDirectoryStore', async () => {
  const root = await mkdtemp(join(tmpdir(), 'xyp-storage-local-'));
  return {
    store: new LocalDirectoryStore(root),
    async writeRaw(key, body) {
      const path = join(root, ...key.split('/'));
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, body);
    },
    listRaw: (prefix) => listFiles(root, prefix),
    withCommitHooks: (hooks) => new LocalDirectoryStore(root, hooks),
    dispose: () => rm(root, { recursive: true, force: true }),
  };
});

describe('LocalDirectoryStore', () => {
  let root: string;
  let store: LocalDirectoryStore;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'xyp-storage-local-'));
    store = new LocalDirectoryStore(root);
  });

  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('describes itself by its absolute root', () => {
    expect(store.describe()).toBe(`local:${root}`);
  });

  it('writes a stream to its temp file while the stream is still producing', async () => {
    const total = 4 * 1024 * 1024;
    const tmpDir = join(root, 'runs', 'run-stream', 'tokenize.shard', 'tmp');
    let writtenWhenLastChunkProduced = -1;
    const body = new GeneratedStream(total);
    const produce = body._read.bind(body);
    body._read = () => {
      if (body.produced === total - 64 * 1024) {
        // Synchronous on purpose: the size must be taken now, before the last chunk is handed over.
        const [file] = readdirSync(tmpDir);
        writtenWhenLastChunkProduced = file === undefined ? 0 : statSync(join(tmpDir, file)).size;
      }
      produce();
    };
    const entry = await store.putObject('run-stream', 'tokenize.shard', 'big.bin', body);
    expect(entry.size).toBe(total);
    // Most of the body is already on disk before its final chunk exists.
    expect(writtenWhenLastChunkProduced).toBeGreaterThan(total / 2);
  });

  it('lets exactly one of many concurrent commits of a stage win', async () => {
    const entry = await store.putObject('run-race', 'corpus.bucket', 'a.bin', 'x');
    const attempts = await Promise.all(
      [1, 2, 3, 4, 5].map((attempt) =>
        store.commitManifest({
          version: 1,
          runId: 'run-race',
          stage: 'corpus.bucket',
          committedAt: new Date().toISOString(),
          artifacts: [entry],
          result: { attempt },
        }),
      ),
    );
    expect(attempts.filter((attempt) => attempt.committed)).toHaveLength(1);
    const winner = attempts.find((attempt) => attempt.committed)!.manifest;
    for (const attempt of attempts) expect(attempt.manifest).toEqual(winner);
    expect(await listFiles(root, 'runs/run-race/')).toEqual([manifestKey('run-race', 'corpus.bucket'), entry.key].sort());
  });

  it('reports a corrupt stored manifest instead of treating the stage as done or missing', async () => {
    const key = manifestKey('run-corrupt', 'corpus.bucket');
    await mkdir(dirname(join(root, key)), { recursive: true });
    await writeFile(join(root, key), '{ not json');
    await expect(store.readManifest('run-corrupt', 'corpus.bucket')).rejects.toThrow(`invalid manifest "${key}": not JSON`);
  });

  it('reports a manifest stored under another stage key', async () => {
    const entry = await store.putObject('run-moved', 'corpus.bucket', 'a.bin', 'x');
    await store.commitManifest({
      version: 1,
      runId: 'run-moved',
      stage: 'corpus.bucket',
      committedAt: new Date().toISOString(),
      artifacts: [entry],
      result: {},
    });
    const moved = join(root, manifestKey('run-moved', 'corpus.mix'));
    await mkdir(dirname(moved), { recursive: true });
    await writeFile(moved, await store.getObject(manifestKey('run-moved', 'corpus.bucket')));
    await expect(store.listManifests('run-moved')).rejects.toThrow('belongs to runs/run-moved/corpus.bucket/manifest.json');
  });

  it('creates its root on first write', async () => {
    const nested = new LocalDirectoryStore(join(root, 'not', 'yet'));
    const entry = await nested.putObject('run-new', 'corpus.bucket', 'a.bin', 'x');
    expect(entry.key).toBe(objectKey('run-new', 'corpus.bucket', entry.sha256));
    expect(await nested.listManifests('run-new')).toEqual([]);
  });
});
