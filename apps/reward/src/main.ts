import { main, PlatformModule } from '@xyp/bootstrap';
import { SERVICE_ENVS } from '@xyp/config';
import { unavailableStageWorker } from '@xyp/queue';

/** The reward service: its worker is registered; the stage itself arrives with the UFRM reward model issue. */
main({
  name: 'reward',
  env: SERVICE_ENVS.reward,
  module: (env) => PlatformModule.forRoot(env, { workers: ['reward.train'], providers: [unavailableStageWorker('reward.train', 'the UFRM reward model issue')] }),
  httpPort: (env) => env.XYP_REWARD_HTTP_PORT,
});
