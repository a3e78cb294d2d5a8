/**
 * The join stage: the generators' finished outputs concatenated into one SFT dataset, exact and
 * near duplicates removed across all of them, with counts per category and per generator.
 *
 * Deduplication is `dedupItems` of `@xyp/synthesis` done as a stream: each item, in input order
 * (the outputs in the order given, each file in its order), goes through one `DuplicateFilter` on
 * its `dialogueText` — exactly what `dedupItems` does over an array — so the first of two
 * duplicates is kept and memory holds the filter's signatures, not the items. Every line is
 * validated as an `SftItem` (a bad one fails the merge, naming file and line); an item id seen in
 * two inputs fails it too (the same output given twice, or outputs made from colliding input ids).
 *
 * Writes `out/sft.jsonl` (the kept items, provenance as it was), `out/duplicates.jsonl` (each drop:
 * `{id, reason, of, similarity?}`) and `out/merge.json` (`MergeSummary`), each atomically,
 * `merge.json` last.
 */
import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { DuplicateConfig, DuplicateFilter, SftItem, dialogueText } from '@xyp/synthesis';
import { z } from 'zod';
import { parseRunConfig } from './config';
import { fileLines } from './inputs';
import { sortedKeys } from './outcomes';
import { AtomicFile, writeFileAtomic } from './output';

export const MergeConfig = z.object({ dedup: DuplicateConfig.prefault({}) }).strict();
export type MergeConfigInput = z.input<typeof MergeConfig>;

export interface MergeCounts {
  items: number;
  kept: number;
  exactDuplicates: number;
  nearDuplicates: number;
}

export interface MergeSummary {
  /** Each input's `sft.jsonl` and its item count. */
  inputs: { path: string; items: number }[];
  items: number;
  kept: number;
  exactDuplicates: number;
  nearDuplicates: number;
  byCategory: Record<string, MergeCounts>;
  byGenerator: Record<string, MergeCounts>;
  dedup: z.output<typeof DuplicateConfig>;
  files: { sft: string; duplicates: string; merge: string };
}

function zero(): MergeCounts {
  return { items: 0, kept: 0, exactDuplicates: 0, nearDuplicates: 0 };
}

/** `path`, or `path/sft.jsonl` when `path` is a directory (a finished generator output). */
async function sftFile(path: string): Promise<string> {
  const info = await stat(path).catch(() => undefined);
  if (!info) throw new Error(`merge: ${path}: no such file or directory`);
  if (!info.isDirectory()) return path;
  const file = join(path, 'sft.jsonl');
  if (!(await stat(file).catch(() => undefined))) throw new Error(`merge: ${path} has no sft.jsonl (is it a finished synthesis output?)`);
  return file;
}

/** Merges the outputs (directories holding `sft.jsonl`, or the files) into `options.out` (module comment). */
export async function mergeSynthesis(outputs: readonly string[], options: { out: string } & MergeConfigInput): Promise<MergeSummary> {
  const { out, ...rest } = options;
  const config = parseRunConfig(MergeConfig, rest, 'merge');
  if (outputs.length === 0) throw new Error('merge: no inputs');
  const files = { sft: join(out, 'sft.jsonl'), duplicates: join(out, 'duplicates.jsonl'), merge: join(out, 'merge.json') };
  await mkdir(out, { recursive: true });
  const filter = new DuplicateFilter(config.dedup);
  const seen = new Map<string, string>();
  const total = zero();
  const byCategory: Record<string, MergeCounts> = {};
  const byGenerator: Record<string, MergeCounts> = {};
  const inputs: MergeSummary['inputs'] = [];
  const sft = await AtomicFile.open(files.sft);
  const duplicates = await AtomicFile.open(files.duplicates);
  try {
    for (const output of outputs) {
      const path = await sftFile(output);
      let line = 0;
      let items = 0;
      for await (const text of fileLines(path)) {
        line++;
        if (text.trim().length === 0) continue;
        let value: unknown;
        try {
          value = JSON.parse(text);
        } catch (error) {
          throw new Error(`merge: ${path}:${line}: not valid JSON (${error instanceof Error ? error.message : String(error)})`, { cause: error });
        }
        const parsed = SftItem.safeParse(value);
        if (!parsed.success) throw new Error(`merge: ${path}:${line}: not an SFT item (${parsed.error.issues[0]?.path.join('.')}: ${parsed.error.issues[0]?.message})`);
        const item = parsed.data;
        const earlier = seen.get(item.id);
        if (earlier !== undefined) throw new Error(`merge: ${path}:${line}: item id ${item.id} is also in ${earlier}`);
        seen.set(item.id, `${path}:${line}`);
        items++;
        const counts = [total, (byCategory[item.category] ??= zero()), (byGenerator[item.provenance.generator] ??= zero())];
        for (const c of counts) c.items++;
        const match = filter.check(item.id, dialogueText(item.messages));
        if (!match) {
          for (const c of counts) c.kept++;
          await sft.write(`${JSON.stringify(item)}\n`);
        } else if (match.kind === 'exact') {
          for (const c of counts) c.exactDuplicates++;
          await duplicates.write(`${JSON.stringify({ id: item.id, reason: 'exact-duplicate', of: match.of })}\n`);
        } else {
          for (const c of counts) c.nearDuplicates++;
          await duplicates.write(`${JSON.stringify({ id: item.id, reason: 'near-duplicate', of: match.of, similarity: match.similarity })}\n`);
        }
      }
      inputs.push({ path, items });
    }
  } catch (error) {
    await sft.abort();
    await duplicates.abort();
    throw error;
  }
  await sft.commit();
  await duplicates.commit();
  const summary: MergeSummary = { inputs, ...total, byCategory: sortedKeys(byCategory), byGenerator: sortedKeys(byGenerator), dedup: config.dedup, files };
  await writeFileAtomic(files.merge, `${JSON.stringify(summary, null, 2)}\n`);
  return summary;
}
