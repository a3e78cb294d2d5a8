import { resolve } from 'node:path';
import type { Command } from 'commander';
import { exitWithError, printResult, progress } from '../cli-output';
import { runCorpusBench, type CorpusBenchResult } from '../bench/corpus-bench';

function human(result: CorpusBenchResult): string {
  const pct = (x: number) => `${(x * 100).toFixed(2)}%`;
  const n = (x: number) => Math.round(x).toLocaleString('en-US');
  const lines = [
    `corpus: ${result.corpus.docs} docs, ${n(result.corpus.tokens)} Llama-3 tokens (${result.corpus.scale}x sample), ${result.machine.cpus} CPUs, ${result.machine.node}`,
    `raw encodeBatch        ${n(result.rawTokensPerSecond).padStart(12)} tokens/s`,
    `end to end (1 worker)  ${n(result.endToEndTokensPerSecond).padStart(12)} tokens/s   ratio ${result.ratio.toFixed(3)}`,
    `end to end (2 workers) ${n(result.workers['2']).padStart(12)} tokens/s   speedup ${result.workers.speedup.toFixed(2)}x, identical output: ${result.workers.identicalOutput}`,
    `peak RSS 1x ${result.peakRssMb1x.toFixed(0)} MB, ${result.corpus.scale}x ${result.peakRssMb4x.toFixed(0)} MB (${pct(result.rssGrowth)})`,
    `peak RSS one ${(result.singleDocument.bytes / 1e6).toFixed(0)} MB document ${result.singleDocument.peakRssMb.toFixed(0)} MB (${n(result.singleDocument.tokens)} tokens, ${n(result.singleDocument.tokensPerSecond)} tokens/s, kept: ${result.singleDocument.docs === 1})`,
    '',
    `${'strategy'.padEnd(12)} ${'padding'.padStart(9)} ${'truncation'.padStart(11)} ${'concat'.padStart(8)} ${'sequences'.padStart(10)}`,
    ...Object.entries(result.strategies).map(
      ([name, s]) => `${name.padEnd(12)} ${pct(s.paddingRatio).padStart(9)} ${pct(s.truncationRatio).padStart(11)} ${s.concatRatio.toFixed(2).padStart(8)} ${String(s.sequences).padStart(10)}`,
    ),
    `(strategies simulated with the default configuration; the measured runs' own shard plan gives bucket padding ${pct(result.bucketAtBenchShardPlan.paddingRatio)}, concat ${result.bucketAtBenchShardPlan.concatRatio.toFixed(2)}; simulation matches run: ${result.simulationMatchesRun})`,
    '',
    ...Object.entries(result.targets).map(([name, t]) => `${t.met ? 'met    ' : 'MISSED '} ${name}: ${typeof t.measured === 'number' ? t.measured.toFixed(4) : t.measured} (target ${t.target})`),
  ];
  return lines.join('\n');
}

/** `xyp bench corpus`: tokenizer vs end-to-end throughput, workers, memory and packing metrics. */
export function registerBenchCorpus(parent: Command): void {
  parent
    .command('corpus')
    .description('Benchmark corpus bucketing: raw vs end-to-end tokens/s, 1 vs 2 workers, peak RSS 1x vs 4x and on one 100 MB document, strategy metrics')
    .option('--sample <file>', 'the 1x corpus', 'data/sample/corpus.jsonl')
    .option('--scale <n>', 'copies of the sample in the large corpus', '4')
    .option('--repeats <n>', 'alternating raw / end-to-end measurements (median reported)', '3')
    .option('--single-doc-mb <n>', 'size of the single-document corpus whose peak RSS is measured', '100')
    .option('--json', 'print one JSON object')
    .action(async (options: { sample: string; scale: string; repeats: string; singleDocMb: string; json?: boolean }) => {
      try {
        const scale = Number(options.scale);
        const repeats = Number(options.repeats);
        if (!Number.isInteger(scale) || scale < 1) throw new Error(`--scale must be a positive integer, got ${options.scale}`);
        if (!Number.isInteger(repeats) || repeats < 1) throw new Error(`--repeats must be a positive integer, got ${options.repeats}`);
        const singleDocumentMb = Number(options.singleDocMb);
        if (!Number.isFinite(singleDocumentMb) || singleDocumentMb <= 0) throw new Error(`--single-doc-mb must be a positive number, got ${options.singleDocMb}`);
        const result = await runCorpusBench({ sample: resolve(options.sample), scale, repeats, singleDocumentMb, progress });
        printResult(result, options.json === true, human);
      } catch (error) {
        exitWithError(error);
      }
    });
}
