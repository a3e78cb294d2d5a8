import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { runCorpusBucket } from './bench/corpus-run';

/** The bundled sample corpus (`tools/sample-data`). */
export const SAMPLE_CORPUS = resolve(__dirname, '../../../data/sample/corpus.jsonl');

/** Where `--sample` commands keep the sample corpus bucketed with the byte tokenizer. */
export const SAMPLE_SHARDS = '.xyp/sample-shards/byte';

/**
 * The sample corpus bucketed with the byte tokenizer under `.xyp/sample-shards/byte` of `root` (the
 * working directory), built the first time it is needed. The shards are written into a directory of their
 * own and renamed into place when complete, so commands started at once neither read a half-written
 * folder nor write into one another's: the first to finish wins, the others drop their copy.
 */
export async function sampleShards(progress: (line: string) => void, root = process.cwd()): Promise<string> {
  const target = resolve(root, SAMPLE_SHARDS);
  if (existsSync(join(target, 'manifest.json'))) return target;
  const building = `${target}.building-${process.pid}-${randomBytes(4).toString('hex')}`;
  await mkdir(dirname(target), { recursive: true });
  try {
    progress(`bucketing ${SAMPLE_CORPUS} with the byte tokenizer into ${target}`);
    await runCorpusBucket({ input: SAMPLE_CORPUS, out: building, tokenizer: 'byte', config: {}, workers: 1, progress });
    // A folder left by an interrupted build before this scheme (no manifest) is replaced.
    if (existsSync(target) && !existsSync(join(target, 'manifest.json'))) await rm(target, { recursive: true, force: true });
    try {
      await rename(building, target);
    } catch (error) {
      // Another command renamed its copy into place first: use that one.
      if (!existsSync(join(target, 'manifest.json'))) throw error;
    }
  } finally {
    await rm(building, { recursive: true, force: true });
  }
  return target;
}
