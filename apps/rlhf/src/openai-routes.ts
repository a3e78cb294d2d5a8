import { Logger, type INestApplication } from '@nestjs/common';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { BackendOptions } from '@xyp/engine';
import { OpenAiService, loadServedModel } from '@xyp/openai-server';
import { ARTIFACT_STORE, type ArtifactStore } from '@xyp/storage';

/**
 * Mounts the engine's OpenAI routes on the app's HTTP server under `/v1`. Express strips the mount
 * path, so `req.url` is the route below `/v1` that `OpenAiService.handle` expects.
 */
export function mountOpenAiRoutes(app: INestApplication, service: OpenAiService): void {
  app.use('/v1', (req: IncomingMessage, res: ServerResponse) => void service.handle(req, res, req.url ?? '/'));
}

/**
 * When `checkpoint` is set (`XYP_RLHF_SERVE_CHECKPOINT`), loads it from the app's ArtifactStore (or
 * a directory) on the engine backend `backend` (from `XYP_ENGINE_*`) and serves it at `/v1`, so the
 * synthesis service and OpenAI clients can call it.
 */
export async function serveCheckpoint(app: INestApplication, checkpoint: string | undefined, backend: BackendOptions = {}): Promise<OpenAiService | undefined> {
  if (!checkpoint) return undefined;
  const logger = new Logger('openai');
  const store = app.get<ArtifactStore>(ARTIFACT_STORE, { strict: false });
  const served = await loadServedModel(checkpoint, { store, backend });
  const service = new OpenAiService({ models: [served], onError: (error) => logger.error(error instanceof Error ? error.message : String(error)) });
  mountOpenAiRoutes(app, service);
  logger.log(`serving ${served.id} (context ${served.model.config.contextLength}) over the OpenAI API at /v1`);
  return service;
}
