import { main, PlatformModule } from '@xyp/bootstrap';
import { SERVICE_ENVS, engineBackendOptions } from '@xyp/config';
import { unavailableStageWorker } from '@xyp/queue';
import { serveCheckpoint } from './openai-routes';

/**
 * The rlhf service: its worker is registered (the stage itself arrives with the PEI-RLHF issue), and
 * with `XYP_RLHF_SERVE_CHECKPOINT` set it serves that checkpoint over the OpenAI API at `/v1`.
 */
main({
  name: 'rlhf',
  env: SERVICE_ENVS.rlhf,
  module: (env) => PlatformModule.forRoot(env, { workers: ['rlhf.ppo'], providers: [unavailableStageWorker('rlhf.ppo', 'the PEI-RLHF issue')] }),
  httpPort: (env) => env.XYP_RLHF_HTTP_PORT,
  configure: async (app, env) => {
    await serveCheckpoint(app, env.XYP_RLHF_SERVE_CHECKPOINT, engineBackendOptions(env));
  },
});
