import { basename } from 'node:path';
import {
  BucketManifest,
  CATEGORY_SIDECAR_SUFFIX,
  type CompositionCounts,
  type CompositionStats,
  PIECE_SIDECAR_SUFFIX,
  type PackConfig,
  type ShardReport,
  type TokenizerRef,
  addStats,
  bucketPrefix,
  compareCodeUnits,
  emptyStats,
  ratios,
  rejectRate,
} from '@xyp/packing';
import { binName, writeConcatenatedIndex } from './indexed-dataset';
import type { InputPlan } from './jsonl';
import { HashingWriter, type ArtifactSink, type ArtifactSource, type WrittenFile } from './sink';

/** The run's rejects exceeded `maxRejectRate`; `rejects.jsonl` was written before this is thrown. */
export class RejectRateExceededError extends Error {
  constructor(
    readonly rejected: number,
    readonly documentsIn: number,
    readonly limit: number,
    readonly rejectsName: string,
  ) {
    super(
      `reject rate ${(rejectRate(documentsIn - rejected, rejected) * 100).toFixed(2)}% (${rejected} of ${documentsIn} documents) exceeds the limit of ${(limit * 100).toFixed(2)}%; see ${rejectsName}`,
    );
    this.name = 'RejectRateExceededError';
  }
}

export interface MergerOptions {
  config: PackConfig;
  tokenizer: TokenizerRef & { name: string; vocabSize: number };
  /** Where the shards wrote (their `report.outputs` and `rejectsName` name files here). */
  scratch: ArtifactSource;
  out: ArtifactSink;
  /** Shards in the plan; `add` takes them in any order. */
  shardCount: number;
}

function withRatios<T extends CompositionCounts>(counts: T): T & ReturnType<typeof ratios> {
  return { ...counts, ...ratios(counts) };
}

/**
 * Combines shard outputs into the run's output while the run goes on: as soon as shards
 * 0..k have all reported, their `.bin` data, piece sidecars and rejects are appended to the
 * final files (in shard order, whatever order they finished in), so most of the copying
 * overlaps with the shards still running. `finish` then writes what needs every shard: the
 * `.idx` files, the category sidecars (shard-local codes mapped to indices into the sorted
 * category list) and, last, `manifest.json`.
 *
 * Output per length L: `bucket_L.bin/.idx` (one Megatron dataset: the shards' datasets
 * concatenated), `bucket_L.categories.u16`, `bucket_L.pieces.i64`; plus `rejects.jsonl`.
 */
export class ShardMerger {
  private readonly reports = new Map<number, ShardReport>();
  private appended = 0;
  private chain: Promise<void> = Promise.resolve();

  private constructor(
    private readonly options: MergerOptions,
    private readonly bins: HashingWriter[],
    private readonly pieces: HashingWriter[],
    private readonly rejects: HashingWriter,
  ) {
    // A failed append surfaces in finish(); this only keeps it from counting as unhandled meanwhile.
    this.chain.catch(() => undefined);
  }

  static async open(options: MergerOptions): Promise<ShardMerger> {
    const lengths = options.config.bucketLengths;
    const bins = await Promise.all(lengths.map((length) => HashingWriter.create(options.out, binName(bucketPrefix(length)))));
    const pieces = await Promise.all(lengths.map((length) => HashingWriter.create(options.out, `${bucketPrefix(length)}${PIECE_SIDECAR_SUFFIX}`)));
    return new ShardMerger(options, bins, pieces, await HashingWriter.create(options.out, 'rejects.jsonl'));
  }

  /** Registers a finished shard; appends every shard that is now next in order (in the background). */
  add(report: ShardReport): void {
    if (this.reports.has(report.shard.index)) throw new Error(`shard ${report.shard.index} reported twice`);
    this.reports.set(report.shard.index, report);
    this.chain = this.chain.then(() => this.appendReady());
    this.chain.catch(() => undefined);
  }

  private async appendReady(): Promise<void> {
    const { scratch, config } = this.options;
    for (let report = this.reports.get(this.appended); report !== undefined; report = this.reports.get(this.appended)) {
      for (let slot = 0; slot < config.bucketLengths.length; slot++) {
        const output = report.outputs.find((candidate) => candidate.length === config.bucketLengths[slot]);
        if (output === undefined) throw new Error(`shard ${report.shard.index} has no output for length ${config.bucketLengths[slot]}`);
        for await (const chunk of scratch.read(binName(output.prefix))) await this.bins[slot].write(chunk);
        for await (const chunk of scratch.read(`${output.prefix}${PIECE_SIDECAR_SUFFIX}`)) await this.pieces[slot].write(chunk);
      }
      for await (const chunk of scratch.read(report.rejectsName)) await this.rejects.write(chunk);
      this.appended++;
    }
  }

