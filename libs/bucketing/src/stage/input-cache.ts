import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { randomBytes } from 'node:crypto';
import type { ArtifactStore } from '@xyp/storage';

/**
 * A local copy of a content-addressed input object, which shard readers need (they seek
 * to their first line). Keys end in the object's SHA-256, so a copy, once complete, is
 * valid forever: each worker machine downloads an input once, whatever the number of
 * shards it runs. Written to a temporary name and renamed, so a crash leaves no half file.
 */
export async function materializeInput(store: ArtifactStore, key: string, cacheDir: string): Promise<string> {
  const digest = key.split('/').pop() ?? '';
  if (!/^[0-9a-f]{64}$/.test(digest)) throw new Error(`input key ${key} is not content-addressed`);
  const target = join(cacheDir, `${digest}.jsonl`);
  if (await stat(target).then(() => true, () => false)) return target;
  await mkdir(cacheDir, { recursive: true });
  const temporary = `${target}.${randomBytes(4).toString('hex')}.partial`;
  try {
    await pipeline(await store.getObjectStream(key), createWriteStream(temporary));
    await rename(temporary, target);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
  return target;
}
