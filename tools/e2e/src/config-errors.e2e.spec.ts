import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { REGISTER_HOOK, serviceEntry } from '@xyp/launcher';

function startWith(service: 'corpus' | 'control-plane', env: Record<string, string>) {
  return spawnSync(process.execPath, ['-r', REGISTER_HOOK, serviceEntry(service)], {
    env: { PATH: process.env.PATH ?? '', ...env },
    encoding: 'utf8',
    timeout: 30_000,
  });
}

describe('a service started with a bad configuration value', () => {
  it('prints one line naming the variable and exits non-zero', () => {
    const result = startWith('corpus', { XYP_WORKER_CONCURRENCY: 'lots' });
    expect(result.status).toBe(1);
    expect(result.stderr.trim().split('\n')).toEqual(['corpus: invalid configuration: XYP_WORKER_CONCURRENCY: must be a number (got "lots")']);
  });

  it('refuses to start the control plane without Bull Board credentials', () => {
    const result = startWith('control-plane', {});
    expect(result.status).toBe(1);
    expect(result.stderr.trim()).toBe('control-plane: invalid configuration: XYP_BOARD_PASSWORD: required, Bull Board credentials (not set)');
  });

  it('names a malformed Redis URL', () => {
    const result = startWith('corpus', { XYP_REDIS_URL: 'localhost:6379' });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('XYP_REDIS_URL: must be a redis or rediss URL');
  });
});
