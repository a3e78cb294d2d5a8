import { Module, type DynamicModule } from '@nestjs/common';
import { PlatformModule } from '@xyp/bootstrap';
import { SERVICE_ENVS } from '@xyp/config';
import { unavailableStageWorker } from '@xyp/queue';
import type { z } from 'zod';

export const TrainerEnv = SERVICE_ENVS.trainer;

/** The trainer service: its worker is registered; the stage itself arrives with the local training engine issue. */
@Module({})
export class TrainerModule {
  static forRoot(env: z.output<typeof TrainerEnv>): DynamicModule {
    return {
      module: TrainerModule,
      imports: [PlatformModule.forRoot(env, { workers: ['cpt'] })],
      providers: [unavailableStageWorker('cpt', 'the local training engine issue')],
    };
  }
}
