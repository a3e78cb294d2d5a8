import { z } from 'zod';

/** One input document of the corpus: JSONL `{id, text, category, lang?}`. */
export const CorpusDocument = z.object({
  id: z.union([z.string().min(1), z.number().int()]).transform(String),
  text: z.string().min(1, 'text is empty'),
  category: z.string().min(1, 'category is empty'),
  lang: z.string().min(2).optional(),
});
export type CorpusDocument = z.infer<typeof CorpusDocument>;
