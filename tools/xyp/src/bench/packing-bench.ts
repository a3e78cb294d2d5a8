import {
  createStrategy,
  emptyCounts,
  packBestFitDecreasing,
  parsePackConfig,
  ratios,
  simulatePacking,
  type CompositionCounts,
  type LengthRecord,
  type PackConfig,
  type StrategyName,
} from '@xyp/packing';
import { createRng, deriveSeed, type Rng } from '@xyp/random';

/**
 * `xyp bench packing`: every packing strategy over generated document-length distributions,
 * through the same simulation of shards, windows and carries as a real `corpus.bucket` run
 * (`simulatePacking`; lengths only, no tokenizer), beside the whole-corpus reference: global
 * best-fit decreasing over the bucket lengths, categories ignored (the 4-step reference:
 * split, sort longest first, best fit or open the smallest bucket that holds the piece, shrink).
 * Several seeds per distribution; figures are mean and sample standard deviation.
 */

export interface Distribution {
  name: string;
  description: string;
  /** One document length (tokens, end-of-document token included), >= 1. */
  draw(rng: Rng): number;
}

function normal(rng: Rng): number {
  const u = 1 - rng.nextFloat();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.nextFloat());
}

const logNormal = (rng: Rng, median: number, sigma: number) => Math.max(1, Math.round(Math.exp(Math.log(median) + sigma * normal(rng))));

export const DISTRIBUTIONS: readonly Distribution[] = [
  {
    name: 'pareto',
    description: 'heavy-tailed: Pareto, alpha 1.2, from 100 tokens (capped at 1M)',
    draw: (rng) => Math.min(1 << 20, Math.round(100 / Math.pow(1 - rng.nextFloat(), 1 / 1.2))),
  },
  { name: 'social', description: 'all short: social posts, log-normal, median 40 tokens', draw: (rng) => logNormal(rng, 40, 0.6) },
  {
    name: 'bimodal',
    description: 'short chat (80%, median 200) plus long reports (20%, median 6,000)',
    draw: (rng) => (rng.nextFloat() < 0.8 ? logNormal(rng, 200, 0.7) : logNormal(rng, 6000, 0.6)),
  },
  {
    name: 'far-over-16k',
    description: 'median 500 (log-normal), 1% of documents 32k-400k tokens',
    draw: (rng) => (rng.nextFloat() < 0.01 ? 32768 + rng.nextInt(368000) : logNormal(rng, 500, 1.2)),
  },
  {
    name: 'exam-dialogue',
    description: 'finance exam questions and dialogues: median 130, 0.33% of documents over 16k',
    draw: (rng) => (rng.nextFloat() < 0.0033 ? 16385 + rng.nextInt(60000) : logNormal(rng, 130, 1.0)),
  },
];

/** A strategy row: a strategy and the configuration it runs with. */
export interface Contender {
  label: string;
  strategy: StrategyName;
  lengths: readonly number[];
  config: Partial<PackConfig>;
}

export const BUCKET_LENGTHS = [2048, 4096, 8192, 16384];

export const CONTENDERS: readonly Contender[] = [
  { label: 'bucket', strategy: 'bucket', lengths: BUCKET_LENGTHS, config: {} },
  { label: 'bucket, category mixing none', strategy: 'bucket', lengths: BUCKET_LENGTHS, config: { categoryMixing: 'none' } },
  { label: 'bucket, category mixing all', strategy: 'bucket', lengths: BUCKET_LENGTHS, config: { categoryMixing: 'all' } },
  { label: 'bucket, 1M-token windows', strategy: 'bucket', lengths: BUCKET_LENGTHS, config: { windowTokens: 1 << 20, windowLines: 8192 } },
  { label: 'bfd-buckets', strategy: 'bfd-buckets', lengths: BUCKET_LENGTHS, config: {} },
  { label: 'bfd@16384', strategy: 'bfd', lengths: [16384], config: {} },
  { label: 'fixed@16384', strategy: 'fixed', lengths: [16384], config: {} },
];

export const REFERENCE_LABEL = 'reference (whole corpus)';

export interface Stat {
  mean: number;
  std: number;
}

export interface PackingRow {
  label: string;
  paddingRatio: Stat;
  truncationRatio: Stat;
  concatRatio: Stat;
  sequences: Stat;
}

export interface PackingCase {
  distribution: string;
  description: string;
  categories: number;
  documents: Stat;
  tokens: Stat;
  rows: PackingRow[];
  /** Seeds on which the default `bucket` pads no more and concatenates no more than the reference. */
  bucketAtOrBelowReference: { padding: number; concat: number; seeds: number };
}

export interface PackingBenchResult {
  tokensPerCorpus: number;
  seeds: number;
  categorySettings: number[];
  cases: PackingCase[];
}

