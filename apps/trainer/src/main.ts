import { main, PlatformModule } from '@xyp/bootstrap';
import { SERVICE_ENVS, clusterSettings, engineBackendOptions } from '@xyp/config';
import { clusterTrainingFor } from '@xyp/kube';
import { CptWorker } from './cpt.worker';
import { EvalWorker } from './eval.worker';
import { TRAINER_CLUSTER, TRAINER_ENGINE_BACKEND } from './engine-options';
import { SftWorker } from './sft.worker';

/**
 * The trainer service: workers of the policy stages (cpt, sft, eval) on the local engine; with
 * `XYP_TRAINING_ENGINE=cluster`, cpt and sft as Megatron-LM PyTorchJobs (`@xyp/kube`).
 */
main({
  name: 'trainer',
  env: SERVICE_ENVS.trainer,
  module: (env) =>
    PlatformModule.forRoot(env, {
      workers: ['cpt', 'sft', 'eval'],
      providers: [
        { provide: TRAINER_ENGINE_BACKEND, useValue: engineBackendOptions(env) },
        // XYP_TRAINING_ENGINE=cluster: cpt and sft submit PyTorchJobs (or, without a kubeconfig, render them only).
        { provide: TRAINER_CLUSTER, useFactory: () => clusterTrainingFor(clusterSettings(env)) },
        CptWorker,
        SftWorker,
        EvalWorker,
      ],
    }),
  httpPort: (env) => env.XYP_TRAINER_HTTP_PORT,
});
