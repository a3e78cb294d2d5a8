import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { REGISTER_HOOK, defaultHttpPort, httpPortVariable, serviceEntry, type ServiceName } from './services';

export interface ServiceProcess {
  name: ServiceName;
  child: ChildProcess;
  httpUrl: string;
  /** Resolves with the exit code (or signal) when the process ends. */
  exited: Promise<number | NodeJS.Signals>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
  stop(graceMs?: number): Promise<number | NodeJS.Signals>;
}

export interface StartOptions {
  env: Record<string, string>;
  /** Append the service's stdout and stderr to this file; inherit the terminal when absent. */
  logFile?: string;
  httpPort?: number;
  /** Wait for /readyz this long; 0 skips the wait. */
  readyTimeoutMs?: number;
}

/**
 * Starts one service as its own Node process (SWC register hook, no build step) and
 * waits until its `/readyz` answers: Redis reachable, store reachable, workers started.
 */
export async function startServiceProcess(name: ServiceName, options: StartOptions): Promise<ServiceProcess> {
  const port = options.httpPort ?? defaultHttpPort(name);
  const env = { ...process.env, ...options.env, [httpPortVariable(name)]: String(port) };
  let stdio: 'inherit' | ['ignore', 'pipe', 'pipe'] = 'inherit';
  if (options.logFile) {
    mkdirSync(dirname(options.logFile), { recursive: true });
    stdio = ['ignore', 'pipe', 'pipe'];
  }
  const child = spawn(process.execPath, ['-r', REGISTER_HOOK, serviceEntry(name)], { env, stdio });
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
  const httpUrl = `http://127.0.0.1:${port}`;
  const service: ServiceProcess = {
    name,
    child,
    httpUrl,
    exited,
    stop: async (graceMs = 15_000) => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        const result = await exited;
        clearTimeout(timer);
        return result;
      }
      return exited;
    },
  };
  const readyTimeoutMs = options.readyTimeoutMs ?? 60_000;
  if (readyTimeoutMs > 0) {
    const deadline = Date.now() + readyTimeoutMs;
    let lastError: string;
    for (;;) {
      if (child.exitCode !== null) {
        throw new Error(`${name} exited with code ${child.exitCode} before it was ready: ${lastLine(stderrTail)}`);
      }
      try {
        const response = await fetch(`${httpUrl}/readyz`);
        if (response.ok) break;
        lastError = `readyz answered ${response.status}`;
      } catch (error) {
        lastError = error instanceof Error ? error.message : String(error);
      }
      if (Date.now() > deadline) {
        await service.stop(1000);
        throw new Error(`${name} not ready after ${readyTimeoutMs} ms (${lastError})`);
      }
      await new Promise((r) => setTimeout(r, 150));
    }
  }
  return service;
}

function lastLine(text: string): string {
  const lines = text.trim().split('\n');
  return lines[lines.length - 1] ?? '';
}
