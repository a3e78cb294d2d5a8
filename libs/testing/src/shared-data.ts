import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

/**
 * A file of the development machines' shared public data (`shared/data/`, beside the checkout on
 * the development machines and CI: HH-RLHF harmless-base, say), looked up in `XYP_SHARED_DATA_DIR`,
 * then `../shared/data` beside the repository, then `/work/shared/data`. Undefined when none has
 * it (a checkout elsewhere): a test on it says so and skips, it never passes without the data.
 */
export function sharedDataFile(relative: string): string | undefined {
  const root = resolve(__dirname, '..', '..', '..');
  const dirs = [process.env.XYP_SHARED_DATA_DIR, join(root, '..', 'shared', 'data'), '/work/shared/data'].filter((d): d is string => Boolean(d));
  return dirs.map((dir) => join(dir, relative)).find((file) => existsSync(file));
}
