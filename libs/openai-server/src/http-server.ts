/**
 * A bare `node:http` server for the OpenAI routes (`xyp serve`): `/v1/*` goes to `OpenAiService`,
 * `/health` answers 200 like vLLM's, anything else is an OpenAI-style 404.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { initBackend, loadModel, openCheckpoint, type BackendOptions, type CheckpointObjectStore } from '@xyp/engine';
import { OpenAiError } from './protocol';
import type { OpenAiService, ServedModel } from './openai-service';

export interface OpenAiServerHandle {
  server: Server;
  /** `http://host:port`, the base URL without `/v1`. */
  url: string;
  port: number;
  /** Stops accepting connections, lets requests in flight finish (up to `graceMs`), then closes the rest. */
  close(graceMs?: number): Promise<void>;
}

export async function startOpenAiServer(service: OpenAiService, options: { port: number; host?: string }): Promise<OpenAiServerHandle> {
  const host = options.host ?? '127.0.0.1';
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/v1' || path.startsWith('/v1/')) {
      void service.handle(req, res, path.slice(3) || '/');
      return;
    }
    const error = path === '/health' ? undefined : new OpenAiError(404, `Unknown request URL: ${req.method} ${path}. The API is under /v1.`, 'invalid_request_error', null, 'unknown_url');
    const body = JSON.stringify(error ? error.body() : { status: 'ok' });
    res.writeHead(error ? 404 : 200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  return {
    server,
    port,
    url: `http://${shownHost}:${port}`,
    close: (graceMs = 5_000) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => server.closeAllConnections(), graceMs);
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
        // Keep-alive connections (the openai client keeps them) would otherwise hold `close` open.
        server.closeIdleConnections();
      }),
  };
}

export interface LoadServedModelOptions {
  /** The name clients pass as `model`; default the checkpoint reference. */
  name?: string;
  /** Where a `<runId>/<stage>` checkpoint is read from (an `ArtifactStore`); not needed for a directory. */
  store?: CheckpointObjectStore;
  /** Engine backend settings (`engineBackendOptions` of `@xyp/config` reads them from `XYP_ENGINE_*`). */
  backend?: BackendOptions;
}

/**
 * Loads a checkpoint (ID in the store, or directory) for serving: frozen weights, named `name` or
 * the checkpoint reference.
 */
export async function loadServedModel(checkpoint: string, options: LoadServedModelOptions = {}): Promise<ServedModel> {
  await initBackend(options.backend);
  const { ref, sink } = await openCheckpoint(checkpoint, options.store);
  const model = await loadModel(sink, false);
  return { id: options.name ?? ref.id, model, source: ref.kind === 'store' ? ref.id : ref.dir, created: Math.floor(Date.now() / 1000) };
}
