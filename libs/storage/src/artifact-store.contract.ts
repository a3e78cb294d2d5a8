import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manifestKey, objectKey, type ArtifactEntry, type StageManifest } from '@xyp/contracts';
import type { ArtifactStore, CommitHooks } from './artifact-store';
import { scopeStoreToInstance } from './instance-scoped-store';
import { ArtifactNotFoundError, InvalidArtifactKeyError, InvalidByteRangeError, InvalidManifestError } from './errors';

/** A store under test plus raw access to its backing storage, bypassing the store's own rules. */
export interface ArtifactStoreFixture {
  store: ArtifactStore;
  /** Writes bytes at a key directly, to plant what a crashed writer could leave behind. */
  writeRaw(key: string, body: Buffer): Promise<void>;
  /** Every key stored under a prefix, sorted, read from the backing storage itself. */
  listRaw(prefix: string): Promise<string[]>;
  /** Another store over the same backing storage whose commits run `hooks` (to race committers deterministically). */
  withCommitHooks(hooks: CommitHooks): ArtifactStore;
  dispose(): Promise<void>;
}

/**
 * A pause before each committer's write that opens once `parties` committers reached it (all past
 * their checks), or after `maxWaitMs` for a store that lets only one through at a time.
 */
export function commitBarrier(parties: number, maxWaitMs = 300): { hooks: CommitHooks; arrivals: () => number } {
  let arrived = 0;
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return {
    arrivals: () => arrived,
    hooks: {
      async beforeManifestWrite() {
        arrived += 1;
        if (arrived >= parties) open();
        await Promise.race([opened, new Promise((resolve) => setTimeout(resolve, maxWaitMs))]);
      },
    },
  };
}

