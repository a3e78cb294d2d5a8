import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { create, createFileRegistry, fromBinary, fromJson, toBinary, toJson, type FileRegistry, type JsonValue } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema, FileDescriptorSetSchema, type DescriptorProto, type FileDescriptorProto } from '@bufbuild/protobuf/wkt';
import { Client, credentials, loadPackageDefinition, status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { MAX_MESSAGE_BYTES, submitRunRequest, unary } from '@xyp/grpc';
import { PlatformHarness, jsonl } from './platform-harness';

const root = resolve(__dirname, '../../..');

interface ReflectionResponse {
  listServicesResponse?: { service: { name: string }[] };
  fileDescriptorResponse?: { fileDescriptorProto: Buffer[] };
  errorResponse?: { errorCode: number; errorMessage: string };
}

type ReflectionStream = NodeJS.ReadWriteStream & { write(request: object): boolean; end(): void };

/** One request on a real grpc.reflection.<version>.ServerReflection stream, as grpcurl sends it. */
async function reflect(address: string, version: 'v1' | 'v1alpha', request: object): Promise<ReflectionResponse> {
  const proto = require.resolve(`@grpc/reflection/build/proto/grpc/reflection/${version}/reflection.proto`);
  const pkg = loadPackageDefinition(loadSync(proto, { longs: Number, enums: String, defaults: true, oneofs: true })) as never as {
    grpc: { reflection: Record<string, { ServerReflection: new (address: string, creds: unknown) => Client & { serverReflectionInfo(): ReflectionStream } }> };
  };
  const client = new pkg.grpc.reflection[version].ServerReflection(address, credentials.createInsecure());
  try {
    const call = client.serverReflectionInfo();
    const answer = new Promise<ReflectionResponse>((resolveAnswer, reject) => {
      call.on('data', resolveAnswer);
      call.on('error', reject);
    });
    call.write(request);
    const response = await answer;
    call.end();
    return response;
  } finally {
    client.close();
  }
}

/**
 * What grpcurl does with a symbol: asks reflection for the file that holds it and builds
 * its types from those descriptors alone (here with @bufbuild/protobuf, which, like
 * protobuf-go, resolves every type and reads JSON by proto name or JSON name).
 */
async function reflectedTypes(address: string, symbol: string): Promise<{ files: FileDescriptorProto[]; registry: FileRegistry }> {
  const response = await reflect(address, 'v1', { fileContainingSymbol: symbol });
  expect(response.errorResponse, `reflection error for ${symbol}`).toBeUndefined();
  const files = response.fileDescriptorResponse!.fileDescriptorProto.map((bytes) => fromBinary(FileDescriptorProtoSchema, bytes));
  return { files, registry: createFileRegistry(create(FileDescriptorSetSchema, { file: files })) };
}

/** Every message of a file, nested ones included, by full name. */
function messages(file: FileDescriptorProto): Map<string, DescriptorProto> {
  const found = new Map<string, DescriptorProto>();
  const visit = (message: DescriptorProto, scope: string) => {
    found.set(`${scope}.${message.name}`, message);
    for (const nested of message.nestedType) visit(nested, `${scope}.${message.name}`);
  };
  for (const message of file.messageType) visit(message, file.package);
  return found;
}

/**
 * The rules protobuf-go (and so grpcurl) checks on every map field before it uses a
 * file: the entry message is named `<CamelCaseField>Entry`, declared beside the field.
 */
function mapEntryProblems(file: FileDescriptorProto): string[] {
  const all = messages(file);
  const problems: string[] = [];
  for (const [name, message] of all) {
    for (const field of message.field) {
      const entry = all.get(field.typeName.replace(/^\./, ''));
      if (!entry?.options?.mapEntry) continue;
      const expected = `${field.name.split('_').map((part) => part.charAt(0).toUpperCase() + part.slice(1)).join('')}Entry`;
      if (!message.nestedType.includes(entry) || entry.name !== expected) problems.push(`${name}.${field.name}: entry ${entry.name}, expected ${expected}`);
    }
  }
  return problems;
}

/** A unary call built only from reflected descriptors and a JSON body, like `grpcurl -d '<json>' ADDRESS METHOD`. */
function callLikeGrpcurl(address: string, registry: FileRegistry, method: string, body: JsonValue): Promise<{ error: ServiceError | null; response?: JsonValue }> {
  const at = method.lastIndexOf('/');
  const service = registry.getService(method.slice(0, at))!;
  const rpc = service.methods.find((m) => m.name === method.slice(at + 1))!;
  const request = fromJson(rpc.input, body);
  const client = new Client(address, credentials.createInsecure(), { 'grpc.max_send_message_length': MAX_MESSAGE_BYTES });
  return new Promise((done) => {
    client.makeUnaryRequest(
      `/${service.typeName}/${rpc.name}`,
      () => Buffer.from(toBinary(rpc.input, request)),
      (bytes: Buffer) => toJson(rpc.output, fromBinary(rpc.output, bytes)),
      {},
      (error, response) => {
        client.close();
        done({ error, response });
      },
    );
  });
}

function xyp(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [join(root, 'tools/xyp/bin/xyp.js'), ...args], { cwd: root, env: process.env });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((done) => child.on('close', (code) => done({ code, stdout, stderr })));
}

