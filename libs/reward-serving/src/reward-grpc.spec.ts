import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Module, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Metadata, credentials, loadPackageDefinition, status, type Client, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { fromBinary } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema } from '@bufbuild/protobuf/wkt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TextRewardItem } from '@xyp/contracts';
import { ArtifactStoreSink, checkpointManifest, disposeModel, initBackend, initParams, saveModel } from '@xyp/engine';
import type { CompareRequest, CompareResponse, ListModelsResponse, LoadModelRequest, LoadModelResponse, ScoreRequest, ScoreResponse } from '@xyp/grpc';
import { LocalDirectoryStore } from '@xyp/storage';
import { freePort } from '@xyp/testing';
import { createRewardClient, type RewardClient } from './reward-client';
import { RewardGrpcModule, startRewardGrpc } from './reward-grpc';
import { loadRewardModel, type ServedRewardModel } from './reward-model-scorer';
import { RewardModels, type ScoringModel } from './reward-models';
import { RewardScoring } from './reward-service';

const dir = mkdtempSync(join(tmpdir(), 'xyp-reward-grpc-'));
const store = new LocalDirectoryStore(dir);
const A = 'grpc-a/engine.rm';
const B = 'grpc-b/engine.rm';
const LM = 'grpc-lm/engine.lm';

/** What the service's scorers saw, per model: each scorer call's responses and when it ended; when the model was disposed. */
interface ModelLog {
  calls: { responses: string[]; endedAt: number }[];
  disposedAt?: number;
  scoredAfterDispose: boolean;
}
const logs = new Map<string, ModelLog>();
/** A model's scorer waits this long before scoring (ms). */
const slowMs = new Map<string, number>();
let failNextCall = false;
/** Scores of each item scored alone, in process, by a separately loaded copy of each model. */
const reference = new Map<string, ServedRewardModel>();

async function commitModel(id: string, valueHead: boolean, seed: number): Promise<void> {
  const [runId, stage] = id.split('/');
  const model = initParams({ vocabSize: 260, contextLength: 48, layers: 1, width: 16, heads: 2, lmHead: !valueHead, valueHead }, seed);
  const sink = new ArtifactStoreSink(store, runId, stage);
  await saveModel(sink, model);
  expect((await store.commitManifest(checkpointManifest(sink))).committed).toBe(true);
  disposeModel(model);
}

/** `loadRewardModel` with its scorer instrumented (calls logged, optionally slowed or failed once). */
async function instrumentedLoader(id: string): Promise<ScoringModel> {
  const served = await loadRewardModel(id, { store });
  const log: ModelLog = { calls: [], scoredAfterDispose: false };
  logs.set(id, log);
  return {
    ...served,
    score: async (batch, options) => {
      const call = { responses: batch.map((item) => item.response), endedAt: 0 };
      log.calls.push(call);
      const delay = slowMs.get(id) ?? 0;
      if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
      options?.signal?.throwIfAborted();
      if (failNextCall) {
        failNextCall = false;
        throw new Error('tensor allocation failed');
      }
      if (log.disposedAt !== undefined) log.scoredAfterDispose = true;
      const scores = await served.score(batch, options);
      call.endedAt = performance.now();
      return scores;
    },
    dispose: () => {
      log.disposedAt = performance.now();
      served.dispose();
    },
  };
}

async function alone(model: string, item: TextRewardItem): Promise<number> {
  const [score] = await reference.get(model)!.score([item]);
  return score;
}

@Module({ imports: [RewardGrpcModule] })
class RewardAppModule {}

let app: INestApplication;
let address = '';
let client: RewardClient;
let models: RewardModels;

type Unary<Req, Res> = (request: Req, metadata: Metadata, options: { deadline: Date }, callback: (error: ServiceError | null, response: Res) => void) => unknown;
function call<Req, Res>(method: Unary<Req, Res>, request: Req, timeoutMs = 10_000): Promise<Res> {
  return new Promise((resolve, reject) => {
    method.call(client, request, new Metadata(), { deadline: new Date(Date.now() + timeoutMs) }, (error, response) => (error ? reject(error) : resolve(response)));
  });
}
// ts-proto's encoders write every field they are given (an undefined string as "undefined"): requests are whole.
const score = (request: Partial<ScoreRequest>, timeoutMs?: number) => call(client.score as Unary<ScoreRequest, ScoreResponse>, { model: '', items: [], ...request }, timeoutMs);
const compare = (request: Partial<CompareRequest>) =>
  call(client.compare as Unary<CompareRequest, CompareResponse>, { model: '', prompt: '', responseA: '', responseB: '', category: '', ...request });
