import { main } from '@xyp/bootstrap';
import { SynthesisEnv, SynthesisModule } from './synthesis.module';

main({ name: 'synthesis', env: SynthesisEnv, module: (env) => SynthesisModule.forRoot(env), httpPort: (env) => env.XYP_SYNTHESIS_HTTP_PORT });
