import { describe, expect, it } from 'vitest';
import { backoffMs, isRetryableStatus, retryAfterMs } from './retry-policy';

const headers = (values: Record<string, string>) => new Headers(values);

describe('retry policy', () => {
  it('retries 408, 409, 429 and 5xx and nothing else', () => {
    expect([408, 409, 429, 500, 502, 503, 504, 599].every(isRetryableStatus)).toBe(true);
    expect([400, 401, 403, 404, 413, 422].some(isRetryableStatus)).toBe(false);
  });

  it('backs off min(0.5·2^n, 8) s, less up to 25 % jitter (hand-computed)', () => {
    // No jitter (u = 0): 0.5, 1, 2, 4, 8, then capped at 8 s.
    expect([0, 1, 2, 3, 4, 5, 6].map((n) => backoffMs(n, () => 0))).toEqual([500, 1000, 2000, 4000, 8000, 8000, 8000]);
    // u = 0.5 takes 12.5 %: 437.5, 875, 1750, 3500, 7000, 7000.
    expect([0, 1, 2, 3, 4, 5].map((n) => backoffMs(n, () => 0.5))).toEqual([437.5, 875, 1750, 3500, 7000, 7000]);
    // u → 1 takes almost 25 %.
    expect(backoffMs(5, () => 0.999)).toBeCloseTo(8000 * (1 - 0.25 * 0.999), 6);
    // The scale multiplies the whole schedule.
    expect(backoffMs(2, () => 0.5, 0.01)).toBeCloseTo(17.5, 9);
  });

  it('reads retry-after-ms, then retry-after in seconds or as an HTTP date, within 0–60 s', () => {
    const now = Date.parse('2030-01-01T00:00:00Z');
    expect(retryAfterMs(headers({ 'retry-after-ms': '250' }), now)).toBe(250);
    expect(retryAfterMs(headers({ 'retry-after-ms': '250', 'retry-after': '9' }), now)).toBe(250);
    expect(retryAfterMs(headers({ 'retry-after': '2' }), now)).toBe(2000);
    expect(retryAfterMs(headers({ 'retry-after': '0.5' }), now)).toBe(500);
    expect(retryAfterMs(headers({ 'retry-after': new Date(now + 3000).toUTCString() }), now)).toBe(3000);
    expect(retryAfterMs(headers({ 'retry-after': '0' }), now)).toBe(0);
  });

  it('ignores a retry-after that is absent, unparsable, negative or over 60 s', () => {
    const now = Date.parse('2030-01-01T00:00:00Z');
    expect(retryAfterMs(undefined, now)).toBeUndefined();
    expect(retryAfterMs(headers({}), now)).toBeUndefined();
    expect(retryAfterMs(headers({ 'retry-after': 'soon' }), now)).toBeUndefined();
    expect(retryAfterMs(headers({ 'retry-after': '61' }), now)).toBeUndefined();
    expect(retryAfterMs(headers({ 'retry-after-ms': '-5' }), now)).toBeUndefined();
    expect(retryAfterMs(headers({ 'retry-after-ms': '60001' }), now)).toBeUndefined();
    expect(retryAfterMs(headers({ 'retry-after': new Date(now - 5000).toUTCString() }), now)).toBeUndefined();
    // An out-of-range retry-after-ms falls through to a valid retry-after.
    expect(retryAfterMs(headers({ 'retry-after-ms': '90000', 'retry-after': '1' }), now)).toBe(1000);
  });
});
