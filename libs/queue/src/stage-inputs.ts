/**
 * Small helpers of stage workers that read committed inputs: a JSON object from the store, and work
 * whose input errors fail the stage for good.
 */
import { UnrecoverableError } from 'bullmq';
import type { ArtifactStore } from '@xyp/storage';

/**
 * The JSON at `key`. Reading is retried like any I/O (a store error propagates as is); a body that
 * is not JSON fails the stage for good, naming `slot` and the key.
 */
export async function readStageJson<T = unknown>(store: Pick<ArtifactStore, 'getObject'>, key: string, slot: string): Promise<T> {
  const text = (await store.getObject(key)).toString('utf8');
  try {
    return JSON.parse(text) as T;
  } catch (error) {
    throw new UnrecoverableError(`${slot}: ${key} is not JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/**
 * Runs `work`; an error `permanent` says the input caused (a spec path, a `file:line`, an algorithm's
 * own input error) becomes an `UnrecoverableError` with its message: the same input fails the same
 * way on every retry. Other errors propagate unchanged.
 */
export async function failForGoodIf<T>(work: () => Promise<T>, permanent: (error: unknown) => boolean): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (!(error instanceof UnrecoverableError) && permanent(error)) throw new UnrecoverableError(error instanceof Error ? error.message : String(error));
    throw error;
  }
}
