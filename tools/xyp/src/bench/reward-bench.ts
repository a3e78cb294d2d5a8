/**
 * `xyp bench reward`: `RewardService.Score` served by a real NestJS gRPC server in this process (the
 * reward app's module and start-up, `serveRewardService`), on a small reward model built here with
 * random weights (the figures measure speed; its scores mean nothing). Two servers load the same
 * checkpoint side by side: one with the service's cross-caller batching (5 ms window, 64 items), one
 * without (window 0, max batch 1). Measured:
 * - Score pairs/s with one caller at batch 1, 8 and 64 items per call, on both servers, and the same
 *   batches scored in process (no gRPC);
 * - 16 concurrent callers of single-item calls: pairs/s, p50 and p99 latency on both servers, in
 *   alternating rounds (ABBA), and the batching gain = batched pairs/s ÷ unbatched pairs/s.
 * Client and server share this process and its event loop: the gRPC figures include the client's work.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Module, type DynamicModule, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Metadata, type ServiceError } from '@grpc/grpc-js';
import type { TextRewardItem } from '@xyp/contracts';
import { ArtifactStoreSink, checkpointManifest, countParams, disposeModel, initBackend, initParams, saveModel, type BackendInfo, type BackendOptions } from '@xyp/engine';
import type { ScoreRequest, ScoreResponse } from '@xyp/grpc';
import {
  DEFAULT_BATCH_WINDOW_MS,
  DEFAULT_MAX_BATCH,
  RewardGrpcModule,
  createRewardClient,
  loadRewardModel,
  serveRewardService,
  type BatchingRewardOptions,
  type RewardClient,
  type ServedRewardService,
} from '@xyp/reward-serving';
import { ARTIFACT_STORE, createArtifactStore, type ArtifactStore } from '@xyp/storage';

export interface RewardBenchSize {
  layers: number;
  width: number;
  heads: number;
  context: number;
}

/** Small enough for a default run under a minute on 2 cores, big enough that scoring, not gRPC, dominates a batch of 64. */
export const DEFAULT_REWARD_BENCH_SIZE: RewardBenchSize = { layers: 2, width: 64, heads: 4, context: 128 };

export interface RewardBenchOptions {
  size?: RewardBenchSize;
  /** Seconds per measurement (each batch size on each server; each concurrent round on each server). */
  seconds?: number;
  /** Concurrent callers (default 16). */
  callers?: number;
  /** Rounds per server of the concurrent comparison, alternating (default 2: A B B A). */
  rounds?: number;
  backend?: BackendOptions;
  /** Weights seed of the random reward model (default 7). */
  seed?: number;
  onProgress?: (line: string) => void;
}

export interface ThroughputFigures {
  pairsPerSecond: number;
  callsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
}

export interface RewardBenchReport {
  model: { layers: number; width: number; heads: number; context: number; vocab: number; parameters: number; weights: string };
  backend: BackendInfo;
  transport: string;
  secondsPerMeasurement: number;
  batching: { windowMs: number; maxBatch: number };
  score: { batch: number; inProcessPairsPerSecond: number; batched: ThroughputFigures; unbatched: ThroughputFigures }[];
  concurrent: {
    callers: number;
    itemsPerCall: number;
    rounds: number;
    batched: ThroughputFigures & { meanBatch: number };
    unbatched: ThroughputFigures & { meanBatch: number };
  };
  /** Pairs/s of the concurrent single-item callers with batching ÷ without. */
  batchingGain: number;
}

const BATCH_SIZES = [1, 8, 64];
const UNBATCHED: BatchingRewardOptions = { windowMs: 0, maxBatch: 1 };

const TOPICS = ['bond yields', 'the prime rate', 'a 5% coupon', 'quarterly earnings', 'FX hedging', 'credit spreads', 'a margin call', 'ETF fees'];
const ANSWERS = ['They rise when rates rise.', 'It depends on the duration.', 'Check the prospectus first.', 'No.', 'Diversify across maturities and issuers.'];

