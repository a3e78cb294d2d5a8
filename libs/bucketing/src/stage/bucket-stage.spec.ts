import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CorpusBucketShardPayload, type ArtifactEntry } from '@xyp/contracts';
import { S3ArtifactStore } from '@xyp/storage';
import { startTestS3, type S3Request, type TestS3 } from '@xyp/testing';
import { type PackConfigInput, type TokenEncoder, parsePackConfig } from '@xyp/packing';
import type { InputPlan } from '../io/jsonl';
import { bucketCorpus, inProcessRunner } from '../io/pipeline';
import { MemoryStore } from '../io/sink';
import { mergeBucketParts, planBucketParts, runBucketPart } from './bucket-stage';

/** One token per Unicode code point: a stand-in tokenizer whose output is easy to predict. */
const codePoints: TokenEncoder = {
  async encodeBatch(texts, options = {}) {
    return texts.map((text) => {
      const ids = Array.from(text, (ch) => ch.codePointAt(0)!);
      if (options.appendId !== undefined) ids.push(options.appendId);
      return Int32Array.from(ids);
    });
  },
};
const tokenizer = { spec: 'test', name: 'code-points', vocabSize: 0x110001, eodId: 0x110000, dtype: 'int32' as const };

const SAMPLE = join(__dirname, '..', '..', '..', '..', 'data', 'sample', 'corpus.jsonl');
/**
 * 460 lines of the bundled sample with a CRLF line, a blank line and a bad line among them, the
 * last one without its `\n`: 5 shards of 100 lines (the last one 60), windows of 50 lines.
 */
function corpus(): Buffer {
  const lines = readFileSync(SAMPLE, 'utf8').split('\n').filter(Boolean).slice(0, 457);
  lines.splice(120, 0, `${lines[120]}\r`);
  lines.splice(250, 0, '   ');
  lines.splice(333, 0, '{"id": "cut-off", "text": "no closing');
  return Buffer.from(lines.join('\n'));
}
const CONFIG: PackConfigInput = { bucketLengths: [256, 512, 1024], windowLines: 50, windowTokens: 16_384, shardLines: 100, batchChars: 4000 };

/** Byte offset where each line starts, plus the end of the input. */
function lineStarts(bytes: Buffer): number[] {
  const starts = [0];
  for (let i = bytes.indexOf(0x0a); i !== -1; i = bytes.indexOf(0x0a, i + 1)) if (i + 1 < bytes.length) starts.push(i + 1);
  return [...starts, bytes.length];
}

