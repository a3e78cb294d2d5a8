/**
 * `RewardService` as a NestJS gRPC controller and module, and `serveRewardService`, which loads the
 * reward model and starts the gRPC server (health and reflection included) on a Nest app. The reward
 * app only imports `RewardGrpcModule` and calls `serveRewardService` with its configuration.
 */
import { Controller, Injectable, Logger, Module, type INestApplication } from '@nestjs/common';
import { RpcException } from '@nestjs/microservices';
import { status } from '@grpc/grpc-js';
import type { BackendOptions } from '@xyp/engine';
import { REWARD_PROTO, RewardServiceControllerMethods, grpcServerOptions, type RewardServiceController, type ScoreRequest, type ScoreResponse } from '@xyp/grpc';
import { loadRewardModel, type ServedRewardModel } from './reward-model-scorer';
import { RewardScoring, RewardServiceError, type RewardScoringOptions } from './reward-service';
import { ARTIFACT_STORE, type ArtifactStore } from '@xyp/storage';

/** The scoring the gRPC controller answers with, set once the reward model is loaded. */
@Injectable()
export class RewardScoringHolder {
  scoring: RewardScoring | undefined;
}

/** gRPC `RewardService`: each call is one `RewardScoring.score` (`@xyp/reward-serving`). */
@Controller()
@RewardServiceControllerMethods()
export class RewardController implements RewardServiceController {
  constructor(private readonly holder: RewardScoringHolder) {}

  async score(request: ScoreRequest): Promise<ScoreResponse> {
    const scoring = this.holder.scoring;
    if (!scoring) throw new RpcException({ code: status.UNAVAILABLE, message: 'no reward model is loaded (XYP_REWARD_CHECKPOINT)' });
    try {
      return await scoring.score(request);
    } catch (error) {
      if (error instanceof RewardServiceError) throw new RpcException({ code: error.code, message: error.message });
      throw error;
    }
  }
}

@Module({ controllers: [RewardController], providers: [RewardScoringHolder] })
export class RewardGrpcModule {}

/**
 * With `checkpoint` set (`XYP_REWARD_CHECKPOINT`): loads that reward model from the app's ArtifactStore
 * (or a directory) on the engine backend `backend` and serves `RewardService.Score` on `url` (with
 * health and reflection). Unset: no gRPC server.
 */
export async function serveRewardService(
  app: INestApplication,
  options: { checkpoint?: string; url: string; backend?: BackendOptions; scoring?: RewardScoringOptions },
): Promise<ServedRewardModel | undefined> {
  if (!options.checkpoint) return undefined;
  const store = app.get<ArtifactStore>(ARTIFACT_STORE, { strict: false });
  const served = await loadRewardModel(options.checkpoint, { store, backend: options.backend });
  app.get(RewardScoringHolder, { strict: false }).scoring = new RewardScoring(served, options.scoring);
  const { options: grpc } = grpcServerOptions(options.url, [REWARD_PROTO], ['xuanyuan.v1.RewardService']);
  app.connectMicroservice(grpc, { inheritAppConfig: true });
  await app.startAllMicroservices();
  new Logger('reward').log(`RewardService.Score on ${options.url}, scoring with ${served.id}`);
  return served;
}
