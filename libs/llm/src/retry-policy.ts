/**
 * Which failures the gateway retries and how long it waits: the one place for both (the openai
 * client's own retries are off, `maxRetries: 0`). Statuses and schedule follow the openai client
 * (`shouldRetry`, `calculateDefaultRetryTimeoutMillis` in openai-node's `client.ts`).
 */

/** 408 request timeout, 409 lock timeout, 429 rate limit, 5xx: worth another try. Other 4xx fail at once. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 409 || status === 429 || status >= 500;
}

/** The longest server-asked wait honoured; a longer (or negative) one falls back to backoff. */
export const MAX_RETRY_AFTER_MS = 60_000;

interface HeaderSource {
  get(name: string): string | null;
}

/**
 * The wait a server asks for: `retry-after-ms` (milliseconds), else `retry-after` (seconds or an
 * HTTP date, against `now`). Undefined when absent, unparsable or outside [0, 60 s].
 */
export function retryAfterMs(headers: HeaderSource | undefined, now: number): number | undefined {
  const inRange = (ms: number) => (Number.isFinite(ms) && ms >= 0 && ms <= MAX_RETRY_AFTER_MS ? ms : undefined);
  const msHeader = headers?.get('retry-after-ms');
  if (msHeader) {
    const ms = inRange(Number(msHeader));
    if (ms !== undefined) return ms;
  }
  const header = headers?.get('retry-after')?.trim();
  if (!header) return undefined;
  if (/^\d+(\.\d+)?$/.test(header)) return inRange(Number(header) * 1000);
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : inRange(at - now);
}

/** Backoff before retry `retryIndex` (0 = the first retry) without jitter: 0.5 s · 2^n, at most 8 s. */
export const INITIAL_RETRY_DELAY_MS = 500;
export const MAX_RETRY_DELAY_MS = 8_000;

/**
 * `min(0.5 · 2^n, 8) s · (1 − 0.25 · u)`, u = `random()` in [0, 1): exponential backoff capped at
 * 8 s, less up to 25 % jitter; `scale` multiplies the whole (tests run it at 1 %).
 */
export function backoffMs(retryIndex: number, random: () => number, scale = 1): number {
  const base = Math.min(INITIAL_RETRY_DELAY_MS * 2 ** retryIndex, MAX_RETRY_DELAY_MS);
  return scale * base * (1 - 0.25 * random());
}