describe('corpus.bucket over an S3 store: every shard worker reads only its own bytes', () => {
  let s3: TestS3;
  let store: S3ArtifactStore;
  const plain = corpus();
  const gzipped = gzipSync(plain);

  beforeAll(async () => {
    s3 = await startTestS3('xyp-bucket-stage');
    store = new S3ArtifactStore({ endPoint: '127.0.0.1', port: s3.port, useSSL: false, accessKey: s3.accessKey, secretKey: s3.secretKey, bucket: s3.bucket, region: 'us-east-1' });
  });
  afterAll(() => s3?.stop());

  const gets = (requests: S3Request[], key?: string) => requests.filter((r) => r.method === 'GET' && (key === undefined || r.key === key));

  /** Runs plan, every part (one after the other, each payload through JSON as BullMQ carries it) and merge; records the requests of each step. */
  async function runStage(runId: string, input: Buffer) {
    const entry = await store.putObject(runId, 'input', 'corpus.jsonl', input);
    const io = { store };
    const config = parsePackConfig(CONFIG);
    let mark = s3.requests.length;
    const since = () => {
      const requests = s3.requests.slice(mark);
      mark = s3.requests.length;
      return requests;
    };
    const { parts, plan } = await planBucketParts(io, { runId, inputKey: entry.key, config, tokenizer });
    const planRequests = since();
    const results = [];
    const partRequests: S3Request[][] = [];
    for (const part of parts) {
      results.push(await runBucketPart(io, CorpusBucketShardPayload.parse(JSON.parse(JSON.stringify(part))), codePoints));
      partRequests.push(since());
    }
    const stored = JSON.parse(JSON.stringify(plan)) as InputPlan;
    const { artifacts } = await mergeBucketParts(io, { runId, inputKey: entry.key, config, tokenizer, plan: stored, parts: results });
    const mergeRequests = since();
    return { inputKey: entry.key, parts, plan, planRequests, partRequests, mergeRequests, artifacts };
  }

  /** The same corpus through `bucketCorpus` from a local file named like the input object, so even the manifest matches. */
  async function localRun(input: Buffer): Promise<Map<string, Uint8Array>> {
    const path = join(mkdtempSync(join(tmpdir(), 'xyp-bucket-stage-')), createHash('sha256').update(input).digest('hex'));
    writeFileSync(path, input);
    const out = new MemoryStore();
    const scratch = new MemoryStore();
    await bucketCorpus({ input: path, config: parsePackConfig(CONFIG), tokenizer, out, scratch, runShard: inProcessRunner(codePoints, scratch) });
    return out.objects;
  }

  async function expectSameFiles(artifacts: ArtifactEntry[], expected: Map<string, Uint8Array>, skip: string[] = []): Promise<void> {
    const names = artifacts.map((a) => a.name).filter((name) => !skip.includes(name));
    expect(names.sort()).toEqual([...expected.keys()].filter((name) => !skip.includes(name)).sort());
    for (const artifact of artifacts.filter((a) => !skip.includes(a.name))) {
      expect(Buffer.compare(await store.getObject(artifact.key), Buffer.from(expected.get(artifact.name)!)), artifact.name).toBe(0);
    }
  }

  let plainFiles: Map<string, Uint8Array>;

  it('plain input: the coordinator reads the input once, each part range-reads exactly [startByte, endByte) of it', async () => {
    const run = await runStage('run-range-plain', plain);
    const starts = lineStarts(plain);
    expect(run.plan.lines).toBe(460);
    expect(run.parts).toHaveLength(5);

    // Planning: one GET of the whole input, no Range, nothing else read.
    expect(gets(run.planRequests)).toEqual([{ method: 'GET', key: run.inputKey, range: null, status: 200, bytes: plain.length }]);

    const perPart = run.parts.map((part, index) => {
      const { startLine, endLine, startByte, endByte } = part.shard;
      // The shard's bytes are exactly its lines, as found in the input independently.
      expect([startByte, endByte]).toEqual([starts[startLine], starts[endLine]]);
      expect(part.inputKey).toBe(run.inputKey);
      // One ranged GET of the input per part, for exactly the shard's bytes: no slack at all.
      const read = gets(run.partRequests[index]);
      expect(read).toEqual([{ method: 'GET', key: run.inputKey, range: `bytes=${startByte}-${endByte! - 1}`, status: 206, bytes: endByte! - startByte! }]);
      return read[0].bytes;
    });
    expect(perPart.reduce((sum, n) => sum + n, 0)).toBe(plain.length);
    console.info(`plain input ${plain.length} bytes; plan read ${gets(run.planRequests)[0].bytes}; parts read ${perPart.join(', ')} bytes`);

    // The merge reads the parts' outputs, never the input.
    expect(gets(run.mergeRequests, run.inputKey)).toEqual([]);
    expect(gets(run.mergeRequests).length).toBeGreaterThan(0);

    plainFiles = await localRun(plain);
    await expectSameFiles(run.artifacts, plainFiles);
  });

  it('gzip input: split once into one gzip object per shard; each part reads only its own object, never the input', async () => {
    const run = await runStage('run-range-gzip', gzipped);
    expect(run.plan).toMatchObject({ gzip: true, lines: 460, bytes: gzipped.length });
    expect(run.parts).toHaveLength(5);

    // Planning: one GET of the whole compressed input; the shard objects are written (PUT), not read.
    expect(gets(run.planRequests)).toEqual([{ method: 'GET', key: run.inputKey, range: null, status: 200, bytes: gzipped.length }]);

    const starts = lineStarts(plain);
    const perPart: number[] = [];
    for (const [index, part] of run.parts.entries()) {
      const { startLine, endLine, startByte, endByte, object } = part.shard;
      expect(object).toBe(`.shards/${String(index).padStart(5, '0')}/input.jsonl.gz`);
      expect(part.inputKey).not.toBe(run.inputKey);
      const size = (await store.statObject(part.inputKey))!.size;
      expect([startByte, endByte]).toEqual([0, size]);
      // Each object holds exactly its shard's lines, as they are in the input.
      expect(gunzipSync(await store.getObject(part.inputKey)).equals(plain.subarray(starts[startLine], starts[endLine]))).toBe(true);
      const read = gets(run.partRequests[index]);
      expect(read).toEqual([{ method: 'GET', key: part.inputKey, range: `bytes=0-${size - 1}`, status: 206, bytes: size }]);
      perPart.push(size);
    }
    expect(run.partRequests.flatMap((requests) => gets(requests, run.inputKey))).toEqual([]);
    expect(new Set(run.parts.map((part) => part.inputKey)).size).toBe(5);
    console.info(`gzip input ${gzipped.length} bytes; plan read ${gets(run.planRequests)[0].bytes}; parts read their own objects of ${perPart.join(', ')} bytes`);

    expect(gets(run.mergeRequests).filter((r) => r.key === run.inputKey || run.parts.some((part) => part.inputKey === r.key))).toEqual([]);

    await expectSameFiles(run.artifacts, await localRun(gzipped));
    // And the packed data is the plain input's: only the manifest (gzip, bytes, sha256) differs.
    await expectSameFiles(run.artifacts, plainFiles, ['manifest.json']);
  });
});
