import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Server, ServerCredentials, status, type ServerUnaryCall, type sendUnaryData } from '@grpc/grpc-js';
import { beforeAll, describe, expect, it } from 'vitest';
import type { TextReward, TextRewardItem } from '@xyp/contracts';
import { ArtifactStoreSink, checkpointManifest, disposeModel, initBackend, initParams, saveModel } from '@xyp/engine';
import { RewardServiceClient, type ScoreRequest, type ScoreResponse } from '@xyp/grpc';
import { LocalDirectoryStore } from '@xyp/storage';
import { createRewardClient, rewardServiceScorer } from './reward-client';
import { loadRewardModel } from './reward-model-scorer';
import { RewardModels } from './reward-models';
import { DEFAULT_MAX_ITEM_BYTES, RewardScoring, checkScoreItems } from './reward-service';
import { RewardServiceError } from './reward-service-error';

const dir = mkdtempSync(join(tmpdir(), 'xyp-reward-serving-'));
const store = new LocalDirectoryStore(dir);

beforeAll(async () => {
  await initBackend();
  const model = initParams({ vocabSize: 260, contextLength: 48, layers: 1, width: 16, heads: 2, lmHead: false, valueHead: true }, 11);
  const sink = new ArtifactStoreSink(store, 'serving-rm', 'engine.rm');
  await saveModel(sink, model);
  expect((await store.commitManifest(checkpointManifest(sink))).committed).toBe(true);
  disposeModel(model);
  const lm = new ArtifactStoreSink(store, 'serving-lm', 'engine.lm');
  const lmModel = initParams({ vocabSize: 260, contextLength: 48, layers: 1, width: 16, heads: 2 }, 12);
  await saveModel(lm, lmModel);
  await store.commitManifest(checkpointManifest(lm));
  disposeModel(lmModel);
  return () => rmSync(dir, { recursive: true, force: true });
});

const items: TextRewardItem[] = [
  { prompt: 'rate?', response: '5%', category: 'finance' },
  { prompt: 'trend?', response: 'up 3% this quarter' },
  { prompt: 'hi', response: 'hello' },
];

