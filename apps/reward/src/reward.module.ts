import { Module, type DynamicModule } from '@nestjs/common';
import { PlatformModule } from '@xyp/bootstrap';
import { SERVICE_ENVS } from '@xyp/config';
import { unavailableStageWorker } from '@xyp/queue';
import type { z } from 'zod';

export const RewardEnv = SERVICE_ENVS.reward;

/** The reward service: its worker is registered; the stage itself arrives with the UFRM reward model issue. */
@Module({})
export class RewardModule {
  static forRoot(env: z.output<typeof RewardEnv>): DynamicModule {
    return {
      module: RewardModule,
      imports: [PlatformModule.forRoot(env, { workers: ['reward.train'] })],
      providers: [unavailableStageWorker('reward.train', 'the UFRM reward model issue')],
    };
  }
}
