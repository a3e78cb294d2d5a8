/**
 * Train/test assignment by prompt: a pair goes to test when the salted hash of its normalized
 * prompt (every turn, with roles) falls below `testFraction`. All pairs of one prompt land on the
 * same side, whatever their order or file, and the same seed always gives the same split.
 */
import { createHash } from 'node:crypto';

export type Split = 'train' | 'test';

/**
 * u = first 48 bits of sha256(`${seed}\0${promptKey}`) / 2^48; test when u < testFraction.
 * `promptKey` is `promptKey(record.prompt)` from `./normalize`.
 */
export function splitOf(promptKey: string, seed: string | number, testFraction: number): Split {
  if (!(testFraction >= 0 && testFraction <= 1)) throw new Error(`testFraction must be in [0, 1], got ${testFraction}`);
  const digest = createHash('sha256').update(`${seed}\u0000${promptKey}`).digest();
  const u = digest.readUIntBE(0, 6) / 2 ** 48;
  return u < testFraction ? 'test' : 'train';
}