/** Prompt/response pairs of varied length (deterministic). */
function benchItems(count: number): TextRewardItem[] {
  return Array.from({ length: count }, (_, i) => ({
    prompt: `Q${i}: what should an investor know about ${TOPICS[i % TOPICS.length]}?`,
    response: `${ANSWERS[i % ANSWERS.length]} ${'In short, it varies. '.repeat(i % 4)}`.trim(),
  }));
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no free port'))));
    });
  });
}

function scoreCall(client: RewardClient, items: TextRewardItem[]): Promise<ScoreResponse> {
  const request: ScoreRequest = { model: '', items: items.map((i) => ({ prompt: i.prompt, response: i.response, category: '' })) };
  return new Promise((resolve, reject) => {
    client.score(request, new Metadata(), { deadline: new Date(Date.now() + 60_000) }, (error: ServiceError | null, response: ScoreResponse) => (error ? reject(error) : resolve(response)));
  });
}

const quantile = (sorted: number[], q: number): number => (sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]);
const round = (x: number, digits = 1): number => Number(x.toFixed(digits));

/** Calls of `items` per call by `callers` concurrent loops for `seconds`; pairs/s and call latencies. */
async function drive(client: RewardClient, pool: TextRewardItem[], callers: number, itemsPerCall: number, seconds: number): Promise<{ pairs: number; calls: number; elapsed: number; latencies: number[] }> {
  const latencies: number[] = [];
  let pairs = 0;
  let next = 0;
  const started = performance.now();
  const end = started + seconds * 1000;
  const loop = async (): Promise<void> => {
    while (performance.now() < end) {
      const items = Array.from({ length: itemsPerCall }, () => pool[next++ % pool.length]);
      const t0 = performance.now();
      const response = await scoreCall(client, items);
      latencies.push(performance.now() - t0);
      pairs += response.scores.length;
    }
  };
  await Promise.all(Array.from({ length: callers }, loop));
  return { pairs, calls: latencies.length, elapsed: (performance.now() - started) / 1000, latencies };
}

function figures(runs: { pairs: number; calls: number; elapsed: number; latencies: number[] }[]): ThroughputFigures {
  const pairs = runs.reduce((a, r) => a + r.pairs, 0);
  const calls = runs.reduce((a, r) => a + r.calls, 0);
  const elapsed = runs.reduce((a, r) => a + r.elapsed, 0);
  const sorted = runs.flatMap((r) => r.latencies).sort((a, b) => a - b);
  return { pairsPerSecond: round(pairs / elapsed), callsPerSecond: round(calls / elapsed), p50Ms: round(quantile(sorted, 0.5), 2), p99Ms: round(quantile(sorted, 0.99), 2) };
}

interface BenchServer {
  app: INestApplication;
  served: ServedRewardService;
  client: RewardClient;
}

@Module({})
class RewardBenchApp {}

/** The reward app's gRPC side, as `apps/reward` builds it: a Nest app with the store, `serveRewardService` on a free port. */
async function startServer(store: ArtifactStore, checkpoint: string, backend: BackendOptions, batching: BatchingRewardOptions): Promise<BenchServer> {
  const module: DynamicModule = { module: RewardBenchApp, imports: [RewardGrpcModule], providers: [{ provide: ARTIFACT_STORE, useValue: store }] };
  const app = await NestFactory.create(module, { logger: false });
  const url = `127.0.0.1:${await freePort()}`;
  const served = await serveRewardService(app, { checkpoint, url, backend, batching });
  if (!served) throw new Error('bench reward: the reward service did not start');
  await app.init();
  return { app, served, client: createRewardClient(url) };
}

