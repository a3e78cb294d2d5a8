import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect as tlsConnect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Controller, Logger, Module, type INestMicroservice } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { GrpcMethod } from '@nestjs/microservices';
import { Metadata, credentials, loadPackageDefinition, status, type Client, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { Observable } from 'rxjs';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { grpcServerSecurity, type GrpcEnv, type GrpcServerSecurity } from '@xyp/config';
import { freePort, testCertificateAuthority } from '@xyp/testing';
import type { GetRunRequest, GetRunResponse, WatchRunRequest, WatchRunResponse } from './generated/nest/xuanyuan/v1/pipeline';
import { PIPELINE_SERVICE_NAME } from './generated/nest/xuanyuan/v1/pipeline';
import { AcceptedTokens, PIPELINE_PROTO, WatchedTlsFiles, createPipelineClient, grpcServerOptions, unary, watchEvents, type GrpcClientOptions, type GrpcServer, type PipelineClient } from './index';

const TOKEN = 'accepted-token-0123456789';
const ROTATED = 'rotated-token-9876543210';
const WRONG = 'presented-but-wrong-token-42';

/** A PipelineService with one unary (GetRun) and one server-streaming (WatchRun) method that answer without any state. */
@Controller()
class FakePipelineController {
  @GrpcMethod(PIPELINE_SERVICE_NAME, 'GetRun')
  getRun(request: GetRunRequest): GetRunResponse {
    return { run: { runId: request.runId } as GetRunResponse['run'] };
  }

  @GrpcMethod(PIPELINE_SERVICE_NAME, 'WatchRun')
  watchRun(request: WatchRunRequest): Observable<WatchRunResponse> {
    return new Observable((subscriber) => {
      for (const id of ['1-0', '2-0', '3-0']) subscriber.next({ event: { id, runId: request.runId, message: `event ${id}` } as WatchRunResponse['event'] });
      subscriber.complete();
    });
  }
}

@Module({ controllers: [FakePipelineController] })
class FakePipelineModule {}

/** A real NestJS gRPC microservice built from `grpcServerOptions`, as the control plane builds its own. */
async function startServer(security: GrpcServerSecurity): Promise<{ address: string; port: number; app: INestMicroservice; grpc: GrpcServer; close(): Promise<void> }> {
  const port = await freePort();
  const grpc = grpcServerOptions(`127.0.0.1:${port}`, [PIPELINE_PROTO], ['xuanyuan.v1.PipelineService'], security);
  const app = await NestFactory.createMicroservice(FakePipelineModule, { ...grpc.options, logger: false });
  await app.listen();
  return {
    address: `127.0.0.1:${port}`,
    port,
    app,
    grpc,
    close: async () => {
      grpc.close();
      await app.close();
    },
  };
}

function getRun(client: PipelineClient, runId = 'run-auth'): Promise<GetRunResponse> {
  return unary(client.getRun.bind(client), { runId }, 5000);
}

async function watchAll(client: PipelineClient): Promise<string[]> {
  const ids: string[] = [];
  for await (const message of watchEvents(client.watchRun({ runId: 'run-auth', afterEventId: '' }))) ids.push(message.event!.id);
  return ids;
}

async function failure(promise: Promise<unknown>): Promise<ServiceError> {
  return promise.then(
    () => {
      throw new Error('expected the call to fail');
    },
    (error: ServiceError) => error,
  );
}

type HealthClient = Client & { check(request: { service: string }, callback: (error: ServiceError | null, response: { status: string }) => void): void };
type ReflectionClient = Client & { serverReflectionInfo(): NodeJS.ReadWriteStream & { write(request: object): boolean; end(): void } };

function healthClient(address: string, creds = credentials.createInsecure()): HealthClient {
  const proto = require.resolve('grpc-health-check/proto/health/v1/health.proto');
  const pkg = loadPackageDefinition(loadSync(proto, { enums: String })) as never as { grpc: { health: { v1: { Health: new (a: string, c: unknown) => HealthClient } } } };
  return new pkg.grpc.health.v1.Health(address, creds);
}

async function listServices(address: string): Promise<string[]> {
  const proto = require.resolve('@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto');
  const pkg = loadPackageDefinition(loadSync(proto, { oneofs: true })) as never as { grpc: { reflection: { v1: { ServerReflection: new (a: string, c: unknown) => ReflectionClient } } } };
  const client = new pkg.grpc.reflection.v1.ServerReflection(address, credentials.createInsecure());
  const call = client.serverReflectionInfo();
  const answer = await new Promise<{ listServicesResponse?: { service: { name: string }[] } }>((resolve, reject) => {
    call.on('data', resolve);
    call.on('error', reject);
    call.write({ listServices: '' });
  });
  call.end();
  client.close();
  return (answer.listServicesResponse?.service ?? []).map((service) => service.name).sort();
}

describe('gRPC bearer-token auth on a server built by grpcServerOptions', () => {
  let server: Awaited<ReturnType<typeof startServer>>;
  const clients: Client[] = [];
  const client = (options?: GrpcClientOptions): PipelineClient => {
    const made = createPipelineClient(server.address, options);
    clients.push(made);
    return made;
  };
  const dir = mkdtempSync(join(tmpdir(), 'xyp-grpc-auth-'));
  const tokensFile = join(dir, 'tokens');

  beforeAll(async () => {
    writeFileSync(tokensFile, `${TOKEN}\n`);
    server = await startServer({ tokens: [TOKEN], tokensFile });
  });
  afterAll(async () => {
    clients.forEach((made) => made.close());
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a call without a token with UNAUTHENTICATED, saying what is missing', async () => {
    const error = await failure(getRun(client()));
    expect(error.code).toBe(status.UNAUTHENTICATED);
    expect(error.details).toBe(
      '/xuanyuan.v1.PipelineService/GetRun: missing "authorization: Bearer <token>" metadata: this server requires a gRPC token (clients send XYP_GRPC_TOKEN)',
    );
    const stream = await failure(watchAll(client()));
    expect(stream.code).toBe(status.UNAUTHENTICATED);
  });

  it('refuses a wrong token, and a header that is not a bearer token, never echoing what was presented', async () => {
    const wrong = await failure(getRun(client({ token: WRONG })));
    expect(wrong.code).toBe(status.UNAUTHENTICATED);
    expect(wrong.details).toContain('the bearer token in the "authorization" metadata is not accepted by this server');
    expect(JSON.stringify(wrong)).not.toContain(WRONG);
    const streamed = await failure(watchAll(client({ token: WRONG })));
    expect(streamed.code).toBe(status.UNAUTHENTICATED);

    const basic = client();
    const metadata = new Metadata();
    metadata.set('authorization', `Basic ${Buffer.from(`user:${TOKEN}`).toString('base64')}`);
    const notBearer = await failure(
      new Promise((resolve, reject) => basic.getRun({ runId: 'x' }, metadata, (error, response) => (error ? reject(error) : resolve(response)))),
    );
    expect(notBearer.code).toBe(status.UNAUTHENTICATED);
    expect(notBearer.details).toContain('is not "Bearer <token>"');
  });

  it('answers a unary call and a whole WatchRun stream with the right token', async () => {
    expect((await getRun(client({ token: TOKEN }), 'run-ok')).run?.runId).toBe('run-ok');
    expect(await watchAll(client({ token: TOKEN }))).toEqual(['1-0', '2-0', '3-0']);
  });

  it('takes the client token from XYP_GRPC_TOKEN when none is given', async () => {
    vi.stubEnv('XYP_GRPC_TOKEN', TOKEN);
    try {
      expect((await getRun(client())).run?.runId).toBe('run-auth');
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('keeps health checking and reflection open for probes', async () => {
    const health = healthClient(server.address);
    clients.push(health);
    const answer = await new Promise<{ status: string }>((resolve, reject) => health.check({ service: '' }, (error, response) => (error ? reject(error) : resolve(response))));
    expect(answer.status).toBe('SERVING');
    expect(await listServices(server.address)).toEqual(['grpc.health.v1.Health', 'xuanyuan.v1.PipelineService']);
  });

  it('re-reads the token file when it changes: a rotated token is accepted, the old one refused', async () => {
    writeFileSync(tokensFile, `# rotated\n${ROTATED}\n`);
    const deadline = Date.now() + 10_000;
    for (;;) {
      const answer = await getRun(client({ token: ROTATED })).then(
        () => 'ok',
        (error: ServiceError) => error.code,
      );
      if (answer === 'ok') break;
      if (Date.now() > deadline) throw new Error('the rotated token was never accepted');
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect((await failure(getRun(client({ token: TOKEN })))).code).toBe(status.UNAUTHENTICATED);
    // A broken file keeps the tokens read before.
    writeFileSync(tokensFile, 'short\n');
    await new Promise((resolve) => setTimeout(resolve, 2600));
    expect((await getRun(client({ token: ROTATED }))).run?.runId).toBe('run-auth');
  });
});

describe('AcceptedTokens', () => {
  it('accepts exactly the configured tokens, whatever their length', () => {
    const tokens = new AcceptedTokens([TOKEN, ROTATED]);
    expect(tokens.accepts(TOKEN)).toBe(true);
    expect(tokens.accepts(ROTATED)).toBe(true);
    expect(tokens.accepts(`${TOKEN}x`)).toBe(false);
    expect(tokens.accepts(TOKEN.slice(0, -1))).toBe(false);
    expect(tokens.accepts('')).toBe(false);
    expect(new AcceptedTokens([]).accepts('')).toBe(false);
  });
});

describe('a server without tokens', () => {
  afterEach(() => vi.restoreAllMocks());

  it('stays open and warns once that it is unauthenticated', async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const server = await startServer({});
    const open = createPipelineClient(server.address, {});
    try {
      expect((await getRun(open)).run?.runId).toBe('run-auth');
      expect(warn.mock.calls.map((call) => String(call[0])).filter((line) => line.includes('unauthenticated'))).toEqual([
        `gRPC on ${server.address} (xuanyuan.v1.PipelineService) is unauthenticated: set XYP_GRPC_TOKENS or XYP_GRPC_TOKENS_FILE`,
      ]);
    } finally {
      open.close();
      await server.close();
    }
  });
});

/** A throwaway CA, a server certificate for 127.0.0.1 and a client certificate, made by openssl. */
function makeCertificates(dir: string): Record<'ca' | 'serverCert' | 'serverKey' | 'clientCert' | 'clientKey' | 'otherCa' | 'strangerCert' | 'strangerKey', Buffer> {
  const ca = testCertificateAuthority(dir, 'ca', '/CN=xyp test ca');
  const otherCa = testCertificateAuthority(dir, 'other-ca', '/CN=xyp test other-ca');
  const server = ca.issue('server', '/CN=xyp-server', ['subjectAltName=IP:127.0.0.1,DNS:localhost', 'extendedKeyUsage=serverAuth']);
  const client = ca.issue('client', '/CN=xyp-client', ['extendedKeyUsage=clientAuth']);
  // The stranger is a client whose certificate another CA signed.
  const stranger = otherCa.issue('stranger', '/CN=xyp-stranger', ['extendedKeyUsage=clientAuth']);
  return {
    ca: ca.cert,
    serverCert: server.cert,
    serverKey: server.key,
    clientCert: client.cert,
    clientKey: client.key,
    otherCa: otherCa.cert,
    strangerCert: stranger.cert,
    strangerKey: stranger.key,
  };
}

describe('mutual TLS where a CA is configured', () => {
  const dir = mkdtempSync(join(tmpdir(), 'xyp-grpc-tls-'));
  let pem: ReturnType<typeof makeCertificates>;
  let server: Awaited<ReturnType<typeof startServer>>;

  beforeAll(async () => {
    pem = makeCertificates(dir);
    server = await startServer({ tokens: [TOKEN], tls: { cert: pem.serverCert, key: pem.serverKey, ca: pem.ca } });
  });
  afterAll(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a client without a certificate, and one whose certificate another CA signed', async () => {
    for (const tls of [{ ca: pem.ca }, { ca: pem.ca, cert: pem.strangerCert, key: pem.strangerKey }]) {
      const noCert = createPipelineClient(server.address, { token: TOKEN, tls });
      try {
        expect((await failure(getRun(noCert))).code).toBe(status.UNAVAILABLE);
      } finally {
        noCert.close();
      }
    }
    const plaintext = createPipelineClient(server.address, { token: TOKEN });
    try {
      expect((await failure(getRun(plaintext))).code).toBe(status.UNAVAILABLE);
    } finally {
      plaintext.close();
    }
  });

  it('accepts a client with a certificate the CA signed (and still requires the token)', async () => {
    const tls = { ca: pem.ca, cert: pem.clientCert, key: pem.clientKey };
    const mutual = createPipelineClient(server.address, { token: TOKEN, tls });
    const tokenless = createPipelineClient(server.address, { tls });
    try {
      expect((await getRun(mutual, 'run-tls')).run?.runId).toBe('run-tls');
      expect(await watchAll(mutual)).toEqual(['1-0', '2-0', '3-0']);
      expect((await failure(getRun(tokenless))).code).toBe(status.UNAUTHENTICATED);
    } finally {
      mutual.close();
      tokenless.close();
    }
  });

  it('is refused by a client that does not trust the server certificate', async () => {
    const distrustful = createPipelineClient(server.address, { token: TOKEN, tls: { ca: pem.otherCa, cert: pem.clientCert, key: pem.clientKey } });
    try {
      expect((await failure(getRun(distrustful))).code).toBe(status.UNAVAILABLE);
    } finally {
      distrustful.close();
    }
  });
});

/** The common name of the certificate a TLS server on `port` presents to a new connection (with the client certificate it asks for). */
function presentedName(port: number, trust: { ca: Buffer; cert: Buffer; key: Buffer }): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ...trust, ALPNProtocols: ['h2'] }, () => {
      const name = socket.getPeerCertificate().subject.CN;
      socket.destroy();
      resolve(String(name));
    });
    socket.on('error', reject);
  });
}

