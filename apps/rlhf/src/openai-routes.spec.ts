import { Module, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ArtifactStoreSink, checkpointManifest, disposeModel, initBackend, initParams, saveModel } from '@xyp/engine';
import { ARTIFACT_STORE, LocalDirectoryStore } from '@xyp/storage';
import { serveCheckpoint } from './openai-routes';

const dir = mkdtempSync(join(tmpdir(), 'xyp-rlhf-openai-'));
const store = new LocalDirectoryStore(dir);
let app: INestApplication | undefined;

@Module({ providers: [{ provide: ARTIFACT_STORE, useValue: store }] })
class StoreOnlyModule {}

/** The rlhf app's wiring without Redis: a Nest app with the ArtifactStore, as PlatformModule provides it. */
async function startApp(checkpoint: string | undefined): Promise<{ url: string; served: boolean }> {
  app = await NestFactory.create(StoreOnlyModule, { logger: false });
  const service = await serveCheckpoint(app, checkpoint);
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as { port: number };
  return { url: `http://127.0.0.1:${port}`, served: service !== undefined };
}

beforeAll(async () => {
  await initBackend();
  const model = initParams({ vocabSize: 260, contextLength: 32, layers: 1, width: 16, heads: 2 }, 1);
  const sink = new ArtifactStoreSink(store, 'rlhf-serve', 'engine.lm');
  await saveModel(sink, model);
  // The engine writes the checkpoint's objects; committing its manifest is the caller's.
  expect((await store.commitManifest(checkpointManifest(sink))).committed).toBe(true);
  disposeModel(model);
  return () => rmSync(dir, { recursive: true, force: true });
});

afterEach(async () => {
  await app?.close();
  app = undefined;
});

describe('rlhf app: OpenAI routes', () => {
  it('serves XYP_RLHF_SERVE_CHECKPOINT under /v1 on the app port, through the app JSON body parser', async () => {
    const { url, served } = await startApp('rlhf-serve/engine.lm');
    expect(served).toBe(true);
    const models = (await (await fetch(`${url}/v1/models`)).json()) as { data: { id: string }[] };
    expect(models.data.map((m) => m.id)).toEqual(['rlhf-serve/engine.lm']);
    const response = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ model: 'rlhf-serve/engine.lm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 4, seed: 1 }),
    });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { object: string; usage: { prompt_tokens: number } };
    expect(body.object).toBe('chat.completion');
    expect(body.usage.prompt_tokens).toBe(5);
    const bad = await fetch(`${url}/v1/completions`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"model": "x"}' });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { param: string } }).error.param).toBe('prompt');
  });

  it('mounts nothing when no checkpoint is configured', async () => {
    const { url, served } = await startApp(undefined);
    expect(served).toBe(false);
    expect((await fetch(`${url}/v1/models`)).status).toBe(404);
  });
});
