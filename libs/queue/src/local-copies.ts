import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ArtifactStore } from '@xyp/storage';

/**
 * Runs `work` with local copies of store objects (the engine reads its JSONL inputs from files):
 * each key is written to a fresh temporary directory under the name given, and the directory is
 * removed afterwards, whatever happens.
 */
export async function withLocalCopies<T>(store: ArtifactStore, objects: Record<string, string>, work: (paths: Record<string, string>) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'xyp-stage-'));
  try {
    const paths: Record<string, string> = {};
    for (const [name, key] of Object.entries(objects)) {
      paths[name] = join(dir, name);
      await writeFile(paths[name], await store.getObject(key));
    }
    return await work(paths);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
