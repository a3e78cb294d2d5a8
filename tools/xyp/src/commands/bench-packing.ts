import type { Command } from 'commander';
import { exitWithError, printResult, progress } from '../cli-output';
import { REFERENCE_LABEL, runPackingBench, type PackingBenchResult } from '../bench/packing-bench';

function human(result: PackingBenchResult): string {
  const pct = (s: { mean: number; std: number }) => `${(s.mean * 100).toFixed(3)} ± ${(s.std * 100).toFixed(3)}%`;
  const num = (s: { mean: number; std: number }) => `${s.mean.toFixed(3)} ± ${s.std.toFixed(3)}`;
  const lines = [`${result.seeds} seeds per case, ${result.tokensPerCorpus.toLocaleString('en-US')} tokens per corpus; mean ± std`];
  for (const c of result.cases) {
    lines.push('', `${c.distribution} (${c.description}), ${c.categories} categor${c.categories === 1 ? 'y' : 'ies'}, ${Math.round(c.documents.mean)} documents`);
    lines.push(`  ${'strategy'.padEnd(30)} ${'padding'.padStart(20)} ${'truncation'.padStart(20)} ${'concatenation'.padStart(16)}`);
    for (const row of c.rows) lines.push(`  ${row.label.padEnd(30)} ${pct(row.paddingRatio).padStart(20)} ${pct(row.truncationRatio).padStart(20)} ${num(row.concatRatio).padStart(16)}`);
    const b = c.bucketAtOrBelowReference;
    lines.push(`  bucket at or below the ${REFERENCE_LABEL}: padding on ${b.padding}/${b.seeds} seeds, concatenation on ${b.concat}/${b.seeds}`);
  }
  return lines.join('\n');
}

function positiveInteger(value: string, flag: string): number {
  const parsed = Number(value);
  if (!Number.isSafeInteger(parsed) || parsed < 1) throw new Error(`${flag} must be a positive integer, got ${JSON.stringify(value)}`);
  return parsed;
}

/** `xyp bench packing`: padding, truncation and concatenation of every strategy over generated length distributions. */
export function registerBenchPacking(parent: Command): void {
  parent
    .command('packing')
    .description('Benchmark the packing strategies against the whole-corpus best-fit reference on generated length distributions')
    .option('--tokens <n>', 'tokens per generated corpus', '2000000')
    .option('--seeds <n>', 'corpora per distribution and category setting', '5')
    .option('--categories <list>', 'comma-separated numbers of categories to assign documents to', '1,8')
    .option('--json', 'print one JSON object')
    .action((options: { tokens: string; seeds: string; categories: string; json?: boolean }) => {
      try {
        const result = runPackingBench({
          tokens: positiveInteger(options.tokens, '--tokens'),
          seeds: positiveInteger(options.seeds, '--seeds'),
          categorySettings: options.categories.split(',').map((part) => positiveInteger(part.trim(), '--categories')),
          progress,
        });
        printResult(result, options.json === true, human);
      } catch (error) {
        exitWithError(error);
      }
    });
}
