import { Module, type DynamicModule } from '@nestjs/common';
import { PlatformModule } from '@xyp/bootstrap';
import { SERVICE_ENVS } from '@xyp/config';
import { unavailableStageWorker } from '@xyp/queue';
import type { z } from 'zod';

export const RlhfEnv = SERVICE_ENVS.rlhf;

/** The rlhf service: its worker is registered; the stage itself arrives with the PEI-RLHF issue. */
@Module({})
export class RlhfModule {
  static forRoot(env: z.output<typeof RlhfEnv>): DynamicModule {
    return {
      module: RlhfModule,
      imports: [PlatformModule.forRoot(env, { workers: ['rlhf.ppo'] })],
      providers: [unavailableStageWorker('rlhf.ppo', 'the PEI-RLHF issue')],
    };
  }
}
