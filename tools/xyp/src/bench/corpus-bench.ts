import { execFile } from 'node:child_process';
import { closeSync, createReadStream, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { readFileSync } from 'node:fs';
import {
  DEFAULT_BUCKET_LENGTHS,
  createStrategy,
  parsePackConfig,
  ratios,
  simulatePacking,
  type CompositionRatios,
  type LengthRecord,
  type PackConfig,
  type StrategyName,
} from '@xyp/packing';
import { collectGarbage, loadTokenizer, type TextTokenizer } from '@xyp/tokenizer';
import { runCorpusBucket, type CorpusRunSummary } from './corpus-run';

const run = promisify(execFile);
const WORKSPACE = resolve(__dirname, '../../../..');
const XYP = join(WORKSPACE, 'tools/xyp/bin/xyp.js');

export interface CorpusBenchOptions {
  /** The 1x corpus (default: data/sample/corpus.jsonl). */
  sample: string;
  /** Copies of the sample in the large corpus (default 4). */
  scale: number;
  /** Alternating raw / end-to-end measurements; the median is reported (default 3). */
  repeats: number;
  /** Size in MB of the single-document corpus whose peak RSS is measured (default 100). */
  singleDocumentMb?: number;
  progress: (line: string) => void;
}

interface StrategyFigures extends CompositionRatios {
  sequences: number;
  documents: number;
  truncatedDocuments: number;
  paddingTokens: number;
}

export interface CorpusBenchResult {
  machine: { cpus: number; node: string; platform: string };
  tokenizer: { name: string; backend: string };
  corpus: { sample: string; scale: number; docs1x: number; docs: number; tokens: number; bytes: number };
  /** Configuration of the end-to-end, memory and strategy figures (the defaults of `corpus bucket`). */
  config: Pick<PackConfig, 'bucketLengths' | 'windowLines' | 'windowTokens' | 'shardLines' | 'batchChars' | 'paddingThreshold'>;
  /**
   * `encodeBatch` over the in-memory texts in batches of `batchChars`, ids copied into typed
   * arrays, no GC during the loop and one at the end (see `rawThroughput`); median of `repeats`.
   */
  rawTokensPerSecond: number;
  /**
   * `xyp corpus bucket` in this process with the default configuration (plan, read, validate,
   * encode, pack, write, merge), plus the same final GC as raw; median of `repeats`.
   */
  endToEndTokensPerSecond: number;
  ratio: number;
  runs: { rawTokensPerSecond: number[]; endToEndTokensPerSecond: number[] };
  /** Time split of the median end-to-end run. */
  endToEndTimings: CorpusRunSummary['timings'] & { wallSeconds: number };
  /** End-to-end tokens/s with 1 worker (in process) and 2 workers (child processes) on a plan of `shards` shards. */
  workers: { shards: number; '1': number; '2': number; speedup: number; identicalOutput: boolean };
  peakRssMb1x: number;
  peakRssMb4x: number;
  rssGrowth: number;
  /**
   * `xyp corpus bucket` (fresh process, default configuration) on a corpus of one document of
   * `singleDocumentMb` MB (the sample's texts joined by blank lines, written at bench time):
   * peak RSS, and whether the document was kept whole (every token packed).
   */
  singleDocument: { bytes: number; docs: number; rejected: number; tokens: number; peakRssMb: number; wallSeconds: number; tokensPerSecond: number };
  /**
   * Composition metrics per strategy on one tokenization of the large corpus, simulated with the
   * default configuration (the whole corpus is one shard here); `bucket` equals the measured run.
   */
  strategies: Record<string, StrategyFigures>;
  /** The bucket metrics of the 1-vs-2-worker runs, whose shard plan (one shard per sample copy) pads more at shard ends. */
  bucketAtBenchShardPlan: CompositionRatios;
  /** The measured run's bucket metrics equal a simulation with the run's configuration. */
  simulationMatchesRun: boolean;
  targets: Record<string, { target: string; measured: number; met: boolean }>;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

async function readDocs(path: string): Promise<{ text: string; category: string }[]> {
  const docs: { text: string; category: string }[] = [];
  for await (const line of createInterface({ input: createReadStream(path), crlfDelay: Infinity })) {
    if (line.trim()) docs.push(JSON.parse(line) as { text: string; category: string });
  }
  return docs;
}

/** The large corpus: `scale` copies of the sample, ids made unique. */
function scaleCorpus(sample: string, scale: number, path: string): void {
  const lines = readFileSync(sample, 'utf8').split('\n').filter((line) => line.trim() !== '');
  const out: string[] = [];
  for (let copy = 0; copy < scale; copy++) {
    for (const line of lines) {
      const doc = JSON.parse(line) as { id: string };
      out.push(JSON.stringify({ ...doc, id: `${doc.id}#${copy}` }));
    }
  }
  writeFileSync(path, `${out.join('\n')}\n`);
}

/**
 * Raw tokenizer throughput: `encodeBatch` over texts already in memory, in batches of
 * `batchChars`, ids copied into typed arrays, plus one full GC at the end that frees the
 * native encodings it produced (every real use has to release them; the run is charged the
 * same way). A GC before the timer starts each measurement clean.
 */
async function rawThroughput(tokenizer: TextTokenizer, texts: string[], batchChars: number, appendId: number | undefined): Promise<{ tokensPerSecond: number; lengths: number[] }> {
  const lengths: number[] = [];
  collectGarbage();
  const started = performance.now();
  for (let i = 0; i < texts.length; ) {
    const batch: string[] = [];
    let chars = 0;
    while (i < texts.length && chars < batchChars) {
      batch.push(texts[i]);
      chars += texts[i++].length;
    }
    for (const ids of await tokenizer.encodeBatch(batch, { appendId })) lengths.push(ids.length);
  }
  collectGarbage();
  const seconds = (performance.now() - started) / 1000;
  return { tokensPerSecond: lengths.reduce((sum, n) => sum + n, 0) / seconds, lengths };
}

/** A whole `xyp corpus bucket` run, default configuration, in a fresh process (its peak RSS is VmHWM). */
async function freshRun(input: string, out: string): Promise<CorpusRunSummary> {
  const { stdout } = await run(process.execPath, [XYP, 'corpus', 'bucket', '--input', input, '--out', out, '--json'], { maxBuffer: 1 << 24 });
  return JSON.parse(stdout) as CorpusRunSummary;
}

async function peakRss(input: string, out: string): Promise<number> {
  return (await freshRun(input, out)).peakRssMb;
}

/** One JSONL line of about `bytes` bytes: the sample's texts joined by blank lines, `category` after `text`. */
function writeSingleDocument(sample: string, bytes: number, path: string): number {
  const texts = readFileSync(sample, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => (JSON.parse(line) as { text: string }).text);
  const fd = openSync(path, 'w');
  try {
    let written = writeSync(fd, '{"id":"single-document","text":"');
    for (let i = 0; written < bytes; i++) written += writeSync(fd, JSON.stringify(`${texts[i % texts.length]}\n\n`).slice(1, -1));
    return written + writeSync(fd, '","category":"professional"}\n');
  } finally {
    closeSync(fd);
  }
}

function sameFiles(a: string, b: string, names: string[]): boolean {
  return names.every((name) => readFileSync(join(a, name)).equals(readFileSync(join(b, name))));
}

/**
 * Measures the corpus stage: raw tokenizer throughput against the full `corpus bucket` run on
 * the same texts, 1 vs 2 workers, peak RSS at 1x and `scale`x, and the composition metrics of
 * every strategy on one tokenization.
 */
export async function runCorpusBench(options: CorpusBenchOptions): Promise<CorpusBenchResult> {
  const dir = mkdtempSync(join(tmpdir(), 'xyp-bench-corpus-'));
  try {
    const large = join(dir, `corpus-${options.scale}x.jsonl`);
    scaleCorpus(options.sample, options.scale, large);
    const docs1x = (await readDocs(options.sample)).length;
    // Only the categories stay in memory: the texts are read again for each raw measurement and
    // dropped before the end-to-end run, whose forced GCs would otherwise scan them too (a real
    // `corpus bucket` process holds no such copy).
    const categories = (await readDocs(large)).map((doc) => doc.category);
    // Throughput, memory and strategies use the default configuration (here the whole corpus is
    // one shard, as a shard is 65,536 lines); the worker comparison needs several shards, so it
    // uses shards of one sample copy each and measures 1 worker again on that plan.
    const config = parsePackConfig({});
    const sharded = parsePackConfig({ windowLines: docs1x / 2, shardLines: docs1x });
    const shardedInput = { windowLines: sharded.windowLines, shardLines: sharded.shardLines };

    options.progress('loading the Llama-3 tokenizer');
    const tokenizer = await loadTokenizer('llama3');
    // Raw throughput uses its own instance without the pipeline's forced GCs: pure encodeBatch.
    const rawTokenizer = await loadTokenizer('llama3', { releaseEveryTokens: 0 });
    const appendId = tokenizer.eosId ?? undefined;
    const warmup = (await readDocs(options.sample)).slice(0, 200).map((doc) => doc.text);
    await tokenizer.encodeBatch(warmup, { appendId });
    await rawTokenizer.encodeBatch(warmup, { appendId });
    const rawOnFreshTexts = async () => rawThroughput(rawTokenizer, (await readDocs(large)).map((doc) => doc.text), config.batchChars, appendId);

    const raw: number[] = [];
    const endToEnd: number[] = [];
    let lengths: number[] = [];
    let inProcess: CorpusRunSummary | null = null;
    const summaries: CorpusRunSummary[] = [];
    for (let repeat = 0; repeat < options.repeats; repeat++) {
      const measured = await rawOnFreshTexts();
      raw.push(measured.tokensPerSecond);
      lengths = measured.lengths;
      options.progress(`raw encode ${repeat + 1}/${options.repeats}: ${Math.round(measured.tokensPerSecond)} tokens/s`);
      collectGarbage();
      inProcess = await runCorpusBucket({ input: large, out: join(dir, 'out-e2e'), tokenizer: 'llama3', loaded: tokenizer, config: {}, workers: 1 });
      const gcStart = performance.now();
      collectGarbage();
      // Charged the same final GC as the raw measurement.
      endToEnd.push(Math.round(inProcess.tokens / (inProcess.wallSeconds + (performance.now() - gcStart) / 1000)));
      summaries.push(inProcess);
      options.progress(`end to end ${repeat + 1}/${options.repeats}: ${endToEnd[endToEnd.length - 1]} tokens/s`);
    }
    const rawTokensPerSecond = Math.round(median(raw));
    const endToEndTokensPerSecond = Math.round(median(endToEnd));
    const medianRun = summaries[endToEnd.indexOf(median(endToEnd))];

    options.progress(`1 vs 2 workers on shards of ${sharded.shardLines} lines`);
    const one = await runCorpusBucket({ input: large, out: join(dir, 'out-1'), tokenizer: 'llama3', loaded: tokenizer, config: shardedInput, workers: 1 });
    const two = await runCorpusBucket({ input: large, out: join(dir, 'out-2'), tokenizer: 'llama3', loaded: tokenizer, config: shardedInput, workers: 2 });
    const outputs = one.bucketLengths.flatMap((length) => [`bucket_${length}.bin`, `bucket_${length}.idx`, `bucket_${length}.categories.u16`, `bucket_${length}.pieces.i64`]);
    const identicalOutput = sameFiles(join(dir, 'out-1'), join(dir, 'out-2'), [...outputs, 'manifest.json', 'rejects.jsonl']);

    options.progress('peak RSS at 1x and 4x (fresh processes)');
    const peakRssMb1x = await peakRss(options.sample, join(dir, 'rss-1x'));
    const peakRssMb4x = await peakRss(large, join(dir, 'rss-4x'));

    const singleMb = options.singleDocumentMb ?? 100;
    options.progress(`peak RSS on one document of ${singleMb} MB (fresh process)`);
    const singleInput = join(dir, 'single-document.jsonl');
    const singleBytes = writeSingleDocument(options.sample, singleMb * 1e6, singleInput);
    const single = await freshRun(singleInput, join(dir, 'rss-single'));
    rmSync(singleInput, { force: true });
    rmSync(join(dir, 'rss-single'), { recursive: true, force: true });
    const singleDocument = {
      bytes: singleBytes,
      docs: single.docs,
      rejected: single.rejected,
      tokens: single.tokens,
      peakRssMb: single.peakRssMb,
      wallSeconds: single.wallSeconds,
      tokensPerSecond: single.tokensPerSecond,
    };

    options.progress('strategies on one tokenization');
    const records: LengthRecord[] = categories.map((category, line) => ({ line, length: lengths[line], category }));
    const strategies: Record<string, StrategyFigures> = {};
    const variants: [string, StrategyName, number[]][] = [
      ['bucket', 'bucket', [...DEFAULT_BUCKET_LENGTHS]],
      ['bfd@2048', 'bfd', [2048]],
      ['bfd@16384', 'bfd', [16384]],
      ['fixed@2048', 'fixed', [2048]],
      ['fixed@16384', 'fixed', [16384]],
    ];
    for (const [label, name, bucketLengths] of variants) {
      const stats = simulatePacking(records, createStrategy(name, bucketLengths), config);
      strategies[label] = {
        ...ratios(stats.total),
        sequences: stats.total.sequences,
        documents: stats.total.documents,
        truncatedDocuments: stats.total.truncatedDocuments,
        paddingTokens: stats.total.paddingTokens,
      };
    }
    const bucket = strategies.bucket;
    const atShardedConfig = ratios(simulatePacking(records, createStrategy('bucket', sharded.bucketLengths), sharded).total);
    const bucketAtBenchShardPlan = { paddingRatio: one.paddingRatio, truncationRatio: one.truncationRatio, concatRatio: one.concatRatio };
    const same = (a: CompositionRatios, b: CompositionRatios) => (['paddingRatio', 'truncationRatio', 'concatRatio'] as const).every((key) => Math.abs(a[key] - b[key]) < 1e-12);
    const simulationMatchesRun =
      inProcess!.tokens === records.reduce((sum, record) => sum + record.length, 0) && same(bucket, inProcess!) && same(atShardedConfig, bucketAtBenchShardPlan);

    const largest = DEFAULT_BUCKET_LENGTHS[DEFAULT_BUCKET_LENGTHS.length - 1];
    const longDocs = lengths.filter((length) => length > largest).length;
    const ratio = endToEndTokensPerSecond / rawTokensPerSecond;
    const rssGrowth = peakRssMb4x / peakRssMb1x - 1;
    return {
      machine: { cpus: cpus().length, node: process.version, platform: `${process.platform}-${process.arch}` },
      tokenizer: { name: tokenizer.name, backend: tokenizer.backend },
      corpus: { sample: options.sample, scale: options.scale, docs1x, docs: categories.length, tokens: lengths.reduce((sum, n) => sum + n, 0), bytes: readFileSync(large).byteLength },
      config: {
        bucketLengths: config.bucketLengths,
        windowLines: config.windowLines,
        windowTokens: config.windowTokens,
        shardLines: config.shardLines,
        batchChars: config.batchChars,
        paddingThreshold: config.paddingThreshold,
      },
      rawTokensPerSecond,
      endToEndTokensPerSecond,
      ratio,
      runs: { rawTokensPerSecond: raw.map(Math.round), endToEndTokensPerSecond: endToEnd },
      endToEndTimings: { wallSeconds: medianRun.wallSeconds, ...medianRun.timings },
      workers: { shards: two.shards, '1': one.tokensPerSecond, '2': two.tokensPerSecond, speedup: two.tokensPerSecond / one.tokensPerSecond, identicalOutput },
      peakRssMb1x,
      peakRssMb4x,
      rssGrowth,
      singleDocument,
      strategies,
      bucketAtBenchShardPlan,
      simulationMatchesRun,
      targets: {
        endToEndVsRaw: { target: '>= 0.85', measured: ratio, met: ratio >= 0.85 },
        peakRssGrowth1xTo4x: { target: '<= 0.20', measured: rssGrowth, met: Math.abs(rssGrowth) <= 0.2 },
        singleDocumentPeakRssMb: {
          target: `< 1024 (one ${singleMb} MB document, kept)`,
          measured: singleDocument.peakRssMb,
          met: singleDocument.peakRssMb < 1024 && singleDocument.docs === 1 && singleDocument.rejected === 0,
        },
        bucketPadding: { target: '<= 0.01', measured: bucket.paddingRatio, met: bucket.paddingRatio <= 0.01 },
        bucketPaddingAtBenchShardPlan: { target: '<= 0.01', measured: bucketAtBenchShardPlan.paddingRatio, met: bucketAtBenchShardPlan.paddingRatio <= 0.01 },
        bucketTruncatedOnlyLongDocs: { target: `== ${longDocs} (documents > ${largest} tokens)`, measured: bucket.truncatedDocuments, met: bucket.truncatedDocuments === longDocs },
        bucketConcatBelowBfd16384: { target: `< ${strategies['bfd@16384'].concatRatio.toFixed(2)}`, measured: bucket.concatRatio, met: bucket.concatRatio < strategies['bfd@16384'].concatRatio },
        bucketConcatBelowFixed16384: { target: `< ${strategies['fixed@16384'].concatRatio.toFixed(2)}`, measured: bucket.concatRatio, met: bucket.concatRatio < strategies['fixed@16384'].concatRatio },
      },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
