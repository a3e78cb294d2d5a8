import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createWriteStream, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { configuredHttpPort } from '@xyp/config';
import { launchGrpcEnv } from './grpc-token';
import { REGISTER_HOOK, httpPortVariable, serviceEntry, type ServiceName } from './services';

/** The variable through which the launcher tells a service who it is (see `/readyz`). */
export const INSTANCE_ID_VARIABLE = 'XYP_INSTANCE_ID';

export interface ServiceProcess {
  name: ServiceName;
  child: ChildProcess;
  pid: number;
  /** Passed to the service in XYP_INSTANCE_ID; its `/readyz` must answer with it. */
  instanceId: string;
  httpPort: number;
  httpUrl: string;
  logFile?: string;
  /** Resolves once `/readyz` answered with this process's instance id; rejects with a one-line error otherwise. */
  ready: Promise<void>;
  /** Resolves with the exit code (or signal) when the process ends. */
  exited: Promise<number | NodeJS.Signals>;
  /** True once `stop()` was called: an exit after it is expected. */
  readonly stopRequested: boolean;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
  stop(graceMs?: number): Promise<number | NodeJS.Signals>;
}

export interface StartOptions {
  env: Record<string, string>;
  /** Append the service's stdout and stderr to this file; inherit the terminal when absent. */
  logFile?: string;
  /**
   * The HTTP port (health, metrics, Bull Board). When absent, the service's own variable
   * (`XYP_<SERVICE>_HTTP_PORT`, from `env` or this process's environment) decides, else
   * its schema's default.
   */
  httpPort?: number;
  /** Wait for /readyz this long; 0 skips the wait. */
  readyTimeoutMs?: number;
}

/** Every child started here that has not exited yet, stopped when this process exits. */
const running = new Set<ChildProcess>();
let exitHookInstalled = false;

function track(child: ChildProcess): void {
  running.add(child);
  child.once('exit', () => running.delete(child));
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Last resort when the launcher ends without stopping its services (an uncaught error,
  // process.exit): SIGTERM every child still running. A launcher killed outright is
  // covered by the services themselves: they shut down when their IPC channel closes.
  process.on('exit', () => {
    for (const left of running) left.kill('SIGTERM');
  });
}

/**
 * Starts one service as its own Node process (SWC register hook, no build step) and
 * returns at once; `ready` settles when its `/readyz` answers for this very process
 * (Redis reachable, store reachable, workers started, same instance id), or when it
 * fails to start. A process that fails to become ready is stopped.
 */
export function spawnServiceProcess(name: ServiceName, options: StartOptions): ServiceProcess {
  const instanceId = `${name}-${randomUUID()}`;
  const env: Record<string, string | undefined> = { ...process.env, ...options.env, [INSTANCE_ID_VARIABLE]: instanceId };
  if (options.httpPort !== undefined) env[httpPortVariable(name)] = String(options.httpPort);
  const port = options.httpPort ?? configuredHttpPort(name, env);
  let stdio: StdioOptions = ['inherit', 'inherit', 'inherit', 'ipc'];
  if (options.logFile) {
    mkdirSync(dirname(options.logFile), { recursive: true });
    stdio = ['ignore', 'pipe', 'pipe', 'ipc'];
  }
  // The IPC channel carries no messages: the service stops when it closes (launcher gone).
  const child = spawn(process.execPath, ['-r', REGISTER_HOOK, serviceEntry(name)], { env, stdio });
  child.channel?.unref();
  track(child);
  if (options.logFile) {
    const log = createWriteStream(options.logFile, { flags: 'a' });
    child.stdout?.pipe(log);
    child.stderr?.pipe(log);
  }
  let stderrTail = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderrTail = (stderrTail + chunk.toString()).slice(-2000)));
  const exited = new Promise<number | NodeJS.Signals>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 0)),
  );
  // A spawn that fails (no such executable) emits 'error' and no 'exit'.
  child.once('error', () => undefined);
  const httpUrl = `http://127.0.0.1:${port}`;
  let stopRequested = false;
  const stop = async (graceMs = 15_000) => {
    stopRequested = true;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const result = await exited;
      clearTimeout(timer);
      return result;
    }
    return exited;
  };
  const service: ServiceProcess = {
    name,
    child,
    pid: child.pid ?? 0,
    instanceId,
    httpPort: port,
    httpUrl,
    logFile: options.logFile,
    exited,
    get stopRequested() {
      return stopRequested;
    },
    stop,
    ready: Promise.resolve(),
  };
  const readyTimeoutMs = options.readyTimeoutMs ?? 60_000;
  if (readyTimeoutMs > 0) {
    service.ready = waitUntilReady(service, readyTimeoutMs, () => stderrTail, () => stopRequested);
    // Settled by whoever awaits it; never an unhandled rejection when nobody does.
    service.ready.catch(() => undefined);
  }
  return service;
}

/**
 * Starts one service and waits until it is ready (see `spawnServiceProcess`); throws a
 * one-line error, after stopping the process, when it is not.
 */
export async function startServiceProcess(name: ServiceName, options: StartOptions): Promise<ServiceProcess> {
  const service = spawnServiceProcess(name, options);
  await service.ready;
  return service;
}

interface ReadyAnswer {
  instance?: unknown;
  pid?: unknown;
}

