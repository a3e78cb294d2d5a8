import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { MIN_PART_SIZE } from '@xyp/storage';
import { startTestS3, type TestS3 } from '@xyp/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DirectoryVolume, S3Volume, type SharedVolume } from './shared-volume';

const CHUNK = 256 * 1024;

/** `total` bytes of a fixed pattern in chunks, made only when asked for; `probe(pulled)` runs before each chunk. */
function lazyBody(total: number, probe: (pulled: number) => Promise<void> = async () => undefined): { body: Readable; sha256: () => string } {
  const hash = createHash('sha256');
  async function* chunks(): AsyncGenerator<Buffer> {
    for (let pulled = 0; pulled < total; pulled += CHUNK) {
      await probe(pulled);
      const chunk = Buffer.alloc(Math.min(CHUNK, total - pulled), pulled / CHUNK);
      hash.update(chunk);
      yield chunk;
    }
  }
  return { body: Readable.from(chunks(), { objectMode: false, highWaterMark: CHUNK }), sha256: () => hash.digest('hex') };
}

async function sha256Of(stream: Readable): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of stream) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

describe('shared volume: streamed writes', () => {
  let s3: TestS3;
  let dir: string;

  beforeAll(async () => {
    s3 = await startTestS3('xyp-volume-stream');
    dir = await mkdtemp(join(tmpdir(), 'xyp-volume-stream-'));
  });
  afterAll(async () => {
    await s3?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const volumes: [string, () => SharedVolume][] = [
    // Three parts of the smallest size S3 allows (the last one shorter).
    ['S3 (s3rver), in parts', () => new S3Volume({ endPoint: '127.0.0.1', port: s3.port, useSSL: false, accessKey: s3.accessKey, secretKey: s3.secretKey, bucket: s3.bucket, prefix: 'volume', partSize: MIN_PART_SIZE })],
    ['a directory', () => new DirectoryVolume(join(dir, 'volume'))],
  ];

  for (const [label, make] of volumes) {
    it(`writes a stream longer than a part and reads back the same bytes (${label})`, async () => {
      const volume = make();
      const total = 2 * MIN_PART_SIZE + 3 * CHUNK + 17;
      const source = lazyBody(total);
      await volume.write('inputs/r1/cpt/shards/bucket-2048.bin', source.body);
      expect(await sha256Of(await volume.read('inputs/r1/cpt/shards/bucket-2048.bin'))).toBe(source.sha256());
      expect(await volume.list('inputs/r1/cpt')).toEqual([{ path: 'inputs/r1/cpt/shards/bucket-2048.bin', size: total }]);
      // Whole bytes still go through, and replace the file.
      await volume.write('inputs/r1/cpt/shards/bucket-2048.bin', 'small');
      expect((await volume.list('inputs/r1/cpt'))[0].size).toBe(5);
    });
  }

  it('a directory volume writes as it reads (never the whole file in memory), under a temporary name until it ends', async () => {
    const root = join(dir, 'streaming');
    const volume = new DirectoryVolume(root);
    const total = 32 * 1024 * 1024;
    let lag = 0;
    const onDisk = async (): Promise<number> => {
      const names = await readdir(join(root, 'inputs'), { recursive: true }).catch(() => [] as string[]);
      const partial = names.find((name) => String(name).includes('.partial-'));
      return partial ? (await stat(join(root, 'inputs', String(partial)))).size : 0;
    };
    const source = lazyBody(total, async (pulled) => {
      if (pulled >= 8 * CHUNK) lag = Math.max(lag, pulled - (await onDisk()));
    });
    await volume.write('inputs/big.bin', source.body);
    // While the source was read, the file on disk trailed it by a few chunks, not by the file.
    expect(lag).toBeLessThan(8 * CHUNK);
    expect(await volume.list('inputs')).toEqual([{ path: 'inputs/big.bin', size: total }]);
    expect(await sha256Of(await volume.read('inputs/big.bin'))).toBe(source.sha256());
  });

  it('a failed stream leaves no file behind (the directory volume) and rejects the write', async () => {
    const root = join(dir, 'failing');
    const volume = new DirectoryVolume(root);
    async function* broken(): AsyncGenerator<Buffer> {
      yield Buffer.alloc(CHUNK, 1);
      throw new Error('the source broke');
    }
    await expect(volume.write('inputs/half.bin', Readable.from(broken()))).rejects.toThrow('the source broke');
    expect(await volume.list('inputs')).toEqual([]);
  });
});
