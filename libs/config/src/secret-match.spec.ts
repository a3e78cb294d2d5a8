import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { sameSecret, secretDigest } from './secret-match';

describe('sameSecret', () => {
  it('matches equal secrets only, whatever their lengths, as strings or bytes', () => {
    expect(sameSecret('a-metrics-token-0123', 'a-metrics-token-0123')).toBe(true);
    expect(sameSecret(Buffer.from('admin:pw-123456'), 'admin:pw-123456')).toBe(true);
    expect(sameSecret('a-metrics-token-0124', 'a-metrics-token-0123')).toBe(false);
    expect(sameSecret('a-metrics-token-012', 'a-metrics-token-0123')).toBe(false);
    expect(sameSecret('', 'a-metrics-token-0123')).toBe(false);
  });

  it('digests with SHA-256', () => {
    expect(secretDigest('token').equals(createHash('sha256').update('token', 'utf8').digest())).toBe(true);
  });
});
