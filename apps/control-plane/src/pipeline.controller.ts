import { Controller } from '@nestjs/common';
import { RpcException } from '@nestjs/microservices';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { Observable } from 'rxjs';
import type { RunEvent as RunEventRecord, RunRecord } from '@xyp/contracts';
import {
  PipelineServiceControllerMethods,
  RunEventType,
  RunStatus,
  type CancelRunRequest,
  type CancelRunResponse,
  type GetRunRequest,
  type GetRunResponse,
  type ListArtifactsRequest,
  type ListArtifactsResponse,
  type PipelineServiceController,
  type Run,
  type RunEvent,
  type SubmitRunRequest,
  type SubmitRunResponse,
  type WatchRunRequest,
  type WatchRunResponse,
} from '@xyp/grpc';
import { RunEvents } from '@xyp/runs';
import { InvalidRunRequestError, RunNotFoundError, RunSubmissionService } from './run-submission.service';

/** gRPC PipelineService: each method is one call into RunSubmissionService or RunEvents. */
@Controller()
@PipelineServiceControllerMethods()
export class PipelineController implements PipelineServiceController {
  constructor(
    private readonly runs: RunSubmissionService,
    private readonly events: RunEvents,
  ) {}

  async submitRun(request: SubmitRunRequest): Promise<SubmitRunResponse> {
    const { run, created } = await grpcErrors(() =>
      this.runs.submit({
        runId: request.runId,
        stages: request.stages,
        // input_jsonl has field presence: left out (undefined or null) means the sample; set, even to zero bytes, is an upload.
        inputJsonl: request.inputJsonl == null ? undefined : Buffer.from(request.inputJsonl),
        inputName: request.inputName,
        params: request.params,
        files: Object.fromEntries(Object.entries(request.files ?? {}).map(([name, bytes]) => [name, Buffer.from(bytes)])),
      }),
    );
    return { run: toRun(run), created };
  }

  async getRun(request: GetRunRequest): Promise<GetRunResponse> {
    return { run: toRun(await grpcErrors(() => this.runs.get(request.runId))) };
  }

  async cancelRun(request: CancelRunRequest): Promise<CancelRunResponse> {
    return { run: toRun(await grpcErrors(() => this.runs.cancel(request.runId))) };
  }

  async listArtifacts(request: ListArtifactsRequest): Promise<ListArtifactsResponse> {
    const manifests = await grpcErrors(() => this.runs.artifacts(request.runId, request.stage));
    return {
      artifacts: manifests.flatMap((manifest) =>
        manifest.artifacts.map((artifact) => ({ stage: manifest.stage, ...artifact })),
      ),
    };
  }

  /** Replays the run's events, then follows new ones until the run ends or the client goes away. */
  watchRun(request: WatchRunRequest): Observable<WatchRunResponse> {
    return new Observable<WatchRunResponse>((subscriber) => {
      const abort = new AbortController();
      (async () => {
        await grpcErrors(() => this.runs.get(request.runId));
        for await (const event of this.events.follow(request.runId, request.afterEventId || '0-0', abort.signal)) {
          subscriber.next({ event: toEvent(event) });
        }
        subscriber.complete();
      })().catch((error: unknown) => subscriber.error(error));
      return () => abort.abort();
    });
  }
}

async function grpcErrors<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof InvalidRunRequestError) throw new RpcException({ code: GrpcStatus.INVALID_ARGUMENT, message: error.message });
    if (error instanceof RunNotFoundError) throw new RpcException({ code: GrpcStatus.NOT_FOUND, message: error.message });
    throw error;
  }
}

function toRun(record: RunRecord): Run {
  return {
    runId: record.runId,
    status: RunStatus[`RUN_STATUS_${record.status.toUpperCase()}` as keyof typeof RunStatus],
    stages: record.stages,
    inputName: record.inputName,
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
    error: record.error ?? '',
    reportKey: record.reportKey ?? '',
    params: record.params,
  };
}

function toEvent(event: RunEventRecord): RunEvent {
  return {
    ...event,
    type: RunEventType[`RUN_EVENT_TYPE_${event.type.toUpperCase().replace(/-/g, '_')}` as keyof typeof RunEventType],
  };
}
