import 'reflect-metadata';
import { Logger, type DynamicModule, type INestApplication, type LogLevel } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { z } from 'zod';
import { ConfigError, loadConfig } from '@xyp/config';

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
 * listens for HTTP (health, and whatever the app mounts).
 */
export async function startService<S extends z.ZodObject>(
  definition: ServiceDefinition<S>,
  envSource: Record<string, string | undefined> = process.env,
): Promise<RunningService<S>> {
  const env = loadConfig(definition.env, envSource);
  const logLevels: LogLevel[] = envSource.XYP_LOG_LEVEL === 'debug' ? ['error', 'warn', 'log', 'debug'] : ['error', 'warn', 'log'];
  const app = await NestFactory.create(definition.module(env), { logger: logLevels, abortOnError: false });
  app.enableShutdownHooks();
  await definition.configure?.(app, env);
  const port = definition.httpPort(env);
  await app.listen(port, '0.0.0.0');
  const address = app.getHttpServer().address() as { port: number };
  const httpUrl = `http://127.0.0.1:${address.port}`;
  new Logger(definition.name).log(`ready: http ${httpUrl}`);
  return { app, env, httpUrl };
}

/** `main.ts` of every app: start, or print one line and exit non-zero. */
export function main<S extends z.ZodObject>(definition: ServiceDefinition<S>): void {
  startService(definition).catch((error: unknown) => {
    const message = error instanceof ConfigError || error instanceof Error ? error.message : String(error);
    process.stderr.write(`${definition.name}: ${message.split('\n')[0]}\n`);
    process.exit(1);
  });
}