function sha256(bytes: Buffer | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/**
 * A deterministic pseudo-random byte stream produced on demand, chunk by chunk, so a test can
 * push megabytes without ever holding them. `digest()` is the sha256 of what was produced.
 */
export class GeneratedStream extends Readable {
  private readonly hash = createHash('sha256');
  private state: number;
  produced = 0;

  constructor(
    readonly total: number,
    private readonly chunkSize = 64 * 1024,
    seed = 0x9e3779b9,
  ) {
    super();
    this.state = seed >>> 0 || 1;
  }

  override _read(): void {
    const length = Math.min(this.chunkSize, this.total - this.produced);
    if (length <= 0) {
      this.push(null);
      return;
    }
    const chunk = Buffer.allocUnsafe(length);
    for (let offset = 0; offset < length; offset += 1) {
      // xorshift32: cheap, and unlike a repeated pattern it makes a wrong offset visible in the hash.
      this.state ^= this.state << 13;
      this.state ^= this.state >>> 17;
      this.state ^= this.state << 5;
      chunk[offset] = this.state & 0xff;
    }
    this.hash.update(chunk);
    this.produced += length;
    this.push(chunk);
  }

  digest(): string {
    return this.hash.digest('hex');
  }
}

function manifestOf(runId: string, stage: string, artifacts: ArtifactEntry[], result: Record<string, unknown> = {}): StageManifest {
  return { version: 1, runId, stage, committedAt: new Date().toISOString(), artifacts, result };
}

/**
 * The behaviour every `ArtifactStore` must share. Each test works in its own run id, so tests do
 * not see each other's keys and the store is created once per suite.
 */
export function describeArtifactStoreContract(name: string, makeStore: () => Promise<ArtifactStoreFixture>): void {
  describe(`ArtifactStore contract: ${name}`, () => {
    let fixture: ArtifactStoreFixture;
    let store: ArtifactStore;
    let runCounter = 0;
    const newRunId = (): string => `run-${(runCounter += 1)}-${randomBytes(3).toString('hex')}`;

    beforeAll(async () => {
      fixture = await makeStore();
      store = fixture.store;
    });

    afterAll(async () => {
      await fixture?.dispose();
    });

    it('describes itself without credentials', () => {
      expect(store.describe()).toMatch(/^(local:|s3:\/\/)/);
    });

    it('round-trips bytes under their content address with sha256 and size', async () => {
      const runId = newRunId();
      const bytes = Buffer.from([0, 1, 2, 255, 254, 10, 13]);
      const entry = await store.putObject(runId, 'corpus.inspect', 'stats/raw.bin', bytes, 'application/x-test');
      expect(entry).toEqual({
        name: 'stats/raw.bin',
        key: objectKey(runId, 'corpus.inspect', sha256(bytes)),
        sha256: sha256(bytes),
        size: bytes.length,
        contentType: 'application/x-test',
      });
      expect(await store.getObject(entry.key)).toEqual(bytes);
      expect(await store.statObject(entry.key)).toEqual({ size: bytes.length });
    });

    it('stores a string as UTF-8 with the default content type', async () => {
      const runId = newRunId();
      const entry = await store.putObject(runId, 'corpus.inspect', 'note.txt', 'héllo');
      expect(entry.contentType).toBe('application/octet-stream');
      expect(entry.size).toBe(Buffer.byteLength('héllo'));
      expect((await store.getObject(entry.key)).toString('utf8')).toBe('héllo');
    });

    it('stores an empty body', async () => {
      const runId = newRunId();
      const entry = await store.putObject(runId, 'corpus.inspect', 'empty', Buffer.alloc(0));
      expect(entry).toMatchObject({ size: 0, sha256: sha256('') });
      expect(await store.getObject(entry.key)).toEqual(Buffer.alloc(0));
    });

    it('round-trips a stream and reads it back as a stream', async () => {
      const runId = newRunId();
      const parts = ['line one\n', 'line two\n', Buffer.from('line three\n')];
      const whole = Buffer.concat(parts.map((part) => Buffer.from(part)));
      const entry = await store.putObject(runId, 'corpus.bucket', 'lines.txt', Readable.from(parts), 'text/plain');
      expect(entry).toMatchObject({ sha256: sha256(whole), size: whole.length });
      expect(await readAll(await store.getObjectStream(entry.key))).toEqual(whole);
    });

    it('keeps one object for the same bytes written twice and leaves no temp objects', async () => {
      const runId = newRunId();
      const first = await store.putObject(runId, 'corpus.bucket', 'a.bin', Buffer.from('same bytes'));
      const second = await store.putObject(runId, 'corpus.bucket', 'b.bin', Readable.from([Buffer.from('same '), Buffer.from('bytes')]));
      expect(second.key).toBe(first.key);
      expect(second.name).toBe('b.bin');
      expect(await fixture.listRaw(`runs/${runId}/`)).toEqual([first.key]);
    });

    it('rejects a failing stream and cleans up its temp object', async () => {
      const runId = newRunId();
      const failing = new Readable({
        read() {
          this.push(Buffer.from('partial'));
          this.destroy(new Error('producer crashed'));
        },
      });
      await expect(store.putObject(runId, 'corpus.bucket', 'x.bin', failing)).rejects.toThrow('producer crashed');
      expect(await fixture.listRaw(`runs/${runId}/`)).toEqual([]);
    });

    it('reports a missing object as null from statObject and as ArtifactNotFoundError from reads', async () => {
      const key = objectKey(newRunId(), 'corpus.bucket', sha256('never written'));
      expect(await store.statObject(key)).toBeNull();
      await expect(store.getObject(key)).rejects.toThrow(ArtifactNotFoundError);
      await expect(store.getObjectStream(key)).rejects.toThrow(key);
    });

    it('reads a byte range [start, end) of an object: exactly those bytes, across read chunks', async () => {
      const runId = newRunId();
      const bytes = randomBytes(300_000);
      const entry = await store.putObject(runId, 'corpus.bucket', 'ranged.bin', bytes);
      const cases: [number, number | undefined][] = [
        [0, 1],
        [0, bytes.length],
        [0, undefined],
        [1, 2],
        [65_535, 65_537],
        [100_000, 250_001],
        [123_456, undefined],
        [bytes.length - 1, undefined],
        [bytes.length - 1, bytes.length],
      ];
      for (const [start, end] of cases) {
        const read = await readAll(await store.getObjectStream(entry.key, end === undefined ? { start } : { start, end }));
        expect(read.length, `[${start}, ${end})`).toBe((end ?? bytes.length) - start);
        expect(read.equals(bytes.subarray(start, end)), `[${start}, ${end})`).toBe(true);
      }
    });

    it('reads an empty range as no bytes, also at the very end of an object', async () => {
      const runId = newRunId();
      const entry = await store.putObject(runId, 'corpus.bucket', 'ten.bin', Buffer.from('0123456789'));
      for (const range of [{ start: 0, end: 0 }, { start: 4, end: 4 }, { start: 10, end: 10 }, { start: 10 }]) {
        expect(await readAll(await store.getObjectStream(entry.key, range)), JSON.stringify(range)).toEqual(Buffer.alloc(0));
      }
      const empty = await store.putObject(runId, 'corpus.bucket', 'empty.bin', Buffer.alloc(0));
      expect(await readAll(await store.getObjectStream(empty.key, { start: 0 }))).toEqual(Buffer.alloc(0));
      expect(await readAll(await store.getObjectStream(empty.key, { start: 0, end: 0 }))).toEqual(Buffer.alloc(0));
    });

    it('refuses a range that is malformed or not within the object, naming the key and the range', async () => {
      const runId = newRunId();
      const entry = await store.putObject(runId, 'corpus.bucket', 'ten.bin', Buffer.from('0123456789'));
      const named = JSON.stringify(entry.key);
      const malformed: [{ start: number; end?: number }, string][] = [
        [{ start: -1 }, '[-1, end)'],
        [{ start: 1.5, end: 3 }, '[1.5, 3)'],
        [{ start: 0, end: Number.NaN }, '[0, NaN)'],
        [{ start: 5, end: 4 }, '[5, 4)'],
      ];
      for (const [range, shown] of malformed) {
        const error = await store.getObjectStream(entry.key, range).then(() => null, (rejection: unknown) => rejection);
        expect(error, shown).toBeInstanceOf(InvalidByteRangeError);
        expect((error as Error).message).toContain(`${shown} of ${named}`);
      }
      const outside: [{ start: number; end?: number }, string][] = [
        [{ start: 0, end: 11 }, '[0, 11)'],
        [{ start: 9, end: 20 }, '[9, 20)'],
        [{ start: 11 }, '[11, end)'],
        [{ start: 11, end: 12 }, '[11, 12)'],
        [{ start: 10, end: 11 }, '[10, 11)'],
      ];
      for (const [range, shown] of outside) {
        const error = await store.getObjectStream(entry.key, range).then(() => null, (rejection: unknown) => rejection);
        expect(error, shown).toBeInstanceOf(InvalidByteRangeError);
        expect((error as Error).message).toContain(`${shown} of ${named} (10 bytes): `);
        expect((error as Error).message).toMatch(/past the end of the object/);
      }
    });

    it('reports a missing object as ArtifactNotFoundError from a ranged read', async () => {
      const key = objectKey(newRunId(), 'corpus.bucket', sha256('never written either'));
      await expect(store.getObjectStream(key, { start: 0, end: 4 })).rejects.toThrow(ArtifactNotFoundError);
      await expect(store.getObjectStream(key, { start: 3 })).rejects.toThrow(ArtifactNotFoundError);
      await expect(store.getObjectStream(key, { start: 2, end: 2 })).rejects.toThrow(ArtifactNotFoundError);
    });

    it('treats a key prefix (a folder) as missing, not as an object', async () => {
      const runId = newRunId();
      await store.putObject(runId, 'corpus.bucket', 'a.bin', 'x');
      expect(await store.statObject(`runs/${runId}/corpus.bucket/objects`)).toBeNull();
      await expect(store.getObject(`runs/${runId}/corpus.bucket/objects`)).rejects.toThrow(ArtifactNotFoundError);
    });

    it('commits a manifest once: the first commit wins and later ones get it back', async () => {
      const runId = newRunId();
      const stage = 'corpus.bucket';
      expect(await store.readManifest(runId, stage)).toBeNull();
      const entry = await store.putObject(runId, stage, 'shards/0.bin', 'shard zero');
      const first = manifestOf(runId, stage, [entry], { attempt: 1 });
      const committed = await store.commitManifest(first);
      expect(committed).toEqual({ committed: true, manifest: first });

      const retry = manifestOf(runId, stage, [entry], { attempt: 2 });
      const again = await store.commitManifest(retry);
      expect(again.committed).toBe(false);
      expect(again.manifest).toEqual(first);
      expect(await store.readManifest(runId, stage)).toEqual(first);
      expect(await fixture.listRaw(`runs/${runId}/`)).toEqual([entry.key, manifestKey(runId, stage)].sort());
    });

    for (const committers of [2, 10]) {
      it(`lets exactly one of ${committers} concurrent committers of different manifests for one instance win; the others get its manifest`, async () => {
        const runId = newRunId();
        const stage = 'corpus.bucket';
        const entry = await store.putObject(runId, `${stage}#race`, 'shard.bin', 'shared shard');
        // Every committer is past its check before any writes: a check-then-put store would publish them all.
        const barrier = commitBarrier(committers);
        const racing = fixture.withCommitHooks(barrier.hooks);
        const manifests = Array.from({ length: committers }, (_, attempt) => ({ ...manifestOf(runId, stage, [entry], { attempt }), instance: 'race' }));
        const results = await Promise.all(manifests.map((manifest) => racing.commitManifest(manifest)));
        const winners = results.filter((result) => result.committed).map((result) => result.manifest);
        expect(winners, 'committed: true').toHaveLength(1);
        const [winner] = winners;
        expect(manifests).toContainEqual(winner);
        for (const result of results) expect(result.manifest).toEqual(winner);
        expect(await store.readManifest(runId, `${stage}#race`)).toEqual(winner);
        expect(barrier.arrivals()).toBeGreaterThanOrEqual(1);
      });
    }

    it('refuses a manifest that lists a missing object and names it', async () => {
      const runId = newRunId();
      const stage = 'corpus.bucket';
      const stored = await store.putObject(runId, stage, 'present.bin', 'present');
      const missingKey = objectKey(runId, stage, sha256('absent'));
      const missing: ArtifactEntry = { ...stored, name: 'absent.bin', key: missingKey, sha256: sha256('absent') };
      const attempt = store.commitManifest(manifestOf(runId, stage, [stored, missing]));
      await expect(attempt).rejects.toThrow(InvalidManifestError);
      await expect(store.commitManifest(manifestOf(runId, stage, [stored, missing]))).rejects.toThrow(
        new RegExp(`absent\\.bin.*${missingKey}.*does not exist`),
      );
      expect(await store.readManifest(runId, stage)).toBeNull();
    });

    it('refuses a manifest whose artifact size differs from the stored object', async () => {
      const runId = newRunId();
      const stored = await store.putObject(runId, 'corpus.bucket', 'a.bin', 'four');
      await expect(store.commitManifest(manifestOf(runId, 'corpus.bucket', [{ ...stored, size: 5 }]))).rejects.toThrow(
        'stored size 4 differs from 5',
      );
    });

    it('refuses a manifest that points into another run', async () => {
      const runId = newRunId();
      const other = await store.putObject(newRunId(), 'corpus.bucket', 'a.bin', 'elsewhere');
      await expect(store.commitManifest(manifestOf(runId, 'corpus.bucket', [other]))).rejects.toThrow(`is outside runs/${runId}/`);
    });

    it('explains a schema error by field and the manifest key', async () => {
      const runId = newRunId();
      const bad = {
        ...manifestOf(runId, 'corpus.bucket', []),
        committedAt: 'yesterday',
        artifacts: [{ name: 'a.bin', key: objectKey(runId, 'corpus.bucket', 'abc'), sha256: 'abc', size: 1 }],
      } as unknown as StageManifest;
      const error = await store.commitManifest(bad).then(
        () => undefined,
        (rejection: unknown) => rejection,
      );
      expect(error).toBeInstanceOf(InvalidManifestError);
      const message = (error as Error).message;
      expect(message).toContain(manifestKey(runId, 'corpus.bucket'));
      expect(message).toContain('committedAt');
      expect(message).toContain('artifacts.0.sha256');
      await expect(store.commitManifest({ version: 2 } as unknown as StageManifest)).rejects.toThrow(/version/);
    });

    it('lists committed manifests sorted by stage, ignoring temp objects and uncommitted stages', async () => {
      const runId = newRunId();
      for (const stage of ['corpus.mix', 'corpus.bucket']) {
        const entry = await store.putObject(runId, stage, 'out.bin', `output of ${stage}`);
        await store.commitManifest(manifestOf(runId, stage, [entry], { stage }));
      }
      await store.putObject(runId, 'tokenize.shard', 'out.bin', 'no manifest yet');
      await fixture.writeRaw(`runs/${runId}/corpus.bucket/tmp/0f1e2d3c`, Buffer.from('interrupted write'));
      await fixture.writeRaw(`runs/${runId}/tokenize.pack/tmp/manifest.json`, Buffer.from('{"not":"committed"}'));

      const all = await store.listManifests(runId);
      expect(all.map((manifest) => manifest.stage)).toEqual(['corpus.bucket', 'corpus.mix']);
      expect(all[0]?.result).toEqual({ stage: 'corpus.bucket' });
      expect((await store.listManifests(runId, 'corpus.mix')).map((manifest) => manifest.stage)).toEqual(['corpus.mix']);
      expect(await store.listManifests(runId, 'tokenize.shard')).toEqual([]);
      expect(await store.listManifests(newRunId())).toEqual([]);
    });

    it('keeps each stage instance in its own folder beside the default instance, and lists them all', async () => {
      const runId = newRunId();
      const whole = await store.putObject(runId, 'corpus.bucket', 'out.bin', 'default instance');
      await store.commitManifest(manifestOf(runId, 'corpus.bucket', [whole], { which: 'default' }));
      const phases: StageManifest[] = [];
      for (const instance of ['phase-1', 'phase-2']) {
        const entry = await store.putObject(runId, `corpus.bucket#${instance}`, 'out.bin', `output of ${instance}`);
        expect(entry.key).toBe(objectKey(runId, `corpus.bucket#${instance}`, entry.sha256));
        expect(entry.key.startsWith(`runs/${runId}/corpus.bucket/${instance}/objects/`)).toBe(true);
        const committed = await store.commitManifest({ ...manifestOf(runId, 'corpus.bucket', [entry], { which: instance }), instance });
        expect(committed.committed).toBe(true);
        phases.push(committed.manifest);
      }
      expect(manifestKey(runId, 'corpus.bucket#phase-2')).toBe(`runs/${runId}/corpus.bucket/phase-2/manifest.json`);
      expect((await store.readManifest(runId, 'corpus.bucket#phase-2'))?.result).toEqual({ which: 'phase-2' });
      expect((await store.readManifest(runId, 'corpus.bucket'))?.result).toEqual({ which: 'default' });
      expect(await store.readManifest(runId, 'corpus.bucket#phase-3')).toBeNull();
      // A second commit of an instance returns the first, as for a stage.
      const again = await store.commitManifest({ ...manifestOf(runId, 'corpus.bucket', [], { which: 'late' }), instance: 'phase-1' });
      expect(again).toEqual({ committed: false, manifest: phases[0] });

      const listed = (manifests: StageManifest[]) => manifests.map((m) => `${m.stage}#${m.instance ?? ''}`);
      expect(listed(await store.listManifests(runId))).toEqual(['corpus.bucket#', 'corpus.bucket#phase-1', 'corpus.bucket#phase-2']);
      expect(listed(await store.listManifests(runId, 'corpus.bucket'))).toEqual(['corpus.bucket#', 'corpus.bucket#phase-1', 'corpus.bucket#phase-2']);
      expect(listed(await store.listManifests(runId, 'corpus.bucket#phase-1'))).toEqual(['corpus.bucket#phase-1']);
      await expect(store.readManifest(runId, 'corpus.bucket#objects')).rejects.toThrow(InvalidArtifactKeyError);
      await expect(store.putObject(runId, 'corpus.bucket#Bad_Key', 'x', 'x')).rejects.toThrow(InvalidArtifactKeyError);
    });

    it('lets stage code written for one instance write into its instance through a scoped store', async () => {
      const runId = newRunId();
      const scoped = scopeStoreToInstance(store, { runId, stage: 'corpus.mix', instance: 'round-2' });
      const entry = await scoped.putObject(runId, 'corpus.mix', 'weights.json', '{"news":1}');
      expect(entry.key.startsWith(`runs/${runId}/corpus.mix/round-2/objects/`)).toBe(true);
      await scoped.commitManifest(manifestOf(runId, 'corpus.mix', [entry]));
      expect((await store.readManifest(runId, 'corpus.mix#round-2'))?.instance).toBe('round-2');
      expect(await store.readManifest(runId, 'corpus.mix')).toBeNull();
      expect((await scoped.readManifest(runId, 'corpus.mix'))?.instance).toBe('round-2');
      // Other stages and runs pass through.
      const other = await scoped.putObject(runId, 'corpus.inspect', 'summary.json', '{}');
      expect(other.key.startsWith(`runs/${runId}/corpus.inspect/objects/`)).toBe(true);
      expect(scopeStoreToInstance(store, { runId, stage: 'corpus.mix' })).toBe(store);
    });

    it('rejects bad keys, naming the key', async () => {
      const badKeys = ['', '/etc/passwd', '../outside', 'runs/../../x', 'runs\\x', 'runs//x', 'runs/x/', 'runs/./x', 'runs/x\u0000y'];
      for (const key of badKeys) {
        const named = JSON.stringify(key);
        await expect(store.getObject(key), key).rejects.toThrow(InvalidArtifactKeyError);
        await expect(store.getObjectStream(key), key).rejects.toThrow(named);
        await expect(store.getObjectStream(key, { start: 0, end: 1 }), key).rejects.toThrow(InvalidArtifactKeyError);
        await expect(store.statObject(key), key).rejects.toThrow(named);
      }
    });

    it('rejects bad run ids and stage names, naming the key they would build', async () => {
      await expect(store.putObject('../escape', 'corpus.bucket', 'a.bin', 'x')).rejects.toThrow('"runs/../escape/"');
      await expect(store.putObject(newRunId(), 'corpus/../x', 'a.bin', 'x')).rejects.toThrow(InvalidArtifactKeyError);
      await expect(store.readManifest('Bad Run', 'corpus.bucket')).rejects.toThrow('"runs/Bad Run/"');
      await expect(store.listManifests('run-ok', '../x')).rejects.toThrow(InvalidArtifactKeyError);
      await expect(store.removeRun('..')).rejects.toThrow('"runs/../"');
      await expect(store.removeRun('')).rejects.toThrow(InvalidArtifactKeyError);
    });

    it('rejects an artifact name the manifest schema would refuse, before reading the body', async () => {
      const body = new GeneratedStream(1024);
      await expect(store.putObject(newRunId(), 'corpus.bucket', '/absolute', body)).rejects.toThrow('"/absolute"');
      expect(body.produced).toBe(0);
    });

    it('removes everything of one run and nothing of another', async () => {
      const doomed = newRunId();
      const kept = newRunId();
      for (const runId of [doomed, kept]) {
        const entry = await store.putObject(runId, 'corpus.bucket', 'a.bin', `bytes of ${runId}`);
        await store.commitManifest(manifestOf(runId, 'corpus.bucket', [entry]));
      }
      await fixture.writeRaw(`runs/${doomed}/corpus.bucket/tmp/leftover`, Buffer.from('x'));
      await store.removeRun(doomed);
      expect(await fixture.listRaw(`runs/${doomed}/`)).toEqual([]);
      expect(await store.readManifest(doomed, 'corpus.bucket')).toBeNull();
      expect(await store.listManifests(kept)).toHaveLength(1);
      await expect(store.removeRun(newRunId())).resolves.toBeUndefined();
    });

    it('streams a 5 MB generated body without holding it, hashing as it goes', async () => {
      const runId = newRunId();
      const total = 5_000_000;
      const body = new GeneratedStream(total);
      const entry = await store.putObject(runId, 'tokenize.shard', 'shards/big.bin', body);
      expect(body.produced).toBe(total);
      const expected = body.digest();
      expect(entry).toMatchObject({ sha256: expected, size: total, key: objectKey(runId, 'tokenize.shard', expected) });
      expect(await store.statObject(entry.key)).toEqual({ size: total });

      const readHash = createHash('sha256');
      let readBytes = 0;
      for await (const chunk of await store.getObjectStream(entry.key)) {
        readHash.update(chunk as Buffer);
        readBytes += (chunk as Buffer).length;
      }
      expect(readBytes).toBe(total);
      expect(readHash.digest('hex')).toBe(expected);
      expect(await fixture.listRaw(`runs/${runId}/`)).toEqual([entry.key]);
    });
  });
}
