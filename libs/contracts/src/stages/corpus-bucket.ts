import { z } from 'zod';
import { ArtifactEntry } from '../artifacts';
import { CATEGORY_MIXING, PackConfig, STRATEGY_NAMES, ShardReport, ShardSpec, TokenizerRef } from '../corpus-bucket';
import { defineStagePlan, param, partJob, stageJob } from './stage-kit';

/**
 * corpus.bucket: tokenizes a corpus and packs it into Megatron datasets per sequence length
 * (bucket method or a baseline). Fans out into shard jobs (`corpus.bucket.shard`) on the same
 * queue; shards are fixed by `config.shardLines`, so the output is the same for any number of
 * workers. The packing schemas it shares with `@xyp/bucketing` are in `../corpus-bucket.ts`.
 */
export const CorpusBucketPayload = stageJob({
  inputKey: z.string().min(1),
  config: PackConfig.prefault({}),
  /** `llama3` (bundled) or a tokenizer.json path readable by the corpus workers. */
  tokenizer: z.string().min(1).default('llama3'),
});

const Ratio = z.number().min(0);
export const CorpusBucketResult = z.object({
  strategy: z.string(),
  /** Non-blank input lines: kept + rejected (`docs` of corpus.inspect counts kept documents only). */
  documentsIn: z.number().int().nonnegative(),
  kept: z.number().int().nonnegative(),
  rejected: z.number().int().nonnegative(),
  rejectsByReason: z.record(z.string(), z.number().int().nonnegative()),
  tokens: z.number().int().nonnegative(),
  paddingRatio: Ratio,
  truncationRatio: Ratio,
  concatRatio: Ratio,
  sequencesPerBucket: z.record(z.string(), z.number().int().nonnegative()),
  categories: z.array(z.string()),
  shards: z.number().int().nonnegative(),
  tokenizer: z.string(),
});

/** One shard of a corpus.bucket run: lines [startLine, endLine) of the input. */
export const CorpusBucketShardPayload = partJob({
  /**
   * Store key of what the part reads `[shard.startByte, shard.endByte)` of: the run's input
   * (plain), or the shard's own gzip object written when the stage planned (gzip input).
   */
  inputKey: z.string().min(1),
  gzip: z.boolean(),
  shard: ShardSpec,
  config: PackConfig,
  tokenizer: TokenizerRef,
  scratchPrefix: z.string().min(1),
});
export const CorpusBucketShardResult = z.object({
  report: ShardReport,
  /** The shard's files in the artifact store, by the name the merge asks for. */
  files: z.record(z.string(), ArtifactEntry),
});

/** Parameters of corpus.bucket (spec `params`, or SubmitRun `corpus.bucket.<name>`), mapped onto its payload. */
export const CorpusBucketParams = z
  .object({
    strategy: z.enum(STRATEGY_NAMES),
    buckets: param.intList(),
    seed: param.int(0),
    shard_lines: param.positiveInt(),
    window_lines: param.positiveInt(),
    window_tokens: param.positiveInt(),
    padding_threshold: param.ratio(),
    category_mixing: z.enum(CATEGORY_MIXING),
    max_reject_rate: param.ratio(),
    append_eod: param.boolean(),
    tokenizer: z.string().min(1),
  })
  .partial()
  .strict();

/** Parameter name → the PackConfig field it sets. */
const CONFIG_FIELDS = {
  strategy: 'strategy',
  buckets: 'bucketLengths',
  seed: 'seed',
  shard_lines: 'shardLines',
  window_lines: 'windowLines',
  window_tokens: 'windowTokens',
  padding_threshold: 'paddingThreshold',
  category_mixing: 'categoryMixing',
  max_reject_rate: 'maxRejectRate',
  append_eod: 'appendEod',
} as const;

export const corpusBucketPlan = defineStagePlan({
  description: 'tokenizes a corpus and packs it into Megatron datasets per bucket length',
  slots: { input: { description: 'the corpus, JSONL {id, text, category, lang?}', defaultInput: 'corpus.jsonl' } },
  params: CorpusBucketParams,
  paramPaths: {
    tokenizer: 'tokenizer',
    ...Object.fromEntries(Object.entries(CONFIG_FIELDS).map(([name, field]) => [`config.${field}`, name])),
  },
  build: ({ runId, inputs, params }) => {
    const config = Object.fromEntries(
      Object.entries(CONFIG_FIELDS)
        .map(([name, field]) => [field, params[name as keyof typeof CONFIG_FIELDS]] as const)
        .filter(([, value]) => value !== undefined),
    );
    return { runId, inputKey: inputs.one('input'), config, ...(params.tokenizer ? { tokenizer: params.tokenizer } : {}) };
  },
});
