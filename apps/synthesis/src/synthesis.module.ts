import { Module, type DynamicModule } from '@nestjs/common';
import { PlatformModule } from '@xyp/bootstrap';
import { PlatformEnv, envPort } from '@xyp/config';
import { unavailableStageWorker } from '@xyp/queue';
import type { z } from 'zod';

export const SynthesisEnv = PlatformEnv.extend({ XYP_SYNTHESIS_HTTP_PORT: envPort().default(3103) });

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
