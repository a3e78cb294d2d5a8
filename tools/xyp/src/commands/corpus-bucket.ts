import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import {
  CATEGORY_MIXING,
  DEFAULT_BUCKET_LENGTHS,
  STRATEGY_NAMES,
  type CategoryMixing,
  type PackConfigInput,
  type StrategyName,
} from '@xyp/packing';
import { exitWithError, printResult, progress } from '../cli-output';
import { runCorpusBucket, type CorpusRunSummary } from '../bench/corpus-run';

interface BucketOptions {
  input: string;
  out: string;
  tokenizer: string;
  buckets?: string;
  strategy: string;
  maxRejectRate: string;
  workers: string;
  seed: string;
  paddingThreshold?: string;
  categoryMixing?: string;
  windowTokens?: string;
  windowLines?: string;
  shardLines?: string;
  eod: boolean;
  json?: boolean;
}

function integer(value: string, flag: string, min = 1): number {
  const parsed = Number(value);
  if (!Number.isSafeInteger(parsed) || parsed < min) throw new Error(`${flag} must be an integer >= ${min}, got ${JSON.stringify(value)}`);
  return parsed;
}

function ratio(value: string, flag: string): number {
  const parsed = Number(value);
  if (value.trim() === '' || !(parsed >= 0 && parsed <= 1)) throw new Error(`${flag} must be a number between 0 and 1, got ${JSON.stringify(value)}`);
  return parsed;
}

function categoryMixing(value: string): CategoryMixing {
  if (!(CATEGORY_MIXING as readonly string[]).includes(value)) throw new Error(`--category-mixing must be one of ${CATEGORY_MIXING.join(', ')}, got ${JSON.stringify(value)}`);
  return value as CategoryMixing;
}

function parseLengths(value: string): number[] {
  return value.split(',').map((part) => integer(part.trim(), '--buckets'));
}

function human(summary: CorpusRunSummary): string {
  const pct = (x: number) => `${(x * 100).toFixed(2)}%`;
  const rows = Object.entries(summary.perBucket).map(
    ([length, b]) => `  ${length.padStart(6)}  ${String(b.sequences).padStart(8)} seq  ${String(b.tokens).padStart(11)} tok  pad ${pct(b.paddingRatio).padStart(7)}  pieces/seq ${b.concatRatio.toFixed(2)}`,
  );
  return [
    `${summary.strategy}: ${summary.docs} documents packed, ${summary.rejected} rejected, ${summary.tokens} tokens -> ${summary.out}`,
    `padding ${pct(summary.paddingRatio)}  truncation ${pct(summary.truncationRatio)}  concatenation ${summary.concatRatio.toFixed(2)} docs/seq`,
    ...rows,
    `${summary.tokensPerSecond} tokens/s over ${summary.wallSeconds.toFixed(2)} s (${summary.workers} worker${summary.workers > 1 ? 's' : ''}, tokenizer ${summary.tokenizer.name}/${summary.tokenizer.backend})`,
  ].join('\n');
}

/**
 * `xyp corpus bucket`: tokenizes a JSONL corpus and packs it into one Megatron-LM indexed
 * dataset per bucket length, with category and provenance sidecars, rejects and a manifest.
 */
export function registerCorpusBucket(parent: Command): void {
  parent
    .command('bucket')
    .description('Tokenize a JSONL corpus and pack it into Megatron datasets per sequence length (XuanYuan3 bucket method)')
    .requiredOption('--input <file>', 'JSONL corpus, plain or gzip: one {id, text, category, lang?} per line')
    .requiredOption('--out <dir>', 'output directory: bucket_<L>.bin/.idx, sidecars, rejects.jsonl, manifest.json')
    .option('--tokenizer <llama3|path>', 'llama3 (bundled), byte (the local engine\'s byte-level tokenizer: shards its models train on) or a Hugging Face tokenizer.json (or its directory)', 'llama3')
    .option('--buckets <lengths>', `comma-separated sequence lengths (default ${DEFAULT_BUCKET_LENGTHS.join(',')} for bucket and bfd-buckets, 2048 for bfd/fixed)`)
    .option('--strategy <name>', `packing strategy: ${STRATEGY_NAMES.join(' | ')}`, 'bucket')
    .option('--max-reject-rate <r>', 'fail when rejected / documents in exceeds this (e.g. 0.01 for a production corpus)', '0.5')
    .option('--workers <n>', 'shard workers; more than 1 runs child processes', '1')
    .option('--seed <n>', 'seed of the per-window sequence shuffle', '0')
    .option('--padding-threshold <p>', 'padding share above which a sequence waits for the next window (default 0.01)')
    .option('--category-mixing <mode>', `which sequences may mix categories: ${CATEGORY_MIXING.join(' | ')} (default tails: only shard-end leftovers)`)
    .option('--window-tokens <n>', 'tokens per packing window (memory bound)')
    .option('--window-lines <n>', 'input lines per packing window')
    .option('--shard-lines <n>', 'input lines per shard job (a multiple of --window-lines)')
    .option('--no-eod', 'do not append the end-of-document token to each document')
    .option('--json', 'print the summary as one JSON object')
    .action(async (options: BucketOptions) => {
      try {
        if (!(STRATEGY_NAMES as readonly string[]).includes(options.strategy)) {
          throw new Error(`--strategy must be one of ${STRATEGY_NAMES.join(', ')}, got ${JSON.stringify(options.strategy)}`);
        }
        const strategy = options.strategy as StrategyName;
        if (!existsSync(options.input)) throw new Error(`input file not found: ${options.input}`);
        const maxRejectRate = Number(options.maxRejectRate);
        if (!(maxRejectRate >= 0 && maxRejectRate <= 1)) throw new Error(`--max-reject-rate must be between 0 and 1, got ${JSON.stringify(options.maxRejectRate)}`);
        const config: PackConfigInput = {
          strategy,
          bucketLengths: options.buckets !== undefined ? parseLengths(options.buckets) : strategy === 'bucket' || strategy === 'bfd-buckets' ? [...DEFAULT_BUCKET_LENGTHS] : [2048],
          seed: integer(options.seed, '--seed', 0),
          maxRejectRate,
          appendEod: options.eod,
          ...(options.paddingThreshold === undefined ? {} : { paddingThreshold: ratio(options.paddingThreshold, '--padding-threshold') }),
          ...(options.categoryMixing === undefined ? {} : { categoryMixing: categoryMixing(options.categoryMixing) }),
          ...(options.windowTokens === undefined ? {} : { windowTokens: integer(options.windowTokens, '--window-tokens') }),
          ...(options.windowLines === undefined ? {} : { windowLines: integer(options.windowLines, '--window-lines') }),
          ...(options.shardLines === undefined ? {} : { shardLines: integer(options.shardLines, '--shard-lines') }),
        };
        const summary = await runCorpusBucket({
          input: options.input,
          out: options.out,
          tokenizer: options.tokenizer,
          config,
          workers: integer(options.workers, '--workers'),
          progress,
        });
        printResult(summary, options.json === true, human);
      } catch (error) {
        exitWithError(error);
      }
    });
}