describe('RewardScoring (Score without the transport)', () => {
  it('scores with the loaded reward model under its checkpoint id, and refuses what it cannot serve', async () => {
    const served = await loadRewardModel('serving-rm/engine.rm', { store });
    expect(served).toMatchObject({ id: 'serving-rm/engine.rm', contextLength: 48, weightsSha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    const scoring = new RewardScoring(RewardModels.serving(served), { maxItems: 3 });
    const direct = await served.score(items);
    const response = await scoring.score({ model: '', items: items.map((i) => ({ ...i, category: i.category ?? '' })) });
    expect(response).toEqual({ scores: direct, model: 'serving-rm/engine.rm' });
    expect((await scoring.score({ model: 'serving-rm/engine.rm', items: [] })).scores).toEqual([]);
    await expect(scoring.score({ model: 'other/engine.rm', items: [] })).rejects.toMatchObject({ code: status.NOT_FOUND, message: expect.stringContaining('"other/engine.rm" is not served here') });
    const four = [...items, items[0]].map((i) => ({ ...i, category: '' }));
    await expect(scoring.score({ model: '', items: four })).rejects.toMatchObject({ code: status.RESOURCE_EXHAUSTED });
    // An empty response is scored, as in process (a PPO rollout may decode to no text).
    const empty = await scoring.score({ model: '', items: [{ prompt: 'p', response: '', category: '' }] });
    expect(empty.scores).toEqual(await served.score([{ prompt: 'p', response: '' }]));
    const failing = new RewardScoring(RewardModels.serving({ id: 'x', score: async () => Promise.reject(new Error('out of memory')) }));
    await expect(failing.score({ model: '', items: [{ prompt: 'p', response: 'r', category: '' }] })).rejects.toEqual(new RewardServiceError(status.INTERNAL, 'scoring with x failed: out of memory'));
    await expect(loadRewardModel('serving-lm/engine.lm', { store })).rejects.toMatchObject({
      code: status.FAILED_PRECONDITION,
      message: 'reward model serving-lm/engine.lm: the checkpoint has no value head (not a reward model)',
    });
    await expect(loadRewardModel('nothing-here/engine.rm', { store })).rejects.toMatchObject({ code: status.NOT_FOUND, message: expect.stringContaining('checkpoint nothing-here/engine.rm not found') });
    await expect(loadRewardModel('not an id', { store })).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
    await scoring.models.close();
  });

  it('checks each item: prompt plus response fit 64 KiB of UTF-8', () => {
    expect(DEFAULT_MAX_ITEM_BYTES).toBe(65_536);
    const fits = { prompt: 'é'.repeat(16_384), response: 'x'.repeat(32_768) };
    expect(checkScoreItems([fits])).toEqual([{ ...fits, category: undefined }]);
    expect(() => checkScoreItems([fits, { ...fits, response: `${fits.response}y` }])).toThrow('item 1: prompt and response are 65,537 bytes of UTF-8; at most 65,536 bytes (64 KiB) per item');
    expect(() => checkScoreItems([{ prompt: 'p', response: 'abc' }], { maxItemBytes: 3 })).toThrow('item 0: prompt and response are 4 bytes of UTF-8; at most 3 bytes per item');
    expect(checkScoreItems([{ prompt: 'p' }])).toEqual([{ prompt: 'p', response: '', category: undefined }]);
  });
});

describe('rewardServiceScorer: the same TextReward over gRPC', () => {
  let server: Server;
  let address = '';
  const requests: ScoreRequest[] = [];
  let slow = false;
  /** A scorer whose scores are easy to check: the response length plus the item's index in its call. */
  const byLength: TextReward = async (batch) => batch.map((item, i) => item.response.length + i / 100);

  beforeAll(async () => {
    const scoring = new RewardScoring(RewardModels.serving({ id: 'lengths', score: byLength }));
    server = new Server();
    server.addService(RewardServiceClient.service, {
      score: (call: ServerUnaryCall<ScoreRequest, ScoreResponse>, callback: sendUnaryData<ScoreResponse>) => {
        requests.push(call.request);
        const answer = () =>
          scoring.score(call.request).then(
            (response) => callback(null, response),
            (error: RewardServiceError) => callback({ code: error.code, details: error.message, name: error.name, message: error.message }),
          );
        if (slow) setTimeout(answer, 5_000);
        else void answer();
      },
    });
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
    address = `127.0.0.1:${port}`;
    return () => server.forceShutdown();
  });

  it('sends a batch (in chunks of maxItemsPerCall) and returns the scores in order', async () => {
    const client = createRewardClient(address);
    const reward = rewardServiceScorer(client, { maxItemsPerCall: 2 });
    const batch = Array.from({ length: 5 }, (_, i) => ({ prompt: 'p', response: 'x'.repeat(i + 1), category: i % 2 ? 'finance' : undefined }));
    requests.length = 0;
    expect(await reward(batch)).toEqual([1, 2.01, 3, 4.01, 5]);
    expect(requests.map((r) => r.items.length)).toEqual([2, 2, 1]);
    expect(requests[0].items[1]).toEqual({ prompt: 'p', response: 'xx', category: 'finance' });
    expect(await reward([])).toEqual([]);
    client.close();
  });

  it('rejects with the service’s message and status, and cancels the call in flight on abort', async () => {
    const client = createRewardClient(address);
    await expect(rewardServiceScorer(client, { model: 'other' })(items)).rejects.toThrow(/RewardService.Score: reward model "other" is not served here.*\(NOT_FOUND\)/);
    slow = true;
    const cancel = new AbortController();
    setTimeout(() => cancel.abort(new Error('PPO round cancelled')), 100);
    const started = performance.now();
    await expect(rewardServiceScorer(client)(items, { signal: cancel.signal })).rejects.toThrow('PPO round cancelled');
    expect(performance.now() - started).toBeLessThan(2_000);
    await expect(rewardServiceScorer(client, { timeoutMs: 200 })(items)).rejects.toThrow(/DEADLINE_EXCEEDED/);
    slow = false;
    client.close();
  });
});