const loadModel = (request: Partial<LoadModelRequest>) =>
  call(client.loadModel as Unary<LoadModelRequest, LoadModelResponse>, { model: '', makeCurrent: false, keepPrevious: false, ...request }, 30_000);
const listModels = () => call(client.listModels as Unary<object, ListModelsResponse>, {});

/**
 * Scores as the model gives them alone, to float32 rounding: in a batch with others, an item's
 * sequence goes through matrix products of another shape, which can round its last bit differently.
 */
function expectScores(actual: number[], expected: number[]): void {
  expect(actual).toHaveLength(expected.length);
  actual.forEach((score, i) => expect(Math.abs(score - expected[i])).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(expected[i]))));
}

const item = (response: string, prompt = 'What moves bond yields?'): TextRewardItem => ({ prompt, response });
const wire = (items: TextRewardItem[]) => items.map((i) => ({ prompt: i.prompt, response: i.response, category: i.category ?? '' }));

beforeAll(async () => {
  await initBackend();
  await commitModel(A, true, 31);
  await commitModel(B, true, 32);
  await commitModel(LM, false, 33);
  for (const id of [A, B]) reference.set(id, await loadRewardModel(id, { store }));
  models = new RewardModels(instrumentedLoader, { batching: { windowMs: 20, maxBatch: 64 } });
  await models.load(A, { makeCurrent: true });
  app = await NestFactory.create(RewardAppModule, { logger: false });
  address = `127.0.0.1:${await freePort()}`;
  await startRewardGrpc(app, new RewardScoring(models, { maxItems: 8, maxItemBytes: 1024 }), address);
  await app.init();
  client = createRewardClient(address);
});

afterAll(async () => {
  client?.close();
  await app?.close();
  for (const served of reference.values()) served.dispose();
  rmSync(dir, { recursive: true, force: true });
});

