import { Processor } from '@nestjs/bullmq';
import {
  RejectedInputError,
  bucketStageResult,
  type ShardProgress,
  describeDocumentProgress,
  mergeBucketParts,
  planBucketParts,
  runBucketPart,
  tokenizerRef,
  type BucketStageIo,
} from '@xyp/bucketing';
import type { ParsedPartPayloadOf, ParsedPayloadOf, PartResultOf } from '@xyp/contracts';
import { StageFailedError, StageRuntime, StageWorker, type PartContext, type StageContext, type StageOutput } from '@xyp/queue';
import { loadTokenizer, type TextTokenizer } from '@xyp/tokenizer';

/**
 * corpus.bucket: plans shard parts, lets any number of corpus workers pack them
 * (`corpus.bucket.shard` jobs on the same queue), then merges them into the Megatron
 * datasets of each bucket length. A reject rate over the configured limit fails the stage
 * without retries: the input, not the worker, must change.
 */
@Processor('corpus.bucket')
export class CorpusBucketWorker extends StageWorker<'corpus.bucket'> {
  readonly stage = 'corpus.bucket' as const;
  /** Loaded once per process and spec: loading Llama-3's vocabulary takes about a second. */
  private readonly tokenizers = new Map<string, Promise<TextTokenizer>>();

  constructor(runtime: StageRuntime) {
    super(runtime);
  }

  protected async execute(payload: ParsedPayloadOf<'corpus.bucket'>, context: StageContext): Promise<StageOutput<'corpus.bucket'>> {
    const io = this.io(context);
    const tokenizer = tokenizerRef(payload.tokenizer, await this.tokenizer(payload.tokenizer), payload.config);
    // Planned once: on resume (every part done) the plan comes back from the job's data.
    const { results, state: plan } = await context.fanOutWithState(async () => {
      const { parts, plan } = await planBucketParts(io, { runId: payload.runId, inputKey: payload.inputKey, config: payload.config, tokenizer });
      context.log(`${parts.length} shard(s) of ${payload.config.shardLines} lines`);
      return { parts, state: plan };
    });
    try {
      const parts = results as PartResultOf<'corpus.bucket'>[];
      const { manifest, artifacts } = await mergeBucketParts(io, { runId: payload.runId, inputKey: payload.inputKey, config: payload.config, tokenizer, plan, parts });
      return { result: bucketStageResult(manifest), artifacts };
    } catch (error) {
      // The input, not the worker, must change: no retry, and the rejects stay listable on the failed run.
      if (error instanceof RejectedInputError) throw new StageFailedError(error.message, error.artifacts);
      throw error;
    }
  }

  protected override async executePart(payload: ParsedPartPayloadOf<'corpus.bucket'>, context: PartContext): Promise<PartResultOf<'corpus.bucket'>> {
    const lines = payload.shard.endLine - payload.shard.startLine;
    const report = (progress: ShardProgress) => {
      // Within a streamed document (a line over `streamLineBytes`) the message says how far it has got.
      const document = progress.document === undefined ? '' : `, ${describeDocumentProgress(progress.document)}`;
      context.progress(progress.lines, lines, 'lines', `shard ${payload.partIndex + 1}/${payload.partCount}${document}`).catch((error: unknown) => {
        // A cancelled run aborts context.signal, which stops the shard at its next check.
        if (!context.signal.aborted) context.log(`progress not reported: ${error}`);
      });
    };
    return runBucketPart(this.io(context), payload, await this.tokenizer(payload.tokenizer.spec), report, context.signal);
  }

  private io(context: { store: BucketStageIo['store'] }): BucketStageIo {
    return { store: context.store };
  }

  private tokenizer(spec: string): Promise<TextTokenizer> {
    let loading = this.tokenizers.get(spec);
    if (!loading) {
      loading = loadTokenizer(spec);
      loading.catch(() => this.tokenizers.delete(spec));
      this.tokenizers.set(spec, loading);
    }
    return loading;
  }
}
