import { main, PlatformModule } from '@xyp/bootstrap';
import { SERVICE_ENVS } from '@xyp/config';
import { unavailableStageWorker } from '@xyp/queue';

/** The synthesis service: its worker is registered; the stage itself arrives with the SFT data synthesis issue. */
main({
  name: 'synthesis',
  env: SERVICE_ENVS.synthesis,
  module: (env) => PlatformModule.forRoot(env, { workers: ['synthesis.generate'], providers: [unavailableStageWorker('synthesis.generate', 'the SFT data synthesis issue')] }),
  httpPort: (env) => env.XYP_SYNTHESIS_HTTP_PORT,
});