async function waitUntilReady(service: ServiceProcess, timeoutMs: number, stderrTail: () => string, stopped: () => boolean): Promise<void> {
  const { name, child, httpUrl, httpPort } = service;
  const deadline = Date.now() + timeoutMs;
  let lastError: string;
  /** Another process answering on this service's port: a stale one, never taken for this one. */
  let impostor: string | undefined;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(startFailure(name, child, stderrTail(), impostor, stopped()));
    }
    try {
      const response = await fetch(`${httpUrl}/readyz`, { signal: AbortSignal.timeout(2000) });
      const body = (await response.json().catch(() => ({}))) as ReadyAnswer;
      if (body.instance !== service.instanceId) {
        impostor = `pid ${typeof body.pid === 'number' ? body.pid : 'unknown'}${typeof body.instance === 'string' ? `, instance ${body.instance}` : ''}`;
        lastError = `port ${httpPort} answers for another process (${impostor})`;
      } else if (response.ok) {
        return;
      } else {
        lastError = `readyz answered ${response.status}`;
      }
    } catch (error) {
      lastError = error instanceof Error ? error.message : String(error);
    }
    if (Date.now() > deadline) {
      await service.stop(1000);
      throw new Error(`${name}: not ready after ${timeoutMs} ms (${lastError})`);
    }
    await new Promise((r) => setTimeout(r, 150));
  }
}

/**
 * One line for a service that ended before it was ready. A service's own error line
 * (`corpus: invalid configuration: …`, `corpus: port 3101 (…) is already in use`) is
 * kept as it is; what the launcher knows (who holds the port) is added to it.
 */
function startFailure(name: ServiceName, child: ChildProcess, stderr: string, impostor: string | undefined, stopped: boolean): string {
  const how = child.exitCode !== null ? `code ${child.exitCode}` : `signal ${child.signalCode}`;
  if (stopped) return `${name}: stopped (${how}) before it was ready`;
  const own = lastLine(stderr);
  const line = own.startsWith(`${name}: `) ? own : `${name}: exited with ${how} before it was ready${own ? `: ${own}` : ''}`;
  return impostor && line.includes('already in use') ? `${line}, by another process (${impostor}): stop it first` : line;
}

function lastLine(text: string): string {
  const lines = text.trim().split('\n');
  return lines[lines.length - 1] ?? '';
}

/** How a service ended: `code 1` or `signal SIGKILL`. */
export function describeExit(result: number | NodeJS.Signals): string {
  return typeof result === 'number' ? `code ${result}` : `signal ${result}`;
}

/** A service that exited while nobody had asked it to stop. */
export interface UnexpectedExit {
  service: ServiceProcess;
  result: number | NodeJS.Signals;
}

/**
 * The services of one platform, started together and stopped together: `start` stops
 * every one of them when any fails to start, and `unexpectedExit` resolves when one that
 * was ready exits without having been asked to. Every service of the group gets the
 * group's gRPC token (`launchGrpcEnv`; a service's own `env` may override it).
 */
export class ServiceGroup {
  readonly services: ServiceProcess[] = [];
  readonly unexpectedExit: Promise<UnexpectedExit>;
  /** `XYP_GRPC_TOKENS` and `XYP_GRPC_TOKEN` of this launch; empty where the environment configures tokens itself. */
  readonly grpcEnv: Record<string, string>;
  private resolveUnexpected!: (exit: UnexpectedExit) => void;
  private stopping?: Promise<void>;

  constructor(environment: Record<string, string | undefined> = process.env) {
    this.unexpectedExit = new Promise((resolve) => (this.resolveUnexpected = resolve));
    this.grpcEnv = launchGrpcEnv(environment);
  }

  /** The token a client of this group's services sends: this launch's, else the environment's `XYP_GRPC_TOKEN`. */
  get grpcToken(): string | undefined {
    return this.grpcEnv.XYP_GRPC_TOKEN ?? (process.env.XYP_GRPC_TOKEN || undefined);
  }

  /**
   * Starts the services side by side and waits until every one is ready. When one fails,
   * every service of the group (those still starting included) is stopped before the
   * first failure is thrown.
   */
  async start(
    names: readonly ServiceName[],
    optionsFor: (name: ServiceName) => StartOptions,
    onReady: (service: ServiceProcess) => void = () => undefined,
  ): Promise<ServiceProcess[]> {
    const started = names.map((name) => {
      const options = optionsFor(name);
      const service = spawnServiceProcess(name, { ...options, env: { ...this.grpcEnv, ...options.env } });
      this.services.push(service);
      let wasReady = false;
      service.ready.then(() => (wasReady = true), () => undefined);
      void service.exited.then((result) => {
        if (wasReady && !service.stopRequested && !this.stopping) this.resolveUnexpected({ service, result });
      });
      return service;
    });
    try {
      await Promise.all(started.map((service) => service.ready.then(() => onReady(service))));
    } catch (error) {
      await this.stop(5000);
      throw error;
    }
    return started;
  }

  /** Stops every service (SIGTERM, SIGKILL after `graceMs`); the same promise for every caller. */
  stop(graceMs?: number): Promise<void> {
    return (this.stopping ??= Promise.all(this.services.map((service) => service.stop(graceMs))).then(() => undefined));
  }
}
