import { z } from 'zod';
import { defineStagePlan, stageJob } from './stage-kit';

/**
 * corpus.compare: a join over packings of one corpus — reads the committed manifests of several
 * corpus.bucket instances (different strategies or bucket lengths) and ranks them by what they
 * waste (padding, truncation), naming the packing later stages should train on.
 */
export const PACKING_CRITERIA = ['waste', 'padding', 'truncation'] as const;

export const CorpusComparePayload = stageJob({
  /** The corpus.bucket instances compared: the instance id and the key of its committed manifest. */
  packings: z.array(z.object({ instance: z.string().min(1), manifestKey: z.string().min(1) })).min(2),
  /** `waste`: padding + truncation ratio; `padding` or `truncation` alone. Ties go to the lower concatenation ratio. */
  criterion: z.enum(PACKING_CRITERIA).default('waste'),
});

export const CorpusCompareResult = z.object({
  criterion: z.enum(PACKING_CRITERIA),
  /** The instance id of the best packing. */
  best: z.string(),
  /** Best first. */
  ranking: z.array(
    z.object({
      instance: z.string(),
      strategy: z.string(),
      tokens: z.number().int().nonnegative(),
      paddingRatio: z.number().min(0),
      truncationRatio: z.number().min(0),
      concatRatio: z.number().min(0),
      score: z.number().min(0),
    }),
  ),
});

export const corpusComparePlan = defineStagePlan({
  description: 'ranks packings of one corpus (committed corpus.bucket instances) by padding and truncation',
  slots: { packings: { description: 'the corpus.bucket instances to compare (two or more)', many: true } },
  params: z.object({ criterion: z.enum(PACKING_CRITERIA) }).partial().strict(),
  paramPaths: { criterion: 'criterion' },
  build: ({ runId, inputs, params }) => ({
    runId,
    packings: inputs.all('packings').map(({ from, key }) => ({ instance: from, manifestKey: key })),
    ...(params.criterion ? { criterion: params.criterion } : {}),
  }),
});
