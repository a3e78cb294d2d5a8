import { Module, type DynamicModule } from '@nestjs/common';
import { PlatformModule } from '@xyp/bootstrap';
import { SERVICE_ENVS } from '@xyp/config';
import { unavailableStageWorker } from '@xyp/queue';
import type { z } from 'zod';

export const SynthesisEnv = SERVICE_ENVS.synthesis;

/** The synthesis service: its worker is registered; the stage itself arrives with the SFT data synthesis issue. */
@Module({})
export class SynthesisModule {
  static forRoot(env: z.output<typeof SynthesisEnv>): DynamicModule {
    return {
      module: SynthesisModule,
      imports: [PlatformModule.forRoot(env, { workers: ['synthesis.generate'] })],
      providers: [unavailableStageWorker('synthesis.generate', 'the SFT data synthesis issue')],
    };
  }
}
