import { main, PlatformModule } from '@xyp/bootstrap';
import { SERVICE_ENVS } from '@xyp/config';
import { unavailableStageWorker } from '@xyp/queue';

/** The trainer service: its worker is registered; the stage itself arrives with the local training engine issue. */
main({
  name: 'trainer',
  env: SERVICE_ENVS.trainer,
  module: (env) => PlatformModule.forRoot(env, { workers: ['cpt'], providers: [unavailableStageWorker('cpt', 'the local training engine issue')] }),
  httpPort: (env) => env.XYP_TRAINER_HTTP_PORT,
});
