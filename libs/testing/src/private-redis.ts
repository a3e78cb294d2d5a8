import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

/**
 * A private `redis-server` on a free port that a test can restart (with its data or empty) and
 * freeze, on the same port: the outages the platform must ride through. Its dump file lives in a
 * directory of its own, so `SHUTDOWN SAVE` never writes into the working tree.
 */
export interface PrivateRedis {
  url: string;
  port: number;
  /** Stops it and starts it again on the same port after `downMs`: `keepData` saves and reloads its dataset, else it comes back empty. */
  restart(options: { keepData: boolean; downMs?: number }): Promise<void>;
  /** SIGSTOP for `ms`, then SIGCONT: connections stay open, nothing answers meanwhile. */
  freeze(ms: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startPrivateRedis(port: number): Promise<PrivateRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'xyp-redis-'));
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--dbfilename', 'dump.rdb', '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction'];
  let child: ChildProcess = await launch(args, port);
  const exited = (process: ChildProcess) => new Promise<void>((resolve) => (process.exitCode !== null || process.signalCode !== null ? resolve() : process.once('exit', () => resolve())));
  const shutdown = async (save: boolean) => {
    const admin = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 0, retryStrategy: () => null });
    admin.on('error', () => undefined);
    // SHUTDOWN closes the connection instead of answering.
    await admin.call('SHUTDOWN', save ? 'SAVE' : 'NOSAVE').catch(() => undefined);
    admin.disconnect();
    await exited(child);
  };
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    async restart({ keepData, downMs = 0 }) {
      await shutdown(keepData);
      if (!keepData) rmSync(join(dir, 'dump.rdb'), { force: true });
      await new Promise((r) => setTimeout(r, downMs));
      child = await launch(args, port);
    },
    async freeze(ms) {
      child.kill('SIGSTOP');
      await new Promise((r) => setTimeout(r, ms));
      child.kill('SIGCONT');
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGCONT');
        child.kill('SIGTERM');
        await exited(child);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function launch(args: string[], port: number): Promise<ChildProcess> {
  const child = spawn('redis-server', args, { stdio: 'ignore' });
  const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on('error', () => undefined);
  try {
    for (let i = 0; i < 200; i++) {
      try {
        if (probe.status !== 'ready') await probe.connect();
        if ((await probe.ping()) === 'PONG') return child;
      } catch {
        probe.disconnect();
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  } finally {
    probe.disconnect();
  }
  child.kill('SIGKILL');
  throw new Error(`redis-server on port ${port} did not answer PING within 10 s`);
}
