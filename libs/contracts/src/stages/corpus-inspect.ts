import { z } from 'zod';
import { defineStagePlan, stageJob } from './stage-kit';

/** corpus.inspect: reads the run's input corpus, checks each line and counts documents per category. */
export const CorpusInspectPayload = stageJob({
  /** Store key of the input JSONL (`runs/<runId>/input/objects/<sha256>`). */
  inputKey: z.string().min(1),
});

const CategoryCount = z.object({ docs: z.number().int().nonnegative(), chars: z.number().int().nonnegative() });

export const CorpusInspectResult = z.object({
  docs: z.number().int().nonnegative(),
  rejected: z.number().int().nonnegative(),
  chars: z.number().int().nonnegative(),
  categories: z.record(z.string(), CategoryCount),
  rejectReasons: z.record(z.string(), z.number().int().nonnegative()),
});

export const corpusInspectPlan = defineStagePlan({
  description: 'checks every line of a corpus and counts documents and characters per category',
  slots: { input: { description: 'the corpus, JSONL {id, text, category, lang?}', defaultInput: 'corpus.jsonl' } },
  params: z.object({}).strict(),
  build: ({ runId, inputs }) => ({ runId, inputKey: inputs.one('input') }),
});
