import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { StageContext } from '@xyp/queue';
import { directoryOutput, type SynthesisOutput } from '@xyp/synthesis-stages';

/** The resume marker kept on the job: the store key of every committed chunk's part file. */
export interface PartsMarker {
  parts: Record<string, string>;
}

const PART = /^chunk-\d{6,}\.jsonl$/;

/**
 * `directoryOutput` in the job's work folder, with every committed chunk's part file also put into the
 * store and its key kept on the job (`keepCheckpoint`). A retry, on this worker or another, first
 * fetches the committed parts into a fresh folder, so `committed()` finds them and the run skips those
 * inputs (the response cache in Redis answers the chunk that was in flight).
 */
export async function storeBackedOutput(context: Pick<StageContext, 'runId' | 'store' | 'resumeCheckpoint' | 'keepCheckpoint'>, stage: string, dir: string): Promise<SynthesisOutput> {
  const marker = (context.resumeCheckpoint as PartsMarker | undefined) ?? { parts: {} };
  const partsDir = join(dir, 'parts');
  await mkdir(partsDir, { recursive: true });
  for (const [name, key] of Object.entries(marker.parts)) await writeFile(join(partsDir, name), await context.store.getObject(key));
  const local = directoryOutput(dir);
  const kept: PartsMarker = { parts: { ...marker.parts } };
  return {
    committed: () => local.committed(),
    saveProgress: (index, state) => local.saveProgress(index, state),
    loadProgress: (index) => local.loadProgress(index),
    finish: (summary, chunks) => local.finish(summary, chunks),
    commitChunk: async (chunk) => {
      await local.commitChunk(chunk);
      for (const name of await readdir(partsDir)) {
        if (!PART.test(name) || kept.parts[name]) continue;
        const entry = await context.store.putObject(context.runId, stage, `part-${name}`, await readFile(join(partsDir, name)), 'application/x-ndjson');
        kept.parts[name] = entry.key;
      }
      await context.keepCheckpoint(kept);
    },
  };
}

