import { Module, type DynamicModule } from '@nestjs/common';
import { storeSettings, type PlatformEnv } from '@xyp/config';
import type { StageName } from '@xyp/contracts';
import { QueueModule, queueSettings } from '@xyp/queue';
import { StorageModule } from '@xyp/storage';
import { HealthController } from './health.controller';

/**
 * What every service imports: the artifact store, BullMQ with the app's queues and
 * workers, the run registry and events, and the health endpoints.
 */
@Module({})
export class PlatformModule {
  static forRoot(env: PlatformEnv, stages: { queues?: readonly StageName[]; workers: readonly StageName[] }): DynamicModule {
    return {
      module: PlatformModule,
      imports: [
        StorageModule.forRoot(storeSettings(env)),
        QueueModule.forRoot({ settings: queueSettings(env), queues: stages.queues ?? [], workers: stages.workers }),
      ],
      controllers: [HealthController],
    };
  }
}
