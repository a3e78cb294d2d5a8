/**
 * The pairwise LLM judge (MT-Bench's pairwise prompt, `[[A]]` / `[[B]]` / `[[C]]`) over an
 * OpenAI-compatible endpoint (`chatCompletion` of `@xyp/llm`: timeouts and transport retries). An
 * answer that cannot be parsed (`parseJudgeVerdict` of `@xyp/rlhf`) is asked once more; a second
 * unparsable answer is `null` — a skip with its reason, never a verdict.
 */
import { chatCompletion, type EndpointOptions } from '@xyp/llm';
import { parseJudgeVerdict, type JudgeVerdict } from '@xyp/rlhf';

/** A verdict for the pair shown in this order (first = assistant A), or null when the judge gave none. */
export type PairJudge = (question: string, first: string, second: string, signal?: AbortSignal) => Promise<{ verdict: JudgeVerdict | null; reason: string }>;

/** MT-Bench's pairwise system prompt (`pair-v2`), answers compared for one user question. */
export const PAIRWISE_SYSTEM_PROMPT =
  'Please act as an impartial judge and evaluate the quality of the responses provided by two AI assistants to the user question displayed below. ' +
  'You should choose the assistant that follows the user\'s instructions and answers the user\'s question better. Your evaluation should consider factors such as the helpfulness, relevance, accuracy, depth, creativity, and level of detail of their responses. ' +
  'Begin your evaluation by comparing the two responses and provide a short explanation. Avoid any position biases and ensure that the order in which the responses were presented does not influence your decision. ' +
  'Do not allow the length of the responses to influence your evaluation. Do not favor certain names of the assistants. Be as objective as possible. ' +
  'After providing your explanation, output your final verdict by strictly following this format: "[[A]]" if assistant A is better, "[[B]]" if assistant B is better, and "[[C]]" for a tie.';

export function pairwiseUserPrompt(question: string, first: string, second: string): string {
  return `[User Question]\n${question}\n\n[The Start of Assistant A's Answer]\n${first}\n[The End of Assistant A's Answer]\n\n[The Start of Assistant B's Answer]\n${second}\n[The End of Assistant B's Answer]`;
}

export function llmPairJudge(endpoint: EndpointOptions, options: { maxTokens?: number } = {}): PairJudge {
  return async (question, first, second, signal) => {
    const messages = [
      { role: 'system' as const, content: PAIRWISE_SYSTEM_PROMPT },
      { role: 'user' as const, content: pairwiseUserPrompt(question, first, second) },
    ];
    let last = '';
    for (let attempt = 0; attempt < 2; attempt++) {
      const [choice] = await chatCompletion(endpoint, { messages, temperature: 0, max_tokens: options.maxTokens ?? 512 }, signal);
      last = choice?.content ?? '';
      const verdict = parseJudgeVerdict(last);
      if (verdict) return { verdict, reason: `${endpoint.model}: ${verdict}${attempt > 0 ? ' (on the retry)' : ''}` };
    }
    const shown = last.replace(/\s+/g, ' ').slice(0, 120);
    return { verdict: null, reason: `${endpoint.model}: no [[A]]/[[B]]/[[C]] verdict in two answers (last: "${shown}")` };
  };
}
