import { main, PlatformModule } from '@xyp/bootstrap';
import { SERVICE_ENVS, clusterSettings, engineBackendOptions, grpcServerSecurity } from '@xyp/config';
import { clusterTrainingFor } from '@xyp/kube';
import { RewardGrpcModule, serveRewardService } from '@xyp/reward-serving';
import { REWARD_CLUSTER, REWARD_ENGINE_BACKEND } from './engine-options';
import { RewardEvaluateWorker } from './reward-evaluate.worker';
import { RewardPairsWorker } from './reward-pairs.worker';
import { RewardPrepareWorker } from './reward-prepare.worker';
import { RewardTrainWorker } from './reward-train.worker';

/**
 * The reward service: workers of the reward stages (reward.prepare, reward.pairs, reward.train, reward.evaluate)
 * on the local engine, and with `XYP_REWARD_CHECKPOINT` set, online scoring of that reward model
 * over gRPC (`RewardService`, `XYP_REWARD_GRPC_PORT`).
 */
main({
  name: 'reward',
  env: SERVICE_ENVS.reward,
  module: (env) => {
    const platform = PlatformModule.forRoot(env, {
      workers: ['reward.prepare', 'reward.pairs', 'reward.train', 'reward.evaluate'],
      providers: [
        { provide: REWARD_ENGINE_BACKEND, useValue: engineBackendOptions(env) },
        // XYP_TRAINING_ENGINE=cluster: reward.train submits RayJobs (or, without a kubeconfig, renders them only).
        { provide: REWARD_CLUSTER, useFactory: () => clusterTrainingFor(clusterSettings(env)) },
        RewardPrepareWorker, RewardPairsWorker, RewardTrainWorker, RewardEvaluateWorker],
    });
    return { ...platform, imports: [...(platform.imports ?? []), RewardGrpcModule] };
  },
  httpPort: (env) => env.XYP_REWARD_HTTP_PORT,
  configure: async (app, env) => {
    await serveRewardService(app, { checkpoint: env.XYP_REWARD_CHECKPOINT, url: `0.0.0.0:${env.XYP_REWARD_GRPC_PORT}`, backend: engineBackendOptions(env), security: grpcServerSecurity(env) });
  },
});
