import { z } from 'zod';

/**
 * A run id names every key a run owns (`runs/<runId>/...`) and prefixes its job ids.
 * BullMQ job ids must not contain `:` and must not be all digits, so ids are
 * lower-case words joined by `-` and start with a letter.
 */
export const RunId = z
  .string()
  .regex(/^[a-z][a-z0-9-]{2,62}$/, 'run id: 3-63 characters of a-z, 0-9 and -, starting with a letter');
export type RunId = z.infer<typeof RunId>;

/** A stage name as used in queue names, keys and events, e.g. `corpus.bucket`. */
export const StageNameFormat = z.string().regex(/^[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)*$/, 'stage name like corpus.bucket');

export const Sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'sha256 as 64 lower-case hex digits');
