import { Module, type DynamicModule } from '@nestjs/common';
import { BullBoardModule } from '@bull-board/nestjs';
import { ExpressAdapter } from '@bull-board/express';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { PlatformModule } from '@xyp/bootstrap';
import { STAGE_NAMES } from '@xyp/contracts';
import { RunOrchestrator } from '@xyp/queue';
import { basicAuth } from './board-auth';
import { CONTROL_PLANE_ENV, type ControlPlaneEnv } from './control-plane.env';
import { PipelineController } from './pipeline.controller';
import { PipelineRunWorker } from './pipeline-run.worker';
import { RunResumer } from './run-resumer';
import { RunRetentionService } from './run-retention.service';
import { RunSubmissionService } from './run-submission.service';

/** Route of Bull Board on the control plane's HTTP port. */
export const BOARD_ROUTE = '/queues';

/**
 * The control plane: gRPC PipelineService, runs planned from run specs into stage
 * instances (RunOrchestrator), the pipeline.run worker that takes planning steps and closes
 * runs, resuming active runs on start, Bull Board over every queue (basic auth); `/metrics` (from
 * `PlatformModule`) exports every queue's job counts, since it produces to every queue.
 */
@Module({})
export class ControlPlaneModule {
  static forRoot(env: ControlPlaneEnv): DynamicModule {
    return {
      module: ControlPlaneModule,
      imports: [
        PlatformModule.forRoot(env, { queues: STAGE_NAMES, workers: ['pipeline.run'] }),
        BullBoardModule.forRoot({
          route: BOARD_ROUTE,
          adapter: ExpressAdapter,
          middleware: basicAuth(env.XYP_BOARD_USER, env.XYP_BOARD_PASSWORD),
          boardOptions: { uiConfig: { boardTitle: 'XuanYuan Pipeline' } },
        }),
        BullBoardModule.forFeature(...STAGE_NAMES.map((name) => ({ name, adapter: BullMQAdapter }))),
      ],
      controllers: [PipelineController],
      providers: [{ provide: CONTROL_PLANE_ENV, useValue: env }, RunOrchestrator, RunSubmissionService, PipelineRunWorker, RunResumer, RunRetentionService],
    };
  }
}
