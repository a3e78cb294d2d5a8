import { main, PlatformModule } from '@xyp/bootstrap';
import { SERVICE_ENVS, engineBackendOptions } from '@xyp/config';
import { unavailableStageWorker } from '@xyp/queue';
import { RewardGrpcModule, serveRewardService } from '@xyp/reward-serving';

/**
 * The reward service: its worker is registered (the stage itself arrives with the UFRM reward model
 * issue), and with `XYP_REWARD_CHECKPOINT` set it serves that reward model over gRPC
 * (`RewardService.Score`, `XYP_REWARD_GRPC_PORT`).
 */
main({
  name: 'reward',
  env: SERVICE_ENVS.reward,
  module: (env) => {
    const platform = PlatformModule.forRoot(env, { workers: ['reward.train'], providers: [unavailableStageWorker('reward.train', 'the UFRM reward model issue')] });
    return { ...platform, imports: [...(platform.imports ?? []), RewardGrpcModule] };
  },
  httpPort: (env) => env.XYP_REWARD_HTTP_PORT,
  configure: async (app, env) => {
    await serveRewardService(app, { checkpoint: env.XYP_REWARD_CHECKPOINT, url: `0.0.0.0:${env.XYP_REWARD_GRPC_PORT}`, backend: engineBackendOptions(env) });
  },
});
