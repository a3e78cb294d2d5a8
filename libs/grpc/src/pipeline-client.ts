import { credentials, Metadata, type ClientReadableStream, type ServiceError } from '@grpc/grpc-js';
import { PipelineServiceClient } from './generated/client/xuanyuan/v1/pipeline';
import type { SubmitRunRequest, WatchRunResponse } from './generated/client/xuanyuan/v1/pipeline';
import { MAX_MESSAGE_BYTES } from './grpc-server-options';

export type PipelineClient = InstanceType<typeof PipelineServiceClient>;

/** A typed @grpc/grpc-js client of PipelineService (plaintext; put TLS at the ingress). */
export function createPipelineClient(address: string): PipelineClient {
  return new PipelineServiceClient(address, credentials.createInsecure(), {
    'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
    'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
  });
}

/** Calls a unary method as a promise, with a deadline. */
export function unary<Req, Res>(
  call: (
    request: Req,
    metadata: Metadata,
    options: { deadline: Date },
    callback: (error: ServiceError | null, response: Res) => void,
  ) => unknown,
  request: Req,
  timeoutMs = 30_000,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    call(request, new Metadata(), { deadline: new Date(Date.now() + timeoutMs) }, (error, response) =>
      error ? reject(error) : resolve(response),
    );
  });
}

/** Iterates a WatchRun stream until the server ends it. */
export async function* watchEvents(stream: ClientReadableStream<WatchRunResponse>): AsyncGenerator<WatchRunResponse> {
  for await (const message of stream as AsyncIterable<WatchRunResponse>) yield message;
}

/**
 * A SubmitRun request with every field the caller leaves out at its proto default.
 * `inputJsonl` has field presence: undefined leaves it out (the server runs the bundled
 * sample); bytes are sent as given, and the server refuses empty ones (INVALID_ARGUMENT).
 */
export function submitRunRequest(fields: Partial<SubmitRunRequest>): SubmitRunRequest {
  return { runId: '', stages: [], inputJsonl: undefined, inputName: '', params: {}, files: {}, spec: '', ...fields };
}