  /** Drops the final files (after a failed shard). */
  async abort(): Promise<void> {
    await this.chain.catch(() => undefined);
    await Promise.all([...this.bins, ...this.pieces, this.rejects].map((writer) => writer.abort().catch(() => undefined)));
  }

  /**
   * Completes the output once every shard was added: checks that the shards cover every input
   * line exactly once and that documents in = kept + rejected, writes `rejects.jsonl`, fails if
   * the reject rate is over the limit (dropping the datasets), else writes the indices,
   * sidecars and `manifest.json`.
   */
  async finish(input: InputPlan & { path: string }): Promise<BucketManifest> {
    const { config, out, tokenizer } = this.options;
    try {
      await this.chain;
      if (this.appended !== this.options.shardCount) throw new Error(`${this.appended} of ${this.options.shardCount} shards were merged`);
    } catch (error) {
      await this.abort();
      throw error;
    }
    const reports = [...this.reports.values()].sort((a, b) => a.shard.index - b.shard.index);
    const files: WrittenFile[] = [];
    const dataset = this.bins.concat(this.pieces);
    const drop = async () => Promise.all(dataset.map((writer) => writer.abort().catch(() => undefined)));

    let expectedLine = 0;
    for (const report of reports) {
      if (report.shard.startLine !== expectedLine) {
        await this.abort();
        throw new Error(`shards do not cover the input: shard ${report.shard.index} starts at line ${report.shard.startLine}, expected ${expectedLine}`);
      }
      expectedLine = report.shard.endLine;
    }
    if (expectedLine !== input.lines) {
      await this.abort();
      throw new Error(`shards cover ${expectedLine} lines, the input has ${input.lines}`);
    }
    files.push(await this.rejects.close());

    const totals = { lines: 0, blankLines: 0, kept: 0, rejected: 0 };
    const rejectsByReason: Record<string, number> = {};
    const stats = emptyStats(config.bucketLengths);
    for (const report of reports) {
      totals.lines += report.lines;
      totals.blankLines += report.blankLines;
      totals.kept += report.kept;
      totals.rejected += report.rejected;
      for (const [reason, count] of Object.entries(report.rejectsByReason)) rejectsByReason[reason] = (rejectsByReason[reason] ?? 0) + count;
      addStats(stats, report.stats);
    }
    const documentsIn = totals.lines - totals.blankLines;
    const inconsistency =
      documentsIn !== totals.kept + totals.rejected
        ? `documents in (${documentsIn}) != kept (${totals.kept}) + rejected (${totals.rejected})`
        : stats.total.documents !== totals.kept
          ? `packed ${stats.total.documents} documents but kept ${totals.kept}`
          : null;
    if (inconsistency !== null) {
      await drop();
      throw new Error(inconsistency);
    }
    if (rejectRate(totals.kept, totals.rejected) > config.maxRejectRate) {
      await drop();
      throw new RejectRateExceededError(totals.rejected, documentsIn, config.maxRejectRate, 'rejects.jsonl');
    }

    const categories = [...new Set(reports.flatMap((report) => report.categories))].sort(compareCodeUnits);
    const globalCode = new Map(categories.map((name, code) => [name, code]));
    const buckets: BucketManifest['buckets'] = [];
    try {
      await this.writeDatasets(reports, globalCode, stats, files, buckets);
    } catch (error) {
      await drop();
      throw error;
    }

    const manifest: BucketManifest = {
      version: 1,
      kind: 'xyp.corpus.bucket',
      layout: {
        format: 'megatron-indexed-dataset',
        megatronSequence: 'document-piece',
        megatronDocument: 'packed-sequence',
        paddingStored: false,
        categorySidecar: 'uint16-le-per-megatron-document',
        pieceSidecar: 'int64-le-line-and-offset-per-megatron-sequence',
      },
      tokenizer: { name: tokenizer.name, vocabSize: tokenizer.vocabSize, eodTokenId: config.appendEod ? tokenizer.eodId : null, dtype: tokenizer.dtype },
      config: {
        strategy: config.strategy,
        bucketLengths: config.bucketLengths,
        seed: config.seed,
        windowLines: config.windowLines,
        windowTokens: config.windowTokens,
        paddingThreshold: config.paddingThreshold,
        categoryMixing: config.categoryMixing,
        shardLines: config.shardLines,
        appendEod: config.appendEod,
        maxRejectRate: config.maxRejectRate,
      },
      input: {
        name: basename(input.path),
        bytes: input.bytes,
        sha256: input.sha256,
        gzip: input.gzip,
        lines: totals.lines,
        blankLines: totals.blankLines,
        documentsIn,
        kept: totals.kept,
        rejected: totals.rejected,
        rejectRate: rejectRate(totals.kept, totals.rejected),
        rejectsByReason: Object.fromEntries(Object.entries(rejectsByReason).sort(([a], [b]) => compareCodeUnits(a, b))),
        shards: reports.length,
      },
      categories,
      totals: withRatios(stats.total),
      buckets,
      byCategory: Object.fromEntries(categories.map((name) => [name, withRatios(stats.byCategory[name])])),
      files: files.sort((a, b) => compareCodeUnits(a.name, b.name)),
    };
    const writer = await out.create('manifest.json');
    await writer.write(Buffer.from(`${JSON.stringify(BucketManifest.parse(manifest), null, 2)}\n`));
    await writer.close();
    return manifest;
  }

