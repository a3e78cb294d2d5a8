import 'reflect-metadata';
import { Logger, type DynamicModule, type INestApplication, type LogLevel } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { z } from 'zod';
import { ConfigError, loadConfig, type PlatformEnv } from '@xyp/config';
import { serviceInstance } from './health.controller';
import { ServiceTelemetryModule, startTelemetry } from './service-telemetry';
import { TelemetryEnv } from './telemetry-env';

/** The HTTP body limit where a service's schema has no `XYP_HTTP_MAX_BODY_BYTES` (1 MiB). */
const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

export interface ServiceDefinition<S extends z.ZodObject> {
  /** App name as in STAGE_OWNERS, e.g. `corpus`. */
  name: string;
  env: S;
  module: (env: z.output<S>) => DynamicModule;
  httpPort: (env: z.output<S>) => number;
  /** Extra set-up before listening (a gRPC transport, say). */
  configure?: (app: INestApplication, env: z.output<S>) => Promise<void> | void;
}

export interface RunningService<S extends z.ZodObject> {
  app: INestApplication;
  env: z.output<S>;
  httpUrl: string;
}

/**
 * Starts one service: validates the environment first (a bad value stops it with one
 * line naming the variable and exit code 1), then builds the Nest app, enables
 * shutdown hooks (SIGTERM/SIGINT close workers, which finish their active jobs) and
 * listens for HTTP (health, and whatever the app mounts). JSON and form bodies above
 * `XYP_HTTP_MAX_BODY_BYTES` are refused with 413 before any handler runs. Logs, tracing and
 * `/metrics` access follow `TelemetryEnv` (`XYP_LOG_FORMAT`, `XYP_OTEL*`, `XYP_METRICS_TOKEN`).
 */
export async function startService<S extends z.ZodObject>(
  definition: ServiceDefinition<S>,
  envSource: Record<string, string | undefined> = process.env,
): Promise<RunningService<S>> {
  const env = loadConfig(definition.env, envSource);
  const logLevels: LogLevel[] = envSource.XYP_LOG_LEVEL === 'debug' ? ['error', 'warn', 'log', 'debug'] : ['error', 'warn', 'log'];
  // Logs (XYP_LOG_FORMAT), tracing (XYP_OTEL) and who may read /metrics (XYP_METRICS_TOKEN).
  const telemetry = loadConfig(TelemetryEnv, envSource);
  const logger = startTelemetry({ service: definition.name, instance: serviceInstance(env as Partial<PlatformEnv>).instance }, telemetry, logLevels);
  const module = withServiceTelemetry(definition.module(env), telemetry);
  const app = await NestFactory.create<NestExpressApplication>(module, { logger, abortOnError: false, bodyParser: false });
  // The parsers Nest registers by default, with an explicit limit instead of body-parser's 100 KB.
  const limit = (env as Partial<PlatformEnv>).XYP_HTTP_MAX_BODY_BYTES ?? DEFAULT_MAX_BODY_BYTES;
  app.useBodyParser('json', { limit });
  app.useBodyParser('urlencoded', { limit, extended: true });
  app.enableShutdownHooks();
  const port = definition.httpPort(env);
  try {
    await definition.configure?.(app, env);
    await app.listen(port, '0.0.0.0');
  } catch (error) {
    // Workers may have started already: close them (and the connections) before failing.
    await app.close().catch(() => undefined);
    throw portInUse(error, env) ?? error;
  }
  const address = app.getHttpServer().address() as { port: number };
  const httpUrl = `http://127.0.0.1:${address.port}`;
  new Logger(definition.name).log(`ready: http ${httpUrl}`);
  return { app, env, httpUrl };
}

/** The app's module with what `startService` adds to every app (`ServiceTelemetryModule`). */
function withServiceTelemetry(module: DynamicModule, env: TelemetryEnv): DynamicModule {
  return { ...module, imports: [...(module.imports ?? []), ServiceTelemetryModule.forRoot(env)] };
}

/**
 * A listen that failed because a port is taken, as one line naming the port and the
 * variable that sets it (`port 3101 (XYP_CORPUS_HTTP_PORT) is already in use`);
 * undefined for any other error. Node and gRPC both say `EADDRINUSE ... <host>:<port>`.
 */
export function portInUse(error: unknown, env: Record<string, unknown>): Error | undefined {
  const text = error instanceof Error ? `${(error as { code?: string }).code ?? ''} ${error.message}` : String(error);
  if (!text.includes('EADDRINUSE')) return undefined;
  const port = /EADDRINUSE[^\n]*?:(\d+)\b/.exec(text)?.[1];
  if (!port) return new Error('a port it listens on is already in use');
  const variable = Object.keys(env).find((key) => key.endsWith('_PORT') && String(env[key]) === port);
  return new Error(`port ${port}${variable ? ` (${variable})` : ''} is already in use`);
}

/**
 * Started by a launcher with an IPC channel (`xyp up`, the tests): when the launcher
 * goes away, even killed with SIGKILL, the channel closes and this process shuts down as
 * on SIGTERM (workers finish their active job), so no service outlives its launcher.
 */
function stopWithLauncher(name: string): void {
  if (!process.channel) return;
  process.channel.unref();
  process.once('disconnect', () => {
    process.stderr.write(`${name}: launcher gone; shutting down\n`);
    process.kill(process.pid, 'SIGTERM');
  });
}

/** `main.ts` of every app: start, or print one line and exit non-zero. */
export function main<S extends z.ZodObject>(definition: ServiceDefinition<S>): void {
  stopWithLauncher(definition.name);
  startService(definition).catch((error: unknown) => {
    const message = error instanceof ConfigError || error instanceof Error ? error.message : String(error);
    process.stderr.write(`${definition.name}: ${message.split('\n')[0]}\n`);
    process.exit(1);
  });
}
