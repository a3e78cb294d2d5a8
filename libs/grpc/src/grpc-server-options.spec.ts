import { afterEach, describe, expect, it } from 'vitest';
import { Server, ServerCredentials, credentials, loadPackageDefinition, type Client } from '@grpc/grpc-js';
import { loadSync, type PackageDefinition } from '@grpc/proto-loader';
import { fromBinary } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema } from '@bufbuild/protobuf/wkt';
import { SubmitRunRequest } from './generated/client/xuanyuan/v1/pipeline';
import { REWARD_PROTO, grpcServerOptions, mapEntryName, submitRunRequest } from './index';

type ReflectionStream = NodeJS.ReadWriteStream & { write(request: object): boolean; end(): void };
interface ReflectionResponse {
  listServicesResponse?: { service: { name: string }[] };
  fileDescriptorResponse?: { fileDescriptorProto: Buffer[] };
  errorResponse?: { errorCode: number; errorMessage: string };
}

/** A real grpc-js server set up exactly as NestJS sets one up from these options (the hook runs on the server it builds). */
async function startServer(protoFiles: string[], serving: string[]): Promise<{ address: string; server: Server }> {
  const { options } = grpcServerOptions('127.0.0.1:0', protoFiles, serving);
  const settings = options.options!;
  const server = new Server();
  settings.onLoadPackageDefinition!(loadSync(settings.protoPath!, settings.loader) as PackageDefinition, server);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
  );
  return { address: `127.0.0.1:${port}`, server };
}

async function reflect(address: string, request: object): Promise<ReflectionResponse> {
  const proto = require.resolve('@grpc/reflection/build/proto/grpc/reflection/v1alpha/reflection.proto');
  const pkg = loadPackageDefinition(loadSync(proto, { oneofs: true })) as never as {
    grpc: { reflection: { v1alpha: { ServerReflection: new (address: string, creds: unknown) => Client & { serverReflectionInfo(): ReflectionStream } } } };
  };
  const client = new pkg.grpc.reflection.v1alpha.ServerReflection(address, credentials.createInsecure());
  const call = client.serverReflectionInfo();
  const answer = await new Promise<ReflectionResponse>((resolve, reject) => {
    call.on('data', resolve);
    call.on('error', reject);
    call.write(request);
  });
  call.end();
  client.close();
  return answer;
}

describe('grpcServerOptions: health and reflection on every server built from them', () => {
  const servers: Server[] = [];
  afterEach(() => servers.splice(0).forEach((server) => server.forceShutdown()));

  it('reflects exactly the services the server adds: its protos and grpc.health.v1.Health', async () => {
    const { address, server } = await startServer([REWARD_PROTO], ['xuanyuan.v1.RewardService']);
    servers.push(server);
    const listed = await reflect(address, { listServices: '' });
    expect(listed.listServicesResponse?.service.map((s) => s.name).sort()).toEqual(['grpc.health.v1.Health', 'xuanyuan.v1.RewardService']);

    const health = await reflect(address, { fileContainingSymbol: 'grpc.health.v1.Health' });
    expect(health.errorResponse).toBeUndefined();
    const file = fromBinary(FileDescriptorProtoSchema, health.fileDescriptorResponse!.fileDescriptorProto[0]);
    expect(file.service.map((s) => s.name)).toEqual(['Health']);
    expect(file.service[0].method.map((m) => `${m.name}(${m.inputType}) ${m.outputType}`)).toContain(
      'Check(.grpc.health.v1.HealthCheckRequest) .grpc.health.v1.HealthCheckResponse',
    );
    // HealthListResponse.statuses is a map: its entry is named as protoc names it, or protobuf-go (grpcurl) refuses the file.
    const list = file.messageType.find((m) => m.name === 'HealthListResponse')!;
    expect(list.nestedType.map((m) => m.name)).toEqual(['StatusesEntry']);
    expect(list.field[0]).toMatchObject({ name: 'statuses', jsonName: 'statuses', typeName: '.grpc.health.v1.HealthListResponse.StatusesEntry' });

    const pipeline = await reflect(address, { fileContainingSymbol: 'xuanyuan.v1.PipelineService' });
    expect(pipeline.errorResponse?.errorCode).toBe(5);
  });

  it('submitRunRequest leaves input_jsonl out unless bytes are given, and sends an empty upload as set', () => {
    expect(SubmitRunRequest.decode(SubmitRunRequest.encode(submitRunRequest({})).finish()).inputJsonl).toBeUndefined();
    const empty = submitRunRequest({ inputJsonl: Buffer.alloc(0), inputName: 'empty.jsonl' });
    expect(SubmitRunRequest.decode(SubmitRunRequest.encode(empty).finish()).inputJsonl).toEqual(new Uint8Array(0));
  });

  it('names map entries as protobuf-go requires', () => {
    expect(mapEntryName('params')).toBe('ParamsEntry');
    expect(mapEntryName('input_files')).toBe('InputFilesEntry');
    expect(mapEntryName('statuses')).toBe('StatusesEntry');
  });
});
