import { Module, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EngineJob, TextReward } from '@xyp/contracts';
import { initBackend } from '@xyp/engine';
import { runInThread } from '@xyp/offload';
import { RewardGrpcModule, createRewardClient, rewardServiceScorer, serveRewardService, type RewardClient } from '@xyp/reward-serving';
import { ARTIFACT_STORE, type ArtifactStoreOptions, createArtifactStore } from '@xyp/storage';
import { freePort } from '@xyp/testing';
import { LocalEngine } from './local-engine';
import { commitFreshModel } from './testing/fresh-checkpoint';
import { TRAINING_JOB_TASK, type TrainingJobInput } from './thread-task';

const dir = mkdtempSync(join(tmpdir(), 'xyp-ppo-reward-service-'));
const storeOptions: ArtifactStoreOptions = { kind: 'local', root: join(dir, 'store') };
const store = createArtifactStore(storeOptions);
const RM = 'reward-grpc/engine.rm';
const POLICY = 'reward-grpc/engine.lm';
let app: INestApplication;
let address = '';
let client: RewardClient;

@Module({ imports: [RewardGrpcModule], providers: [{ provide: ARTIFACT_STORE, useValue: store }] })
class RewardAppModule {}

beforeAll(async () => {
  await initBackend();
  await commitFreshModel(store, RM, true, 21);
  await commitFreshModel(store, POLICY, false, 22);
  // The reward app's gRPC side: a Nest app with the ArtifactStore, RewardService.Score on a real gRPC server.
  app = await NestFactory.create(RewardAppModule, { logger: false });
  address = `127.0.0.1:${await freePort()}`;
  expect((await serveRewardService(app, { checkpoint: RM, url: address }))?.id).toBe(RM);
  await app.init();
  client = createRewardClient(address);
});

afterAll(async () => {
  client?.close();
  await app?.close();
  rmSync(dir, { recursive: true, force: true });
});

const modelSha = (job: EngineJob): string | undefined => (job.engine === 'local' ? job.manifest.artifacts.find((a) => a.name === 'model.safetensors')?.sha256 : undefined);
const metricsOf = (job: EngineJob): Record<string, number> => (job.engine === 'local' ? { ...job.metrics, seconds: 0 } : {});

describe('PPO scored through RewardService.Score (real gRPC server and client)', () => {
  const prompts = join(dir, 'prompts.jsonl');
  writeFileSync(prompts, ['rate?', 'trend?', 'bond yield?'].map((prompt) => JSON.stringify({ prompt })).join('\n'));
  const spec = { data: { jsonl: prompts }, policy: POLICY, rewardModel: RM, rounds: 2, promptsPerRound: 2, samplesPerPrompt: 3, maxTokens: 6, seed: 5 };

  it('scores every round in one batched call and trains exactly as with the reward model in process', async () => {
    const engine = new LocalEngine({ store });
    const remote = rewardServiceScorer(client, { model: RM });
    const calls: number[] = [];
    const counted: TextReward = async (batch, options) => {
      calls.push(batch.length);
      return remote(batch, options);
    };
    const overGrpc = await engine.runPpo({ ...spec, runId: 'ppo-over-grpc' }, { reward: counted });
    const inProcess = await engine.runPpo({ ...spec, runId: 'ppo-in-process' });
    expect(calls).toHaveLength(2);
    for (const n of calls) expect(n).toBeGreaterThan(0);
    expect(metricsOf(overGrpc)).toEqual(metricsOf(inProcess));
    expect(modelSha(overGrpc)).toBe(modelSha(inProcess));

    // The same PPO job in a worker thread, its client to the service opened in that thread.
    const threaded = await runInThread<TrainingJobInput, EngineJob>(TRAINING_JOB_TASK, {
      kind: 'ppo',
      spec: { ...spec, runId: 'ppo-threaded-grpc' },
      store: storeOptions,
      rewardService: { address, model: RM },
    });
    expect(metricsOf(threaded)).toEqual(metricsOf(inProcess));
  });

  it('answers a request for a model it does not serve with NOT_FOUND', async () => {
    await expect(rewardServiceScorer(client, { model: 'other/engine.rm' })([{ prompt: 'a', response: 'b' }])).rejects.toThrow(
      /reward model "other\/engine.rm" is not served here; this service scores with "reward-grpc\/engine.rm".*\(NOT_FOUND\)/,
    );
    const scores = await rewardServiceScorer(client)([{ prompt: 'rate?', response: '5%' }, { prompt: 'rate?', response: 'no idea' }]);
    expect(scores).toHaveLength(2);
    expect(scores[0]).not.toBe(scores[1]);
    const bare = await NestFactory.create(RewardAppModule, { logger: false });
    expect(await serveRewardService(bare, { url: '127.0.0.1:0' })).toBeUndefined();
    await bare.close();
  });
});