  /** Per length: `.idx` of the concatenation, category sidecar, and the files appended so far. */
  private async writeDatasets(
    reports: ShardReport[],
    globalCode: Map<string, number>,
    stats: CompositionStats,
    files: WrittenFile[],
    buckets: BucketManifest['buckets'],
  ): Promise<void> {
    const { config, scratch, out, tokenizer } = this.options;
    for (let slot = 0; slot < config.bucketLengths.length; slot++) {
      const length = config.bucketLengths[slot];
      const prefix = bucketPrefix(length);
      const parts = reports.map((report) => report.outputs.find((candidate) => candidate.length === length)?.prefix ?? '');
      const counts = stats.byLength[String(length)];
      if (counts.sequences === 0) {
        // No files for an empty bucket: Megatron-LM memory-maps the .bin, and an empty file cannot be mapped.
        await Promise.all([this.bins[slot].abort(), this.pieces[slot].abort()]);
        buckets.push({ length, prefix, megatronSequences: 0, megatronDocuments: 0, ...withRatios(counts) });
        continue;
      }
      files.push(await this.bins[slot].close());
      const index = await writeConcatenatedIndex(scratch, parts, out, prefix, tokenizer.dtype);
      files.push(index.file);
      const sidecar = await HashingWriter.create(out, `${prefix}${CATEGORY_SIDECAR_SUFFIX}`);
      for (let i = 0; i < reports.length; i++) {
        const local = await scratch.readAll(`${parts[i]}${CATEGORY_SIDECAR_SUFFIX}`);
        const codes = new Uint16Array(local.byteLength / 2);
        new Uint8Array(codes.buffer).set(local);
        const mapping = reports[i].categories.map((name) => globalCode.get(name) ?? 0);
        for (let j = 0; j < codes.length; j++) codes[j] = mapping[codes[j]];
        await sidecar.write(new Uint8Array(codes.buffer));
      }
      files.push(await sidecar.close());
      files.push(await this.pieces[slot].close());
      if (counts.sequences !== index.documents || counts.pieces !== index.sequences || counts.tokens !== index.tokens) {
        throw new Error(`bucket ${length}: dataset (${index.documents} packed, ${index.sequences} pieces, ${index.tokens} tokens) disagrees with the plan`);
      }
      buckets.push({ length, prefix, megatronSequences: index.sequences, megatronDocuments: index.documents, ...withRatios(counts) });
    }
  }
}

export interface MergeOptions extends Omit<MergerOptions, 'shardCount'> {
  /** Every shard of the plan (any order). */
  reports: readonly ShardReport[];
  input: InputPlan & { path: string };
}

/** Merges all shard outputs at once (e.g. in a merge job after every shard job finished). */
export async function mergeShards(options: MergeOptions): Promise<BucketManifest> {
  const merger = await ShardMerger.open({ ...options, shardCount: options.reports.length });
  for (const report of options.reports) merger.add(report);
  return merger.finish(options.input);
}
