import { main } from '@xyp/bootstrap';
import { RewardEnv, RewardModule } from './reward.module';

main({ name: 'reward', env: RewardEnv, module: (env) => RewardModule.forRoot(env), httpPort: (env) => env.XYP_REWARD_HTTP_PORT });
