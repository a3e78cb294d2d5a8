/**
 * Versioned prompts of the pairwise LLM judge. A version's text never changes once released (pairs
 * record the version they were labelled with); a new wording is a new version.
 *
 * The judge must answer with one JSON object and nothing else:
 *   {"winner": "A" | "B" | "tie", "scores": {"A": 0..10, "B": 0..10}}
 * (`scores` may be left out unless the margin is the score gap). `parseVerdict` holds it to that.
 */
import { z } from 'zod';

export interface JudgePrompt {
  version: string;
  render(question: string, answerA: string, answerB: string): { role: 'system' | 'user'; content: string }[];
}

const V1_SYSTEM = [
  'You are an impartial expert judge of answers to financial and general questions.',
  'Compare the two answers to the question for correctness, helpfulness, harmlessness and faithfulness to the question.',
  'Do not let the order of the answers, their length or their style sway you.',
  'Reply with exactly one JSON object and nothing else:',
  '{"winner": "A" | "B" | "tie", "scores": {"A": <integer 0-10>, "B": <integer 0-10>}}',
].join('\n');

export const JUDGE_PROMPTS: Readonly<Record<string, JudgePrompt>> = {
  'pairwise-v1': {
    version: 'pairwise-v1',
    render: (question, answerA, answerB) => [
      { role: 'system', content: V1_SYSTEM },
      { role: 'user', content: `[Question]\n${question}\n\n[Answer A]\n${answerA}\n[End of Answer A]\n\n[Answer B]\n${answerB}\n[End of Answer B]` },
    ],
  },
};

export const DEFAULT_JUDGE_PROMPT = 'pairwise-v1';

const Score = z.number().min(0).max(10);
const Verdict = z
  .object({ winner: z.enum(['A', 'B', 'tie']), scores: z.object({ A: Score, B: Score }).strict().optional() })
  .strict()
  .refine((v) => !v.scores || v.winner === (v.scores.A > v.scores.B ? 'A' : v.scores.A < v.scores.B ? 'B' : 'tie'), 'winner contradicts the scores');
export type Verdict = z.output<typeof Verdict>;

/** The verdict of one judge reply, or the reason it is not one. Nothing but the JSON object is accepted. */
export function parseVerdict(content: string): { verdict: Verdict } | { error: string } {
  let json: unknown;
  try {
    json = JSON.parse(content.trim());
  } catch {
    return { error: `not a JSON object: ${content.slice(0, 80)}` };
  }
  const parsed = Verdict.safeParse(json);
  if (!parsed.success) return { error: parsed.error.issues.map((i) => `${i.path.join('.') || 'verdict'}: ${i.message}`).join('; ') };
  return { verdict: parsed.data };
}
