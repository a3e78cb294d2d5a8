import { main } from '@xyp/bootstrap';
import { RlhfEnv, RlhfModule } from './rlhf.module';

main({ name: 'rlhf', env: RlhfEnv, module: (env) => RlhfModule.forRoot(env), httpPort: (env) => env.XYP_RLHF_HTTP_PORT });
