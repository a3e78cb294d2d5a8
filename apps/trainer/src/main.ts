import { main, PlatformModule } from '@xyp/bootstrap';
import { SERVICE_ENVS, engineBackendOptions } from '@xyp/config';
import { CptWorker } from './cpt.worker';
import { EvalWorker } from './eval.worker';
import { TRAINER_ENGINE_BACKEND } from './engine-options';
import { SftWorker } from './sft.worker';

/** The trainer service: workers of the policy stages (cpt, sft, eval) on the local engine. */
main({
  name: 'trainer',
  env: SERVICE_ENVS.trainer,
  module: (env) =>
    PlatformModule.forRoot(env, {
      workers: ['cpt', 'sft', 'eval'],
      providers: [{ provide: TRAINER_ENGINE_BACKEND, useValue: engineBackendOptions(env) }, CptWorker, SftWorker, EvalWorker],
    }),
  httpPort: (env) => env.XYP_TRAINER_HTTP_PORT,
});