describe('a renewed certificate is served without a restart', () => {
  const dir = mkdtempSync(join(tmpdir(), 'xyp-grpc-tls-renew-'));
  const files = { cert: join(dir, 'tls.crt'), key: join(dir, 'tls.key'), ca: join(dir, 'ca.crt') };
  const pem = {} as Record<'ca' | 'serverCert' | 'serverKey' | 'clientCert' | 'clientKey', Buffer>;
  let renewed: { cert: Buffer; key: Buffer };
  let server: Awaited<ReturnType<typeof startServer>>;
  const warnings: string[] = [];

  beforeAll(async () => {
    const ca = testCertificateAuthority(dir, 'ca', '/CN=xyp test ca');
    const serverAuth = ['subjectAltName=IP:127.0.0.1,DNS:localhost', 'extendedKeyUsage=serverAuth'];
    const first = ca.issue('server', '/CN=xyp-server', serverAuth);
    const client = ca.issue('client', '/CN=xyp-client', ['extendedKeyUsage=clientAuth']);
    renewed = ca.issue('renewed', '/CN=xyp-server-renewed', serverAuth);
    Object.assign(pem, { ca: ca.cert, serverCert: first.cert, serverKey: first.key, clientCert: client.cert, clientKey: client.key });
    writeFileSync(files.cert, pem.serverCert);
    writeFileSync(files.key, pem.serverKey);
    writeFileSync(files.ca, pem.ca);
    vi.spyOn(Logger.prototype, 'warn').mockImplementation((message: unknown) => void warnings.push(String(message)));
    // As a service reads it: XYP_GRPC_TLS_* name the files.
    server = await startServer(grpcServerSecurity({ XYP_GRPC_TOKENS: [TOKEN], XYP_GRPC_TLS_CERT: files.cert, XYP_GRPC_TLS_KEY: files.key, XYP_GRPC_TLS_CA: files.ca } as GrpcEnv));
  });
  afterAll(async () => {
    vi.restoreAllMocks();
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('new connections get the renewed certificate, open ones keep working, and a bad pair keeps the last good one', async () => {
    const trust = { ca: pem.ca, cert: pem.clientCert, key: pem.clientKey };
    expect(server.grpc.tls).toBeInstanceOf(WatchedTlsFiles);
    expect(await presentedName(server.port, trust)).toBe('xyp-server');
    const before = createPipelineClient(server.address, { token: TOKEN, tls: trust });
    try {
      expect((await getRun(before, 'run-before')).run?.runId).toBe('run-before');
      // A certificate with the key of another: refused, the old one still served, with a warning naming the files.
      writeFileSync(files.cert, pem.serverCert);
      writeFileSync(files.key, pem.clientKey);
      server.grpc.tls!.reload();
      expect(warnings.some((w) => w.includes(files.cert) && w.includes("the key is not the certificate's") && w.includes('serving the certificate read before'))).toBe(true);
      expect(await presentedName(server.port, trust)).toBe('xyp-server');
      writeFileSync(files.cert, 'not a certificate');
      server.grpc.tls!.reload();
      expect(warnings.some((w) => w.includes('the certificate does not parse'))).toBe(true);
      expect(await presentedName(server.port, trust)).toBe('xyp-server');
      // The renewed pair: served to the next connection.
      writeFileSync(files.cert, renewed.cert);
      writeFileSync(files.key, renewed.key);
      server.grpc.tls!.reload();
      expect(await presentedName(server.port, trust)).toBe('xyp-server-renewed');
      const after = createPipelineClient(server.address, { token: TOKEN, tls: trust });
      try {
        expect((await getRun(after, 'run-after')).run?.runId).toBe('run-after');
      } finally {
        after.close();
      }
      // The channel opened before the renewal goes on.
      expect((await getRun(before, 'run-still')).run?.runId).toBe('run-still');
    } finally {
      before.close();
    }
  });
});

describe('WatchedTlsFiles', () => {
  it('notices a changed file by polling and tells its listeners; refuses bad material at the start', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xyp-tls-watch-'));
    try {
      const ca = testCertificateAuthority(dir, 'ca', '/CN=xyp watch ca');
      const first = ca.issue('first', '/CN=first', ['extendedKeyUsage=serverAuth']);
      const second = ca.issue('second', '/CN=second', ['extendedKeyUsage=serverAuth']);
      const paths = { cert: join(dir, 'tls.crt'), key: join(dir, 'tls.key') };
      writeFileSync(paths.cert, first.cert);
      writeFileSync(paths.key, first.key);
      expect(() => new WatchedTlsFiles(paths, { cert: first.cert, key: second.key }, () => undefined)).toThrow(/the key is not the certificate's/);
      const watched = new WatchedTlsFiles(paths, first, () => undefined, 20);
      const seen: string[] = [];
      watched.addIdentityCertificateListener((update) => void seen.push(update ? update.certificate.toString() : 'none'));
      try {
        await vi.waitFor(() => expect(seen).toEqual([first.cert.toString()]));
        writeFileSync(paths.key, second.key);
        writeFileSync(paths.cert, second.cert);
        await vi.waitFor(() => expect(seen.at(-1)).toBe(second.cert.toString()), { timeout: 3000, interval: 20 });
        expect(watched.material.key.equals(second.key)).toBe(true);
      } finally {
        watched.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