/** Documents of one distribution until `tokens` tokens, each given one of `categories` categories at random. */
export function generateCorpus(distribution: Distribution, tokens: number, categories: number, seed: number): LengthRecord[] {
  const rng = createRng(deriveSeed(seed, distribution.name, categories));
  const records: LengthRecord[] = [];
  for (let total = 0, line = 0; total < tokens; line++) {
    const length = distribution.draw(rng);
    records.push({ line, length, category: `c${rng.nextInt(categories)}` });
    total += length;
  }
  return records;
}

/** The whole-corpus reference: one pool, no windows, no shards, categories ignored. */
export function referenceCounts(records: readonly LengthRecord[], lengths: readonly number[]): CompositionCounts {
  const plan = packBestFitDecreasing(
    records.map((record) => record.length),
    lengths,
  );
  const counts = emptyCounts();
  const pieces = new Map<number, number>();
  for (const sequence of plan) {
    counts.sequences++;
    counts.tokens += sequence.used;
    counts.paddingTokens += sequence.capacity - sequence.used;
    counts.pieces += sequence.pieces.length;
    for (const piece of sequence.pieces) pieces.set(piece.doc, (pieces.get(piece.doc) ?? 0) + 1);
  }
  counts.documents = records.length;
  counts.truncatedDocuments = [...pieces.values()].filter((n) => n > 1).length;
  return counts;
}

function contenderCounts(records: readonly LengthRecord[], contender: Contender): CompositionCounts {
  const config = parsePackConfig({ strategy: contender.strategy, bucketLengths: [...contender.lengths], ...contender.config });
  return simulatePacking(records, createStrategy(config.strategy, config.bucketLengths), config).total;
}

function stat(values: number[]): Stat {
  const mean = values.reduce((sum, v) => sum + v, 0) / values.length;
  const variance = values.length > 1 ? values.reduce((sum, v) => sum + (v - mean) ** 2, 0) / (values.length - 1) : 0;
  return { mean, std: Math.sqrt(variance) };
}

/** Equal up to floating-point noise, or below. */
const atOrBelow = (value: number, bound: number) => value <= bound + 1e-12;

export function runPackingBench(options: {
  tokens: number;
  seeds: number;
  categorySettings: number[];
  distributions?: readonly Distribution[];
  contenders?: readonly Contender[];
  progress?: (line: string) => void;
}): PackingBenchResult {
  const contenders = options.contenders ?? CONTENDERS;
  const cases: PackingCase[] = [];
  for (const distribution of options.distributions ?? DISTRIBUTIONS) {
    for (const categories of options.categorySettings) {
      options.progress?.(`${distribution.name}, ${categories} categor${categories === 1 ? 'y' : 'ies'}`);
      const perLabel = new Map<string, CompositionCounts[]>();
      const documents: number[] = [];
      const tokens: number[] = [];
      const below = { padding: 0, concat: 0 };
      for (let seed = 0; seed < options.seeds; seed++) {
        const records = generateCorpus(distribution, options.tokens, categories, seed);
        documents.push(records.length);
        tokens.push(records.reduce((sum, r) => sum + r.length, 0));
        const reference = referenceCounts(records, BUCKET_LENGTHS);
        (perLabel.get(REFERENCE_LABEL) ?? perLabel.set(REFERENCE_LABEL, []).get(REFERENCE_LABEL)!).push(reference);
        for (const contender of contenders) {
          const counts = contenderCounts(records, contender);
          if (counts.tokens !== reference.tokens) throw new Error(`${contender.label}: ${counts.tokens} tokens packed, ${reference.tokens} in the corpus`);
          (perLabel.get(contender.label) ?? perLabel.set(contender.label, []).get(contender.label)!).push(counts);
          if (contender.label === 'bucket') {
            const [mine, theirs] = [ratios(counts), ratios(reference)];
            if (atOrBelow(mine.paddingRatio, theirs.paddingRatio)) below.padding++;
            if (atOrBelow(mine.concatRatio, theirs.concatRatio)) below.concat++;
          }
        }
      }
      const rows = [...perLabel.entries()].map(([label, list]) => {
        const r = list.map((counts) => ratios(counts));
        return {
          label,
          paddingRatio: stat(r.map((x) => x.paddingRatio)),
          truncationRatio: stat(r.map((x) => x.truncationRatio)),
          concatRatio: stat(r.map((x) => x.concatRatio)),
          sequences: stat(list.map((counts) => counts.sequences)),
        };
      });
      cases.push({
        distribution: distribution.name,
        description: distribution.description,
        categories,
        documents: stat(documents),
        tokens: stat(tokens),
        rows,
        bucketAtOrBelowReference: { ...below, seeds: options.seeds },
      });
    }
  }
  return { tokensPerCorpus: options.tokens, seeds: options.seeds, categorySettings: options.categorySettings, cases };
}
