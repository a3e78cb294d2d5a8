import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { status, type ServiceError } from '@grpc/grpc-js';
import { createPipelineClient, submitRunRequest, unary, watchEvents, type PipelineClient } from '@xyp/grpc';
import { eventually, startTestS3, type TestS3 } from '@xyp/testing';
import { PlatformHarness, jsonl } from './platform-harness';

/** A value no log line could hold by chance, tagged so a leak says which secret it was. */
const secret = (what: string) => `${what}-${randomBytes(12).toString('hex')}`;

/**
 * A short run on the real control plane and corpus services, over an S3 store (s3rver over
 * HTTP), with every secret configured as it is deployed — the Bull Board password, the S3 secret
 * key and the gRPC tokens from mounted files (`*_FILE`) — plus a wrong token and a wrong board
 * password presented by callers. No service log and nothing of the run (its events and record)
 * may contain any of those values.
 */
describe('secrets never reach a log or a run event', () => {
  const secrets = {
    boardPassword: secret('board-password'),
    s3SecretKey: secret('s3-secret-key'),
    grpcToken: secret('grpc-token'),
    wrongGrpcToken: secret('wrong-grpc-token'),
    wrongBoardPassword: secret('wrong-board-password'),
  };
  const s3AccessKey = `XYPE2E${randomBytes(4).toString('hex').toUpperCase()}`;
  let s3: TestS3;
  let harness: PlatformHarness;
  let client: PipelineClient;
  const runId = 'run-secrets';
  let seen = '';

  beforeAll(async () => {
    s3 = await startTestS3('xyp-secrets');
    // s3rver checks the access key and (for v2 signatures) the secret: register the pair this platform uses.
    const accounts = 's3rver/lib/models/account';
    const { DUMMY_ACCOUNT } = (await import(accounts)) as { DUMMY_ACCOUNT: { createKeyPair(id: string, secret: string): void } };
    DUMMY_ACCOUNT.createKeyPair(s3AccessKey, secrets.s3SecretKey);
    harness = new PlatformHarness('secrets');
    const file = (name: string, text: string) => {
      const path = join(harness.storeDir, name);
      writeFileSync(path, text, { mode: 0o600 });
      return path;
    };
    const env = {
      XYP_LOG_LEVEL: 'debug',
      XYP_STORE: 's3',
      XYP_S3_ENDPOINT: s3.endpoint,
      XYP_S3_BUCKET: s3.bucket,
      XYP_S3_ACCESS_KEY: s3AccessKey,
      XYP_S3_SECRET_KEY: '',
      XYP_S3_SECRET_KEY_FILE: file('s3-secret-key', `${secrets.s3SecretKey}\n`),
      XYP_BOARD_PASSWORD: '',
      XYP_BOARD_PASSWORD_FILE: file('board-password', `${secrets.boardPassword}\n`),
      XYP_GRPC_TOKENS_FILE: file('grpc-tokens', `# accepted\n${secrets.grpcToken}\n`),
      XYP_GRPC_TOKEN_FILE: file('grpc-token', secrets.grpcToken),
    };
    await Promise.all([harness.start('control-plane', env), harness.start('corpus', env)]);
    client = createPipelineClient(`127.0.0.1:${harness.grpcPort}`, { token: secrets.grpcToken });
  }, 120_000);

  afterAll(async () => {
    client?.close();
    await harness?.stopAll();
    await s3?.stop();
  }, 30_000);

  it('runs a short corpus run, authenticated, while refused callers present wrong secrets', async () => {
    const wrong = createPipelineClient(`127.0.0.1:${harness.grpcPort}`, { token: secrets.wrongGrpcToken });
    const tokenless = createPipelineClient(`127.0.0.1:${harness.grpcPort}`, {});
    try {
      for (const refused of [wrong, tokenless]) {
        const error = await unary(refused.getRun.bind(refused), { runId }, 10_000).then(() => null, (e: ServiceError) => e);
        expect(error?.code).toBe(status.UNAUTHENTICATED);
        expect(JSON.stringify(error)).not.toContain(secrets.wrongGrpcToken);
      }
    } finally {
      wrong.close();
      tokenless.close();
    }
    const board = harness.services.get('control-plane')!.httpUrl;
    const basic = (password: string) => ({ authorization: `Basic ${Buffer.from(`admin:${password}`).toString('base64')}` });
    expect((await fetch(`${board}/queues`, { headers: basic(secrets.wrongBoardPassword) })).status).toBe(401);
    expect((await fetch(`${board}/queues`, { headers: basic(secrets.boardPassword) })).status).toBe(200);

    const docs = Array.from({ length: 20 }, (_, i) => ({ id: `doc-${i}`, text: `document number ${i} about markets`, category: i % 2 ? 'news' : 'finance' }));
    await unary(client.submitRun.bind(client), submitRunRequest({ runId, stages: ['corpus.inspect'], inputJsonl: jsonl(docs), inputName: 'docs.jsonl' }));
    const finished = await eventually(
      async () => {
        const { run } = await unary(client.getRun.bind(client), { runId });
        const state = String(run?.status);
        return state === 'RUN_STATUS_COMPLETED' || state === 'RUN_STATUS_FAILED' ? run : undefined;
      },
      90_000,
      'the run to end',
    );
    expect(String(finished?.status), finished?.error).toBe('RUN_STATUS_COMPLETED');
    const events: unknown[] = [];
    for await (const message of watchEvents(client.watchRun({ runId, afterEventId: '' }))) events.push(message.event);
    expect(events.length).toBeGreaterThan(2);
    seen = JSON.stringify({ run: finished, events });
  }, 120_000);

  it('finds none of the secrets in any service log or in the run', async () => {
    expect(seen, 'the run above must have finished').not.toBe('');
    const logs: string[] = [];
    for (const service of harness.services.values()) {
      await service.stop(10_000);
      await new Promise((resolve) => setTimeout(resolve, 200));
      logs.push(readFileSync(service.logFile!, 'utf8'));
    }
    // The logs are real: they record the start and the run.
    const all = logs.join('\n');
    expect(all).toContain('ready: http');
    expect(all).toContain(runId);
    for (const [name, value] of Object.entries(secrets)) {
      expect(all.includes(value), `${name} in a service log`).toBe(false);
      expect(seen.includes(value), `${name} in the run's record or events`).toBe(false);
    }
  }, 60_000);
});
