import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from 's3rver';
import type { BucketItem } from 'minio';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { objectKey } from '@xyp/contracts';
import { TEST_REDIS_URL, dropPrefix, testPrefix } from '@xyp/testing';
import type { CommitHooks } from './artifact-store';
import { describeArtifactStoreContract, GeneratedStream } from './artifact-store.contract';
import { MIN_PART_SIZE } from './options';
import { S3ArtifactStore } from './s3-artifact-store';
import type { S3StoreOptions } from './options';

/*
 * These tests run the S3 store over real HTTP against s3rver, an in-process S3 emulator.
 * s3rver lacks ListMultipartUploads (and AbortMultipartUpload), and the minio client's own
 * putObject calls ListMultipartUploads before every multipart upload, which it uses for any
 * stream of unknown length and for anything above its part size. The store therefore does its
 * own part handling and never takes that path; the contract's objects stay below one part, and
 * only the multipart test below crosses it, through the store's own upload of parts.
 */

interface S3Server {
  port: number;
  stop(): Promise<void>;
  storeFor(bucket: string, partSize?: number, extra?: Partial<S3StoreOptions>, hooks?: CommitHooks): S3ArtifactStore;
  /** Conditional PUTs (`If-None-Match: *`) the endpoint answered, by status. */
  conditionalPuts: number[];
}

/**
 * Makes s3rver honour `If-None-Match: *` on PUT as S3 and MinIO do (s3rver itself ignores it):
 * conditional PUTs of one key are taken one at a time, and one whose key exists is answered
 * `412 PreconditionFailed` (S3's XML error) without reaching s3rver; the rest reach it unchanged.
 */
