import { createHash, timingSafeEqual } from 'node:crypto';

/** The SHA-256 of a secret: the fixed-length form every secret comparison goes through. */
export function secretDigest(secret: string | Buffer): Buffer {
  return createHash('sha256').update(secret).digest();
}

/**
 * Whether a presented secret (a token, `user:password`) equals the expected one, compared as
 * digests in constant time, so the timing shows neither their bytes nor their lengths.
 */
export function sameSecret(given: string | Buffer, expected: string | Buffer): boolean {
  return timingSafeEqual(secretDigest(given), secretDigest(expected));
}
