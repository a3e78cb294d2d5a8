import { main, PlatformModule } from '@xyp/bootstrap';
import { SERVICE_ENVS } from '@xyp/config';
import { unavailableStageWorker } from '@xyp/queue';

/** The rlhf service: its worker is registered; the stage itself arrives with the PEI-RLHF issue. */
main({
  name: 'rlhf',
  env: SERVICE_ENVS.rlhf,
  module: (env) => PlatformModule.forRoot(env, { workers: ['rlhf.ppo'], providers: [unavailableStageWorker('rlhf.ppo', 'the PEI-RLHF issue')] }),
  httpPort: (env) => env.XYP_RLHF_HTTP_PORT,
});
