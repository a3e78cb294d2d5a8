import { main, PlatformModule } from '@xyp/bootstrap';
import { SERVICE_ENVS, clusterSettings, engineBackendOptions } from '@xyp/config';
import { clusterTrainingFor } from '@xyp/kube';
import { RlhfCiFilterWorker } from './ci-filter.worker';
import { RLHF_CLUSTER, RLHF_ENGINE_BACKEND } from './engine-options';
import { RlhfEvaluateWorker } from './evaluate.worker';
import { RlhfImproveWorker } from './improve.worker';
import { serveCheckpoint } from './openai-routes';
import { RlhfPpoWorker } from './ppo.worker';

/**
 * The rlhf service: the workers of the PEI-RLHF stages (rlhf.ci-filter, rlhf.ppo, rlhf.evaluate,
 * rlhf.improve) on the local engine (with `XYP_TRAINING_ENGINE=cluster`, rlhf.ppo as an OpenRLHF
 * RayJob through `@xyp/kube`), and with `XYP_RLHF_SERVE_CHECKPOINT` set that checkpoint over the
 * OpenAI API at `/v1`.
 */
main({
  name: 'rlhf',
  env: SERVICE_ENVS.rlhf,
  module: (env) =>
    PlatformModule.forRoot(env, {
      workers: ['rlhf.ci-filter', 'rlhf.ppo', 'rlhf.evaluate', 'rlhf.improve'],
      providers: [
        { provide: RLHF_ENGINE_BACKEND, useValue: engineBackendOptions(env) },
        // XYP_TRAINING_ENGINE=cluster: rlhf.ppo submits RayJobs (or, without a kubeconfig, renders them only).
        { provide: RLHF_CLUSTER, useFactory: () => clusterTrainingFor(clusterSettings(env)) },
        RlhfCiFilterWorker,
        RlhfPpoWorker,
        RlhfEvaluateWorker,
        RlhfImproveWorker,
      ],
    }),
  httpPort: (env) => env.XYP_RLHF_HTTP_PORT,
  configure: async (app, env) => {
    await serveCheckpoint(app, env.XYP_RLHF_SERVE_CHECKPOINT, engineBackendOptions(env));
  },
});