const failure = (promise: Promise<unknown>) => promise.then(() => null, (e: ServiceError) => e);

describe('control plane gRPC API: reflection of every served service, input presence', () => {
  const harness = new PlatformHarness('grpc-api');
  let address = '';

  beforeAll(async () => {
    await harness.start('control-plane');
    address = `127.0.0.1:${harness.grpcPort}`;
  }, 90_000);
  afterAll(() => harness.stopAll(), 30_000);

  it('lists grpc.health.v1.Health with the other services, on reflection v1alpha and v1', async () => {
    for (const version of ['v1alpha', 'v1'] as const) {
      const listed = await reflect(address, version, { listServices: '' });
      expect(listed.listServicesResponse?.service.map((s) => s.name)).toEqual(
        expect.arrayContaining(['grpc.health.v1.Health', 'xuanyuan.v1.PipelineService', 'xuanyuan.v1.RewardService']),
      );
    }
  });

  it('resolves grpc.health.v1.Health (file_containing_symbol), and Health/Check works from those descriptors alone', async () => {
    const alpha = await reflect(address, 'v1alpha', { fileContainingSymbol: 'grpc.health.v1.Health' });
    expect(alpha.errorResponse).toBeUndefined();
    expect(alpha.fileDescriptorResponse?.fileDescriptorProto.length).toBeGreaterThan(0);
    const method = await reflect(address, 'v1', { fileContainingSymbol: 'grpc.health.v1.Health.Check' });
    expect(method.errorResponse).toBeUndefined();

    const { files, registry } = await reflectedTypes(address, 'grpc.health.v1.Health');
    expect(files.flatMap(mapEntryProblems)).toEqual([]);
    const whole = await callLikeGrpcurl(address, registry, 'grpc.health.v1.Health/Check', {});
    expect(whole.error).toBeNull();
    expect(whole.response).toEqual({ status: 'SERVING' });
    const pipeline = await callLikeGrpcurl(address, registry, 'grpc.health.v1.Health/Check', { service: 'xuanyuan.v1.PipelineService' });
    expect(pipeline.response).toEqual({ status: 'SERVING' });
  });

  it('describes PipelineService as the .proto does: its own field names, map entries protobuf-go accepts', async () => {
    const { files, registry } = await reflectedTypes(address, 'xuanyuan.v1.PipelineService');
    expect(files.flatMap(mapEntryProblems)).toEqual([]);
    expect(registry.getMessage('xuanyuan.v1.SubmitRunRequest')!.fields.map((f) => f.name)).toEqual(['run_id', 'stages', 'input_jsonl', 'input_name', 'params', 'files', 'spec']);
    expect(registry.getService('xuanyuan.v1.PipelineService')!.methods.map((m) => m.name)).toEqual(['SubmitRun', 'GetRun', 'WatchRun', 'CancelRun', 'ListArtifacts', 'CollectRuns']);
    const missing = await callLikeGrpcurl(address, registry, 'xuanyuan.v1.PipelineService/GetRun', { run_id: 'run-nobody' });
    expect(missing.error?.code).toBe(GrpcStatus.NOT_FOUND);
  });

  it('refuses a set but empty input_jsonl with INVALID_ARGUMENT naming the field, and records nothing', async () => {
    const named = await failure(unary(harness.client.submitRun.bind(harness.client), submitRunRequest({ runId: 'run-empty-named', inputJsonl: Buffer.alloc(0), inputName: 'empty.jsonl' })));
    expect(named?.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(named?.details).toBe('input_jsonl: the uploaded input "empty.jsonl" is empty (0 bytes); send JSONL documents, or leave input_jsonl out to run the bundled sample');
    const missing = await failure(unary(harness.client.getRun.bind(harness.client), { runId: 'run-empty-named' }));
    expect(missing?.code).toBe(GrpcStatus.NOT_FOUND);

    // A client other than ours (grpcurl -d '{"run_id": ..., "input_jsonl": ""}'), built from reflection only:
    // input_jsonl keeps its presence (proto3 optional) in the reflected descriptor, so such a
    // client sends the empty value it was given.
    const { registry } = await reflectedTypes(address, 'xuanyuan.v1.PipelineService');
    const field = registry.getMessage('xuanyuan.v1.SubmitRunRequest')!.fields.find((f) => f.name === 'input_jsonl')!;
    expect(field.proto.proto3Optional).toBe(true);
    const raw = await callLikeGrpcurl(address, registry, 'xuanyuan.v1.PipelineService/SubmitRun', { run_id: 'run-empty-raw', input_jsonl: '' });
    expect(raw.error?.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(raw.error?.details).toContain('input_jsonl: the uploaded input is empty (0 bytes)');
  });

  it('runs the bundled sample only when input_jsonl is left out', async () => {
    const { registry } = await reflectedTypes(address, 'xuanyuan.v1.PipelineService');
    const raw = await callLikeGrpcurl(address, registry, 'xuanyuan.v1.PipelineService/SubmitRun', { run_id: 'run-absent-raw' });
    expect(raw.error).toBeNull();
    expect(raw.response).toMatchObject({ created: true, run: { runId: 'run-absent-raw', inputName: 'sample' } });
    const withParams = await callLikeGrpcurl(address, registry, 'xuanyuan.v1.PipelineService/SubmitRun', {
      run_id: 'run-params-raw',
      stages: ['corpus.bucket'],
      params: { 'corpus.bucket.strategy': 'bfd', 'corpus.bucket.buckets': '4096' },
    });
    expect(withParams.error).toBeNull();
    expect(withParams.response).toMatchObject({ run: { runId: 'run-params-raw', inputName: 'sample', params: { 'corpus.bucket.strategy': 'bfd', 'corpus.bucket.buckets': '4096' } } });
    const typed = await unary(harness.client.submitRun.bind(harness.client), submitRunRequest({ runId: 'run-absent-typed' }));
    expect(typed.run?.inputName).toBe('sample');
    const uploaded = await unary(harness.client.submitRun.bind(harness.client), submitRunRequest({ runId: 'run-uploaded', inputJsonl: jsonl([{ id: 'a', text: 'x', category: 'news' }]), inputName: 'one.jsonl' }));
    expect(uploaded.run?.inputName).toBe('one.jsonl');
  });

  it('refuses a SubmitRun request over 64 MiB with RESOURCE_EXHAUSTED, from any client', async () => {
    const big = Buffer.alloc(MAX_MESSAGE_BYTES + 1024, 0x61);
    // A client without our send limit: the server's maximum receive length refuses it.
    const { registry } = await reflectedTypes(address, 'xuanyuan.v1.PipelineService');
    const input = registry.getMessage('xuanyuan.v1.SubmitRunRequest')!;
    const client = new Client(address, credentials.createInsecure(), { 'grpc.max_send_message_length': 2 * MAX_MESSAGE_BYTES });
    const refused = await new Promise<ServiceError | null>((done) =>
      client.makeUnaryRequest('/xuanyuan.v1.PipelineService/SubmitRun', () => Buffer.from(toBinary(input, create(input, { runId: 'run-too-big', inputJsonl: big }))), (b: Buffer) => b, {}, (error) => done(error)),
    );
    client.close();
    expect(refused?.code).toBe(GrpcStatus.RESOURCE_EXHAUSTED);
    // Our client (the CLI's) stops at the same limit before sending.
    const own = await failure(unary(harness.client.submitRun.bind(harness.client), submitRunRequest({ runId: 'run-too-big', inputJsonl: big, inputName: 'big.jsonl' })));
    expect(own?.code).toBe(GrpcStatus.RESOURCE_EXHAUSTED);
    const missing = await failure(unary(harness.client.getRun.bind(harness.client), { runId: 'run-too-big' }));
    expect(missing?.code).toBe(GrpcStatus.NOT_FOUND);
  }, 60_000);

  it('xyp run submit --input <empty file> --watch exits non-zero with the server\'s refusal', async () => {
    const empty = join(harness.storeDir, 'empty.jsonl');
    writeFileSync(empty, '');
    const result = await xyp(['run', 'submit', '--input', empty, '--run-id', 'run-empty-cli', '--watch', '--address', address]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('INVALID_ARGUMENT: input_jsonl: the uploaded input "empty.jsonl" is empty (0 bytes)');
    expect(result.stdout).not.toContain('input: sample');
    const missing = await failure(unary(harness.client.getRun.bind(harness.client), { runId: 'run-empty-cli' }));
    expect(missing?.code).toBe(GrpcStatus.NOT_FOUND);
  }, 60_000);
});