function honourConditionalPuts(server: S3rver, answered: number[]): void {
  const http = (server as unknown as { httpServer: Server }).httpServer;
  const store = (server as unknown as { store: { existsObject(bucket: string, key: string): Promise<boolean> } }).store;
  const [koa] = http.listeners('request') as ((request: IncomingMessage, response: ServerResponse) => void)[];
  http.removeAllListeners('request');
  const queues = new Map<string, Promise<void>>();
  http.on('request', (request: IncomingMessage, response: ServerResponse) => {
    if (request.method !== 'PUT' || request.headers['if-none-match'] !== '*') return koa(request, response);
    const [, bucket, ...rest] = new URL(request.url ?? '/', 'http://s3').pathname.split('/');
    const key = decodeURIComponent(rest.join('/'));
    const turn = (queues.get(`${bucket}/${key}`) ?? Promise.resolve()).then(async () => {
      if (await store.existsObject(bucket, key)) {
        request.resume();
        response.writeHead(412, { 'Content-Type': 'application/xml' });
        response.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message><Condition>If-None-Match</Condition></Error>`);
        answered.push(412);
        return;
      }
      await new Promise<void>((resolve) => {
        response.once('close', resolve);
        koa(request, response);
      });
      answered.push(response.statusCode);
    });
    queues.set(`${bucket}/${key}`, turn.catch(() => undefined));
  });
}

async function startS3rver(configuredBuckets: string[], options: { conditionalPuts?: boolean } = {}): Promise<S3Server> {
  const directory = await mkdtemp(join(tmpdir(), 'xyp-storage-s3rver-'));
  const server = new S3rver({
    port: 0,
    address: '127.0.0.1',
    directory,
    silent: true,
    configureBuckets: configuredBuckets.map((name) => ({ name })),
  });
  const { port } = await server.run();
  const conditionalPuts: number[] = [];
  if (options.conditionalPuts) honourConditionalPuts(server, conditionalPuts);
  return {
    port,
    conditionalPuts,
    storeFor: (bucket, partSize, extra = {}, hooks = {}) =>
      new S3ArtifactStore(
        {
          endPoint: '127.0.0.1',
          port,
          useSSL: false,
          accessKey: 'S3RVER',
          secretKey: 'S3RVER',
          bucket,
          region: 'us-east-1',
          partSize,
          ...extra,
        },
        hooks,
      ),
    async stop() {
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}

async function listKeys(store: S3ArtifactStore, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const item of store.client.listObjectsV2(store.bucket, prefix, true) as AsyncIterable<BucketItem>) {
    if (item.name !== undefined) keys.push(item.name);
  }
  return keys.sort();
}

// s3rver ignores If-None-Match on PUT: `auto` finds that out and commits under the Redis lock.
describeArtifactStoreContract('S3ArtifactStore on s3rver, commits under the Redis lock', async () => {
  const server = await startS3rver(['xyp-contract']);
  const prefix = testPrefix('s3-commit-lock');
  const lock = { commitLock: { redisUrl: TEST_REDIS_URL, prefix } };
  const store = server.storeFor('xyp-contract', undefined, lock);
  const racing: S3ArtifactStore[] = [];
  return {
    store,
    async writeRaw(key, body) {
      await store.client.putObject(store.bucket, key, body, body.length);
    },
    listRaw: (prefix) => listKeys(store, prefix),
    withCommitHooks: (hooks) => {
      const made = server.storeFor('xyp-contract', undefined, lock, hooks);
      racing.push(made);
      return made;
    },
    dispose: async () => {
      expect(await store.manifestCommitMode()).toBe('lock');
      await Promise.all([store, ...racing].map((made) => made.close()));
      const redis = new Redis(TEST_REDIS_URL);
      await dropPrefix(redis, prefix);
      redis.disconnect();
      await server.stop();
    },
  };
});

// An endpoint that honours If-None-Match (as S3 and MinIO do): `auto` finds that out and commits with a conditional PUT, no lock.
describeArtifactStoreContract('S3ArtifactStore on an endpoint with conditional writes', async () => {
  const server = await startS3rver(['xyp-contract-conditional'], { conditionalPuts: true });
  const store = server.storeFor('xyp-contract-conditional');
  return {
    store,
    async writeRaw(key, body) {
      await store.client.putObject(store.bucket, key, body, body.length);
    },
    listRaw: (prefix) => listKeys(store, prefix),
    withCommitHooks: (hooks) => server.storeFor('xyp-contract-conditional', undefined, {}, hooks),
    dispose: async () => {
      expect(await store.manifestCommitMode()).toBe('conditional');
      expect(server.conditionalPuts).toContain(412);
      await server.stop();
    },
  };
});

describe('S3ArtifactStore', () => {
  let server: S3Server;

  beforeAll(async () => {
    server = await startS3rver([]);
  });

  afterAll(async () => {
    await server?.stop();
  });

  it('describes itself by bucket and endpoint', () => {
    expect(server.storeFor('some-bucket').describe()).toBe(`s3://some-bucket@127.0.0.1:${server.port}`);
  });

  it('creates a missing bucket on first use', async () => {
    const store = server.storeFor('created-on-demand');
    expect(await store.client.bucketExists('created-on-demand')).toBe(false);
    const entry = await store.putObject('run-bucket', 'corpus.bucket', 'a.bin', 'x');
    expect(await store.client.bucketExists('created-on-demand')).toBe(true);
    expect(await store.getObject(entry.key)).toEqual(Buffer.from('x'));
    // A second store on the same bucket finds it and does not fail creating it again.
    expect(await server.storeFor('created-on-demand').statObject(entry.key)).toEqual({ size: 1 });
  });

  it('keeps the content type on the content-addressed object', async () => {
    const store = server.storeFor('content-types');
    const entry = await store.putObject('run-types', 'corpus.bucket', 'a.json', '{}', 'application/json');
    const stats = await store.client.statObject(store.bucket, entry.key);
    expect(stats.metaData['content-type']).toBe('application/json');
  });

  it('uploads a body longer than one part as a multipart upload, one part in memory at a time', async () => {
    const store = server.storeFor('multipart', MIN_PART_SIZE);
    const total = 2 * MIN_PART_SIZE + 1_000_000;
    const body = new GeneratedStream(total);
    const producedAtEachPart: number[] = [];
    const uploadPart = store.client.uploadPart.bind(store.client);
    const spy = vi.spyOn(store.client, 'uploadPart').mockImplementation((config, payload) => {
      producedAtEachPart.push(body.produced);
      return uploadPart(config, payload);
    });

    const entry = await store.putObject('run-multipart', 'tokenize.shard', 'big.bin', body, 'application/x-shard');
    const expected = body.digest();
    expect(entry).toMatchObject({ sha256: expected, size: total, key: objectKey('run-multipart', 'tokenize.shard', expected) });
    expect(spy).toHaveBeenCalledTimes(3);
    // Each part left while the stream still had most of its bytes to produce.
    expect(producedAtEachPart[0]).toBeLessThan(MIN_PART_SIZE + 256 * 1024);
    expect(producedAtEachPart[1]).toBeLessThan(2 * MIN_PART_SIZE + 256 * 1024);

    const read = await store.getObject(entry.key);
    expect(read.length).toBe(total);
    expect(createHash('sha256').update(read).digest('hex')).toBe(expected);
    expect((await store.client.statObject(store.bucket, entry.key)).metaData['content-type']).toBe('application/x-shard');
    expect(await listKeys(store, 'runs/run-multipart/')).toEqual([entry.key]);
  });

  it('rejects invalid options by name without echoing secrets', () => {
    expect(
      () =>
        new S3ArtifactStore({
          endPoint: '127.0.0.1',
          port: 70_000,
          useSSL: false,
          accessKey: 'S3RVER',
          secretKey: 'very-secret',
          bucket: 'Not_A_Bucket',
        }),
    ).toThrow(/port.*bucket/s);
    // A secret pasted into the wrong field must not end up in logs through the error message.
    const secretInWrongPlace = { endPoint: '', port: 9000, useSSL: false, accessKey: 'a', secretKey: 'Very-Secret', bucket: 'Very-Secret' };
    expect(() => new S3ArtifactStore(secretInWrongPlace)).toThrow(/^invalid artifact store options: endPoint: .*; bucket: S3 bucket name/);
    expect(() => new S3ArtifactStore(secretInWrongPlace)).not.toThrow(/Very-Secret/);
  });
});
