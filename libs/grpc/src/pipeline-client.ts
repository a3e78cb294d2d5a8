import { credentials, Metadata, type ChannelCredentials, type ClientOptions, type ClientReadableStream, type ServiceError } from '@grpc/grpc-js';
import { GrpcEnv, grpcClientSecurity, loadConfig, type GrpcClientSecurity } from '@xyp/config';
import { PipelineServiceClient } from './generated/client/xuanyuan/v1/pipeline';
import type { SubmitRunRequest, WatchRunResponse } from './generated/client/xuanyuan/v1/pipeline';
import { bearerTokenClientInterceptor } from './grpc-auth';
import { MAX_MESSAGE_BYTES } from './grpc-server-options';

export type PipelineClient = InstanceType<typeof PipelineServiceClient>;

/**
 * What a client sends and trusts: `token` goes as `authorization: Bearer <token>` on every call;
 * `tls` makes the channel TLS (`ca` verifies the server, `cert` + `key` is the client certificate
 * a server with a CA requires). A field left out comes from the environment: `XYP_GRPC_TOKEN`
 * (or `XYP_GRPC_TOKEN_FILE`), `XYP_GRPC_TLS_CA`/`_CERT`/`_KEY`, `XYP_GRPC_MAX_MESSAGE_BYTES`.
 */
export type GrpcClientOptions = GrpcClientSecurity;

/** Credentials and channel options of a platform gRPC client; the options' fields win over the environment's. */
export function grpcClientSettings(options: GrpcClientOptions = {}, env: Record<string, string | undefined> = process.env): { credentials: ChannelCredentials; options: ClientOptions } {
  const fromEnv = grpcClientSecurity(loadConfig(GrpcEnv, env));
  const token = options.token ?? fromEnv.token;
  const tls = options.tls ?? fromEnv.tls;
  const maxMessageBytes = options.maxMessageBytes ?? fromEnv.maxMessageBytes ?? MAX_MESSAGE_BYTES;
  return {
    credentials: tls ? credentials.createSsl(tls.ca ?? null, tls.key ?? null, tls.cert ?? null) : credentials.createInsecure(),
    options: {
      'grpc.max_receive_message_length': maxMessageBytes,
      'grpc.max_send_message_length': maxMessageBytes,
      ...(token ? { interceptors: [bearerTokenClientInterceptor(token)] } : {}),
    },
  };
}

/** A typed @grpc/grpc-js client of PipelineService, with the token and TLS of `options` or the environment. */
export function createPipelineClient(address: string, options?: GrpcClientOptions): PipelineClient {
  const settings = grpcClientSettings(options);
  return new PipelineServiceClient(address, settings.credentials, settings.options);
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
