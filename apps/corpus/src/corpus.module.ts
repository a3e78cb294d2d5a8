import { Module, type DynamicModule } from '@nestjs/common';
import { PlatformModule } from '@xyp/bootstrap';
import { SERVICE_ENVS } from '@xyp/config';
import type { z } from 'zod';
import { CorpusInspectWorker } from './corpus-inspect.worker';

export const CorpusEnv = SERVICE_ENVS.corpus;

/** The corpus service: workers of the corpus stages. */
@Module({})
export class CorpusModule {
  static forRoot(env: z.output<typeof CorpusEnv>): DynamicModule {
    return {
      module: CorpusModule,
      imports: [PlatformModule.forRoot(env, { workers: ['corpus.inspect'] })],
      providers: [CorpusInspectWorker],
    };
  }
}