export async function runRewardBench(options: RewardBenchOptions = {}): Promise<RewardBenchReport> {
  const size = options.size ?? DEFAULT_REWARD_BENCH_SIZE;
  const seconds = options.seconds ?? 2;
  const callers = options.callers ?? 16;
  const rounds = options.rounds ?? 2;
  const seed = options.seed ?? 7;
  const say = options.onProgress ?? (() => undefined);
  const backendOptions = options.backend ?? {};
  const backend = await initBackend(backendOptions);
  const dir = mkdtempSync(join(tmpdir(), 'xyp-bench-reward-'));
  const servers: BenchServer[] = [];
  try {
    const store = createArtifactStore({ kind: 'local', root: dir });
    const config = { vocabSize: 260, contextLength: size.context, layers: size.layers, width: size.width, heads: size.heads, lmHead: false, valueHead: true };
    const model = initParams(config, seed);
    const sink = new ArtifactStoreSink(store, 'bench-reward', 'engine.rm');
    await saveModel(sink, model);
    await store.commitManifest(checkpointManifest(sink));
    disposeModel(model);
    const checkpoint = sink.id;
    const parameters = countParams(model.config).total;
    say(`reward model ${checkpoint}: ${size.layers}L/${size.width}w/${size.heads}h/ctx ${size.context}, ${parameters} params, random weights (seed ${seed})`);

    const batched = await startServer(store, checkpoint, backendOptions, {});
    const unbatched = await startServer(store, checkpoint, backendOptions, UNBATCHED);
    servers.push(batched, unbatched);
    const pool = benchItems(256);
    say('warming up');
    for (const server of servers) await drive(server.client, pool, 4, 8, Math.min(1, seconds / 2));

    const inProcess = await loadRewardModel(checkpoint, { store, backend: backendOptions });
    const score: RewardBenchReport['score'] = [];
    try {
      for (const batch of BATCH_SIZES) {
        say(`Score, one caller, batch ${batch}`);
        let scored = 0;
        const started = performance.now();
        while (performance.now() - started < (seconds * 1000) / 2) scored += (await inProcess.score(pool.slice(0, batch))).length;
        const inProcessPairsPerSecond = round(scored / ((performance.now() - started) / 1000));
        const withBatching = figures([await drive(batched.client, pool, 1, batch, seconds)]);
        const without = figures([await drive(unbatched.client, pool, 1, batch, seconds)]);
        score.push({ batch, inProcessPairsPerSecond, batched: withBatching, unbatched: without });
      }
    } finally {
      inProcess.dispose();
    }

    const runs = new Map<BenchServer, Awaited<ReturnType<typeof drive>>[]>(servers.map((s) => [s, []]));
    const statsBefore = new Map(servers.map((s) => [s, s.served.models.batchingStats() ?? { calls: 0, items: 0 }]));
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? [batched, unbatched] : [unbatched, batched];
      for (const server of order) {
        say(`${callers} concurrent single-item callers, round ${r + 1}/${rounds}, ${server === batched ? 'batched' : 'unbatched'}`);
        runs.get(server)!.push(await drive(server.client, pool, callers, 1, seconds));
      }
    }
    const meanBatch = (server: BenchServer): number => {
      const before = statsBefore.get(server)!;
      const after = server.served.models.batchingStats() ?? before;
      return round((after.items - before.items) / Math.max(1, after.calls - before.calls), 2);
    };
    const concurrentBatched = { ...figures(runs.get(batched)!), meanBatch: meanBatch(batched) };
    const concurrentUnbatched = { ...figures(runs.get(unbatched)!), meanBatch: meanBatch(unbatched) };
    return {
      model: { ...size, vocab: 260, parameters, weights: `random init (seed ${seed}): the figures measure speed; the scores mean nothing` },
      backend,
      transport: 'gRPC over 127.0.0.1 (NestJS server, grpc-js client), client and server in this process',
      secondsPerMeasurement: seconds,
      batching: { windowMs: DEFAULT_BATCH_WINDOW_MS, maxBatch: DEFAULT_MAX_BATCH },
      score,
      concurrent: { callers, itemsPerCall: 1, rounds, batched: concurrentBatched, unbatched: concurrentUnbatched },
      batchingGain: round(concurrentBatched.pairsPerSecond / Math.max(1e-9, concurrentUnbatched.pairsPerSecond), 2),
    };
  } finally {
    for (const server of servers) {
      server.client.close();
      await server.app.close();
    }
    rmSync(dir, { recursive: true, force: true });
  }
}
