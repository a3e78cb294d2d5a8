import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { CATEGORY_SPLIT_INDEX, splitBucketsByCategory, type CategorySplitResult } from '@xyp/bucketing';
import { exitWithError, printResult, progress } from '../cli-output';

interface SplitOptions {
  shards: string;
  out: string;
  json?: boolean;
}

interface SplitSummary extends CategorySplitResult {
  shards: string;
  out: string;
  seconds: number;
}

function human(summary: SplitSummary): string {
  const lengths = Object.keys(summary.buckets);
  const rows = Object.entries(summary.index).map(([category, { buckets }]) => {
    const cells = lengths.map((length) => String(buckets[length]?.documents ?? 0).padStart(10));
    const tokens = Object.values(buckets).reduce((sum, entry) => sum + entry.tokens, 0);
    return `  ${category.padEnd(24)}${cells.join('')}${String(tokens).padStart(12)}`;
  });
  return [
    `${summary.shards} -> ${summary.out}: ${summary.files.length - 1} files (${summary.dtype}) and ${CATEGORY_SPLIT_INDEX}, ${summary.seconds.toFixed(2)} s`,
    `  ${'category'.padEnd(24)}${lengths.map((length) => `seq@${length}`.padStart(10)).join('')}${'tokens'.padStart(12)}`,
    ...rows,
  ].join('\n');
}

/**
 * `xyp corpus split-categories`: one Megatron dataset per (bucket, category) of a bucketing run,
 * `<prefix>.cat-<slug>.bin/.idx`, and `categories.json`, so a Megatron-LM job can blend categories
 * by weight (`--data-path w prefix …`; `megatronCategoryBlend` of `@xyp/cluster`).
 */
export function registerCorpusSplit(parent: Command): void {
  parent
    .command('split-categories')
    .description('Split the packed Megatron datasets of a bucketing run into one dataset per category, for weighted blends (Megatron --data-path)')
    .requiredOption('--shards <dir>', 'output directory of `xyp corpus bucket` (bucket_<L>.bin/.idx, .categories.u16, manifest.json)')
    .requiredOption('--out <dir>', 'where to write bucket_<L>.cat-<category>.bin/.idx and categories.json')
    .option('--json', 'print {shards, out, dtype, index, buckets, files} as JSON')
    .action(async (options: SplitOptions) => {
      try {
        const shards = resolve(options.shards);
        let isDirectory = false;
        try {
          isDirectory = statSync(shards).isDirectory();
        } catch {
          isDirectory = false;
        }
        if (!isDirectory) throw new Error(`--shards ${options.shards}: not a directory`);
        const out = resolve(options.out);
        const started = performance.now();
        const result = await splitBucketsByCategory(shards, out, { progress });
        printResult({ shards, out, seconds: (performance.now() - started) / 1000, ...result } satisfies SplitSummary, options.json === true, human);
      } catch (error) {
        exitWithError(error);
      }
    });
}
