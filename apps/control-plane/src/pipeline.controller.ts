import { Controller, Inject } from '@nestjs/common';
import { RpcException } from '@nestjs/microservices';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { Observable } from 'rxjs';
import { splitInstanceId, type RunEvent as RunEventRecord, type RunRecord } from '@xyp/contracts';
import {
  PipelineServiceControllerMethods,
  RunEventType,
  RunStatus,
  StageInstanceStatus,
  type CancelRunRequest,
  type CancelRunResponse,
  type CollectRunsRequest,
  type CollectRunsResponse,
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
import type { RunView } from '@xyp/queue';
import { RedisUnreachableError, isRedisConnectionError } from '@xyp/runs';
import { InvalidRunRequestError, RunNotFoundError, RunRecordLostError, RunSubmissionService } from './run-submission.service';
import { RunRetentionService } from './run-retention.service';

/** gRPC PipelineService: each method is one call into RunSubmissionService. */
@Controller()
@PipelineServiceControllerMethods()
export class PipelineController implements PipelineServiceController {
  constructor(private readonly runs: RunSubmissionService) {}

  @Inject(RunRetentionService) private readonly retention!: RunRetentionService;

  async collectRuns(request: CollectRunsRequest): Promise<CollectRunsResponse> {
    if (!Number.isFinite(request.olderThanSeconds) || request.olderThanSeconds < 0) {
      throw new RpcException({ code: GrpcStatus.INVALID_ARGUMENT, message: `older_than_seconds: must be a non-negative number of seconds (got ${request.olderThanSeconds})` });
    }
    const result = await this.retention.collect(request.olderThanSeconds * 1000, request.dryRun);
    return {
      removed: result.removed.map((r) => ({ ...r, status: RunStatus[`RUN_STATUS_${r.status.toUpperCase()}` as keyof typeof RunStatus] })),
      active: result.active,
      recent: result.recent,
      dryRun: result.dryRun,
    };
  }

  async submitRun(request: SubmitRunRequest): Promise<SubmitRunResponse> {
    const { run, created } = await this.grpcErrors(() =>
      this.runs.submit({
        runId: request.runId,
        stages: request.stages,
        spec: request.spec,
        // input_jsonl has field presence: left out (undefined or null) means the sample; set, even to zero bytes, is an upload.
        inputJsonl: request.inputJsonl == null ? undefined : Buffer.from(request.inputJsonl),
        inputName: request.inputName,
        params: request.params,
        files: Object.fromEntries(Object.entries(request.files ?? {}).map(([name, bytes]) => [name, Buffer.from(bytes)])),
      }),
    );
    const { view } = await this.runs.describe(run.runId);
    return { run: toRun(run, view), created };
  }

  async getRun(request: GetRunRequest): Promise<GetRunResponse> {
    const { run, view } = await this.grpcErrors(() => this.runs.describe(request.runId));
    return { run: toRun(run, view) };
  }

  async cancelRun(request: CancelRunRequest): Promise<CancelRunResponse> {
    const run = await this.grpcErrors(() => this.runs.cancel(request.runId));
    return { run: toRun(run, (await this.runs.describe(run.runId)).view) };
  }

  async listArtifacts(request: ListArtifactsRequest): Promise<ListArtifactsResponse> {
    const manifests = await this.grpcErrors(() => this.runs.artifacts(request.runId, request.stage));
    const committed = manifests.flatMap((manifest) =>
      manifest.artifacts.map((artifact) => ({ stage: manifest.stage, instance: manifest.instance ?? '', ...artifact, failed: false })),
    );
    // What the failing stage wrote before it failed: listed and fetchable, though no manifest commits it.
    const run = await this.grpcErrors(() => this.runs.get(request.runId));
    const failed = (run.failureArtifacts ?? [])
      .filter(({ stage: ref }) => !request.stage || request.stage === ref || request.stage === splitInstanceId(ref).stage)
      .map(({ stage: ref, ...artifact }) => {
        const { stage, instance = '' } = splitInstanceId(ref);
        return { stage, instance, ...artifact, failed: true };
      });
    return { artifacts: [...committed, ...failed] };
  }

  /**
   * Replays the run's events, then follows new ones until the run ends or the client goes away,
   * riding through Redis outages (`RunSubmissionService.watch`). It ends with UNAVAILABLE when
   * Redis stays unreachable, FAILED_PRECONDITION when Redis lost the run's record.
   */
  watchRun(request: WatchRunRequest): Observable<WatchRunResponse> {
    return new Observable<WatchRunResponse>((subscriber) => {
      const abort = new AbortController();
      (async () => {
        for await (const event of this.runs.watch(request.runId, request.afterEventId, abort.signal)) {
          subscriber.next({ event: toEvent(event) });
        }
        subscriber.complete();
      })().catch((error: unknown) => subscriber.error(toRpcError(error, this.runs.redisAddress)));
      return () => abort.abort();
    });
  }

  private async grpcErrors<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      throw toRpcError(error, this.runs.redisAddress);
    }
  }
}

/** The gRPC status of an error the service raised; anything else stays as it is (UNKNOWN). */
function toRpcError(error: unknown, redisAddress: string): unknown {
  if (error instanceof RpcException) return error;
  if (error instanceof InvalidRunRequestError) return new RpcException({ code: GrpcStatus.INVALID_ARGUMENT, message: error.message });
  if (error instanceof RunNotFoundError) return new RpcException({ code: GrpcStatus.NOT_FOUND, message: error.message });
  if (error instanceof RunRecordLostError) return new RpcException({ code: GrpcStatus.FAILED_PRECONDITION, message: error.message });
  if (error instanceof RedisUnreachableError) return new RpcException({ code: GrpcStatus.UNAVAILABLE, message: error.message });
  if (isRedisConnectionError(error)) return new RpcException({ code: GrpcStatus.UNAVAILABLE, message: `Redis is unreachable at ${redisAddress}: ${(error as Error).message}` });
  return error;
}

/** The run record with its plan's instances and loops (none for a run without a plan). */
function toRun(record: RunRecord, view: RunView | null): Run {
  const instances = (view?.step.instances ?? []).map((instance) => ({
    id: instance.id,
    stage: instance.stage,
    instance: instance.instance ?? '',
    status:
      instance.status === 'committed'
        ? StageInstanceStatus.STAGE_INSTANCE_STATUS_COMMITTED
        : view?.queued.has(instance.id)
          ? StageInstanceStatus.STAGE_INSTANCE_STATUS_QUEUED
          : instance.status === 'ready'
            ? StageInstanceStatus.STAGE_INSTANCE_STATUS_READY
            : StageInstanceStatus.STAGE_INSTANCE_STATUS_WAITING,
    needs: instance.needs,
    loop: instance.loop ?? '',
    round: instance.round ?? 0,
  }));
  const loops = (view?.step.loops ?? []).map((loop) => ({ name: loop.name, rounds: loop.rounds, maxRounds: loop.maxRounds, stopped: loop.stopped, stopReason: loop.stopReason }));
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
    specName: record.specName,
    reportMarkdownKey: record.reportMarkdownKey ?? '',
    reportHtmlKey: record.reportHtmlKey ?? '',
    instances,
    loops,
  };
}

function toEvent(event: RunEventRecord): RunEvent {
  return {
    ...event,
    type: RunEventType[`RUN_EVENT_TYPE_${event.type.toUpperCase().replace(/-/g, '_')}` as keyof typeof RunEventType],
  };
}
