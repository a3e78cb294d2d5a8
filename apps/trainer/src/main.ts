import { main } from '@xyp/bootstrap';
import { TrainerEnv, TrainerModule } from './trainer.module';

main({ name: 'trainer', env: TrainerEnv, module: (env) => TrainerModule.forRoot(env), httpPort: (env) => env.XYP_TRAINER_HTTP_PORT });
