/**
 * `RewardService` as a NestJS gRPC controller and module, and `serveRewardService`, which loads the
 * start-up reward model and starts the gRPC server (health and reflection included) on a Nest app.
 * The reward app only imports `RewardGrpcModule` and calls `serveRewardService` with its configuration.
 */
import { Controller, Injectable, Logger, Module, type INestApplication, type OnApplicationShutdown } from '@nestjs/common';
import { RpcException } from '@nestjs/microservices';
import { status, type Metadata } from '@grpc/grpc-js';
import type { BackendOptions } from '@xyp/engine';
import type { GrpcServerSecurity } from '@xyp/config';
import {
  REWARD_PROTO,
  RewardServiceControllerMethods,
  grpcServerOptions,
  type CompareRequest,
  type CompareResponse,
  type ListModelsResponse,
  type LoadModelRequest,
  type LoadModelResponse,
  type RewardServiceController,
  type ScoreRequest,
  type ScoreResponse,
  type UnloadModelRequest,
  type UnloadModelResponse,
} from '@xyp/grpc';
import { ARTIFACT_STORE, type ArtifactStore } from '@xyp/storage';
import type { BatchingRewardOptions } from './batching-reward';
import { callSignal, type ServerCallLike } from './call-signal';
import { loadRewardModel } from './reward-model-scorer';
import { RewardModels } from './reward-models';
import { RewardScoring, type RewardScoringOptions } from './reward-service';
import { RewardServiceError } from './reward-service-error';

/** The scoring the gRPC controller answers with, set once the start-up model is loaded; its models are freed at shutdown. */
@Injectable()
export class RewardScoringHolder implements OnApplicationShutdown {
  scoring: RewardScoring | undefined;

  async onApplicationShutdown(): Promise<void> {
    await this.scoring?.models.close();
  }
}

/**
 * gRPC `RewardService`: each call is one call of `RewardScoring`, with the call's deadline and
 * cancellation as its AbortSignal (`callSignal`; NestJS passes the grpc-js call as the third argument).
 */
@Controller()
@RewardServiceControllerMethods()
export class RewardController implements RewardServiceController {
  constructor(private readonly holder: RewardScoringHolder) {}

  score(request: ScoreRequest, _metadata?: Metadata, call?: ServerCallLike): Promise<ScoreResponse> {
    return this.answer(call, (scoring, signal) => scoring.score(request, signal));
  }

  compare(request: CompareRequest, _metadata?: Metadata, call?: ServerCallLike): Promise<CompareResponse> {
    return this.answer(call, (scoring, signal) => scoring.compare(request, signal));
  }

  /** Not aborted at the deadline: a load that finishes late still serves the model (LoadModel is idempotent). */
  loadModel(request: LoadModelRequest): Promise<LoadModelResponse> {
    return this.answer(undefined, (scoring) => scoring.loadModel(request));
  }

  unloadModel(request: UnloadModelRequest): Promise<UnloadModelResponse> {
    return this.answer(undefined, async (scoring) => scoring.unloadModel(request));
  }

  listModels(): Promise<ListModelsResponse> {
    return this.answer(undefined, async (scoring) => scoring.listModels());
  }

  private async answer<T>(call: ServerCallLike | undefined, work: (scoring: RewardScoring, signal: AbortSignal) => Promise<T>): Promise<T> {
    const scoring = this.holder.scoring;
    if (!scoring) throw new RpcException({ code: status.UNAVAILABLE, message: 'no reward model is loaded (XYP_REWARD_CHECKPOINT)' });
    const { signal, done } = callSignal(call);
    try {
      return await work(scoring, signal);
    } catch (error) {
      if (error instanceof RewardServiceError) throw new RpcException({ code: error.code, message: error.message });
      throw new RpcException({ code: status.INTERNAL, message: error instanceof Error ? error.message : String(error) });
    } finally {
      done();
    }
  }
}

@Module({ controllers: [RewardController], providers: [RewardScoringHolder] })
export class RewardGrpcModule {}

export interface ServeRewardServiceOptions {
  /** The start-up reward model (`XYP_REWARD_CHECKPOINT`): a checkpoint ID in the app's ArtifactStore, or a directory. */
  checkpoint?: string;
  /** Address the gRPC server listens on, `host:port`. */
  url: string;
  backend?: BackendOptions;
  /** Sequences per forward pass of each model (default 16). */
  forwardBatchSize?: number;
  /** Cross-caller batching of each model (default 5 ms window, 64 items per batch). */
  batching?: BatchingRewardOptions;
  /** Request limits (4,096 items, 64 KiB per item). */
  scoring?: RewardScoringOptions;
  /** Bearer tokens, TLS and message limit of the gRPC server (`grpcServerSecurity(env)`); unset: open. */
  security?: GrpcServerSecurity;
}

/** What `serveRewardService` started: the start-up model's ID and the registry `LoadModel` changes. */
export interface ServedRewardService {
  id: string;
  models: RewardModels;
  scoring: RewardScoring;
}

/**
 * With `checkpoint` set (`XYP_REWARD_CHECKPOINT`): loads that reward model from the app's ArtifactStore
 * (or a directory) on the engine backend `backend`, makes it current, and serves `RewardService` on
 * `url` (with health and reflection); `LoadModel` loads further checkpoints from the same store.
 * Unset: no gRPC server.
 */
export async function serveRewardService(app: INestApplication, options: ServeRewardServiceOptions): Promise<ServedRewardService | undefined> {
  if (!options.checkpoint) return undefined;
  const store = app.get<ArtifactStore>(ARTIFACT_STORE, { strict: false });
  const models = new RewardModels((id) => loadRewardModel(id, { store, backend: options.backend, batchSize: options.forwardBatchSize }), { batching: options.batching });
  const { loaded } = await models.load(options.checkpoint, { makeCurrent: true });
  const scoring = new RewardScoring(models, options.scoring);
  await startRewardGrpc(app, scoring, options.url, options.security);
  return { id: loaded.model, models, scoring };
}

/**
 * Serves `scoring` as `RewardService` on `url` (with health and reflection, `grpcServerOptions` of
 * `@xyp/grpc`; bearer tokens and TLS from `security`) from a Nest app that imports `RewardGrpcModule`. `serveRewardService` calls it once
 * the start-up model is loaded; a benchmark or test with its own registry calls it directly.
 */
export async function startRewardGrpc(app: INestApplication, scoring: RewardScoring, url: string, security?: GrpcServerSecurity): Promise<void> {
  app.get(RewardScoringHolder, { strict: false }).scoring = scoring;
  const { options: grpc } = grpcServerOptions(url, [REWARD_PROTO], ['xuanyuan.v1.RewardService'], security);
  app.connectMicroservice(grpc, { inheritAppConfig: true });
  await app.startAllMicroservices();
  new Logger('reward').log(`RewardService on ${url}, scoring with ${scoring.modelId || 'no model yet'}`);
}