describe('RewardService over a real NestJS gRPC server', () => {
  it('batches concurrent callers: 8 single-item calls take fewer scorer calls than 8, each caller gets exactly its own scores', async () => {
    const items = Array.from({ length: 8 }, (_, i) => item(`yields rise ${i} ${'%'.repeat(i)}`));
    const before = logs.get(A)!.calls.length;
    const responses = await Promise.all(items.map((i) => score({ model: '', items: wire([i]) })));
    const calls = logs.get(A)!.calls.slice(before);
    expect(calls.length).toBeLessThan(8);
    expect(calls.flatMap((c) => c.responses).sort()).toEqual(items.map((i) => i.response).sort());
    for (const [i, response] of responses.entries()) {
      expect(response.model).toBe(A);
      expectScores(response.scores, [await alone(A, items[i])]);
    }
  });

  it('answers a call past its deadline with DEADLINE_EXCEEDED, drops its queued items and leaves the other callers alone', async () => {
    slowMs.set(A, 400);
    try {
      const log = logs.get(A)!;
      const before = log.calls.length;
      const started = performance.now();
      const first = score({ items: wire([item('first, slow')]) });
      await new Promise((resolve) => setTimeout(resolve, 100));
      // Both queue behind the slow batch; one of them can wait only 150 ms.
      const late = score({ items: wire([item('gives up')]) }, 150).then(
        () => 'answered',
        (error: ServiceError) => ({ code: error.code, after: performance.now() - started }),
      );
      const patient = score({ items: wire([item('waits')]) });
      expect(await late).toEqual({ code: status.DEADLINE_EXCEEDED, after: expect.any(Number) });
      expect(((await late) as { after: number }).after).toBeLessThan(400);
      expectScores((await first).scores, [await alone(A, item('first, slow'))]);
      expectScores((await patient).scores, [await alone(A, item('waits'))]);
      const scored = log.calls.slice(before).flatMap((c) => c.responses);
      expect(scored).toEqual(['first, slow', 'waits']);
    } finally {
      slowMs.delete(A);
    }
  });

  it('refuses with clear statuses: NOT_FOUND, RESOURCE_EXHAUSTED, INVALID_ARGUMENT naming the item and the limit, INTERNAL', async () => {
    const refusal = (promise: Promise<unknown>) => promise.then(() => 'answered', (error: ServiceError) => ({ code: error.code, details: error.details }));
    expect(await refusal(score({ model: 'other/engine.rm', items: wire([item('a')]) }))).toEqual({
      code: status.NOT_FOUND,
      details: `reward model "other/engine.rm" is not served here; this service scores with "${A}" (LoadModel loads another; leave model empty for the current one)`,
    });
    expect(await refusal(score({ items: wire(Array.from({ length: 9 }, (_, i) => item(`r${i}`))) }))).toEqual({
      code: status.RESOURCE_EXHAUSTED,
      details: '9 items in one request; at most 8 (split the batch)',
    });
    expect(await refusal(score({ items: wire([item('a'), item('x'.repeat(1024))]) }))).toEqual({
      code: status.INVALID_ARGUMENT,
      details: `item 1: prompt and response are ${(1024 + item('').prompt.length).toLocaleString('en-US')} bytes of UTF-8; at most 1,024 bytes (1 KiB) per item`,
    });
    failNextCall = true;
    expect(await refusal(score({ items: wire([item('a')]) }))).toEqual({ code: status.INTERNAL, details: `scoring with ${A} failed: tensor allocation failed` });
    expect(await refusal(loadModel({ model: 'nothing/engine.rm' }))).toMatchObject({ code: status.NOT_FOUND, details: expect.stringContaining('checkpoint nothing/engine.rm not found') });
    expect(await refusal(loadModel({ model: LM }))).toMatchObject({ code: status.FAILED_PRECONDITION, details: expect.stringContaining('no value head') });
    // Still serving after all of that.
    expectScores((await score({ items: wire([item('ok')]) })).scores, [await alone(A, item('ok'))]);
  });

  it('Compare prefers the higher score, with margin score_a − score_b exactly', async () => {
    const prompt = 'Is a 5% coupon bond worth more when rates fall?';
    const good = 'Yes: its price rises as yields fall.';
    const bad = 'No idea.';
    const [scoreGood, scoreBad] = [await alone(A, item(good, prompt)), await alone(A, item(bad, prompt))];
    expect(Math.abs(scoreGood - scoreBad)).toBeGreaterThan(1e-4);
    const forward = await compare({ prompt, responseA: good, responseB: bad, category: 'finance-bonds' });
    expect(forward).toMatchObject({ preferred: scoreGood > scoreBad ? 'PREFERENCE_A' : 'PREFERENCE_B', model: A });
    expectScores([forward.scoreA, forward.scoreB], [scoreGood, scoreBad]);
    expect(forward.margin).toBe(forward.scoreA - forward.scoreB);
    const swapped = await compare({ prompt, responseA: bad, responseB: good });
    expect(swapped.preferred).toBe(scoreBad > scoreGood ? 'PREFERENCE_A' : 'PREFERENCE_B');
    expect(swapped.preferred).not.toBe(forward.preferred);
    expect(swapped.margin).toBe(swapped.scoreA - swapped.scoreB);
    expect(swapped.margin).toBeCloseTo(-forward.margin, 6);
  });

  it('reflection lists every RewardService method', async () => {
    const proto = require.resolve('@grpc/reflection/build/proto/grpc/reflection/v1alpha/reflection.proto');
    type Stream = NodeJS.ReadWriteStream & { write(request: object): boolean; end(): void };
    const pkg = loadPackageDefinition(loadSync(proto, { oneofs: true })) as never as {
      grpc: { reflection: { v1alpha: { ServerReflection: new (address: string, creds: unknown) => Client & { serverReflectionInfo(): Stream } } } };
    };
    const reflection = new pkg.grpc.reflection.v1alpha.ServerReflection(address, credentials.createInsecure());
    const ask = (request: object) =>
      new Promise<{ listServicesResponse?: { service: { name: string }[] }; fileDescriptorResponse?: { fileDescriptorProto: Buffer[] } }>((resolve, reject) => {
        const stream = reflection.serverReflectionInfo();
        stream.on('data', (answer) => {
          resolve(answer);
          stream.end();
        });
        stream.on('error', reject);
        stream.write(request);
      });
    const listed = await ask({ listServices: '' });
    expect(listed.listServicesResponse?.service.map((s) => s.name).sort()).toEqual(['grpc.health.v1.Health', 'xuanyuan.v1.RewardService']);
    const file = await ask({ fileContainingSymbol: 'xuanyuan.v1.RewardService' });
    const descriptor = fromBinary(FileDescriptorProtoSchema, file.fileDescriptorResponse!.fileDescriptorProto[0]);
    const service = descriptor.service.find((s) => s.name === 'RewardService')!;
    expect(service.method.map((m) => `${m.name}(${m.inputType}) ${m.outputType}`)).toEqual([
      'Score(.xuanyuan.v1.ScoreRequest) .xuanyuan.v1.ScoreResponse',
      'Compare(.xuanyuan.v1.CompareRequest) .xuanyuan.v1.CompareResponse',
      'LoadModel(.xuanyuan.v1.LoadModelRequest) .xuanyuan.v1.LoadModelResponse',
      'UnloadModel(.xuanyuan.v1.UnloadModelRequest) .xuanyuan.v1.UnloadModelResponse',
      'ListModels(.xuanyuan.v1.ListModelsRequest) .xuanyuan.v1.ListModelsResponse',
    ]);
    reflection.close();
  });

  it('swaps to a second checkpoint under load: no call fails, each is scored wholly by the old or the new model, the old one is disposed after its calls end', async () => {
    slowMs.set(A, 60);
    const results: { response?: ScoreResponse; error?: ServiceError; items: TextRewardItem[]; endedAt: number }[] = [];
    let stop = false;
    let swappedAt = Infinity;
    const caller = async (c: number): Promise<void> => {
      for (let n = 0; !stop; n++) {
        const items = [item(`caller ${c} call ${n}`), item(`caller ${c} call ${n}, second item ${'!'.repeat(c)}`)];
        try {
          results.push({ response: await score({ items: wire(items) }), items, endedAt: performance.now() });
        } catch (error) {
          results.push({ error: error as ServiceError, items, endedAt: performance.now() });
        }
      }
    };
    const callers = Array.from({ length: 6 }, (_, c) => caller(c));
    await new Promise((resolve) => setTimeout(resolve, 200));
    const swap = await loadModel({ model: B, makeCurrent: true });
    swappedAt = performance.now();
    expect(swap).toMatchObject({ loaded: { model: B, current: true, contextLength: 48 }, previous: A });
    await new Promise((resolve) => setTimeout(resolve, 300));
    stop = true;
    await Promise.all(callers);
    slowMs.delete(A);

    expect(results.filter((r) => r.error).map((r) => r.error!.details)).toEqual([]);
    const byModel = (id: string) => results.filter((r) => r.response!.model === id);
    expect(byModel(A).length + byModel(B).length).toBe(results.length);
    expect(byModel(A).length).toBeGreaterThan(0);
    expect(byModel(B).length).toBeGreaterThan(0);
    // Calls admitted on A before the swap were answered by A after it.
    expect(byModel(A).some((r) => r.endedAt > swappedAt)).toBe(true);
    for (const r of results) {
      const expected = await Promise.all(r.items.map((i) => alone(r.response!.model, i)));
      expectScores(r.response!.scores, expected);
    }
    await models.drained();
    const a = logs.get(A)!;
    expect(a.disposedAt).toBeDefined();
    expect(a.disposedAt!).toBeGreaterThanOrEqual(Math.max(...a.calls.map((c) => c.endedAt)));
    expect(a.scoredAfterDispose).toBe(false);
    const listed = await listModels();
    expect(listed.current).toBe(B);
    expect(listed.models.map((m) => [m.model, m.current, m.inFlight])).toEqual([[B, true, 0]]);
    await expect(score({ model: A, items: wire([item('a')]) })).rejects.toMatchObject({ code: status.NOT_FOUND });
  });
});
