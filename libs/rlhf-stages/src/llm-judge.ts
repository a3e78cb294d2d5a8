/**
 * The pairwise LLM judge (MT-Bench's pairwise prompt, `[[A]]` / `[[B]]` / `[[C]]`) over a model of
 * the LLM gateway (`LlmGateway.chat` of `@xyp/llm`: the only retry loop for the endpoint — timeouts,
 * backoff on 408/409/429/5xx and connection errors, limits, cooldown; other statuses fail at once
 * with an `LlmGatewayError` naming the endpoint). An answer that cannot be parsed
 * (`parseJudgeVerdict` of `@xyp/rlhf`) is asked once more — a parse retry, not an HTTP one; a
 * second unparsable answer is `null` — a skip with its reason, never a verdict.
 */
import type { Registry } from 'prom-client';
import { LlmGateway } from '@xyp/llm';
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

/** The judge model: a gateway and the name of a model of its registry. */
export interface JudgeModel {
  gateway: LlmGateway;
  /** The registry name the calls ask for. */
  model: string;
  /** Names the judge in reasons. Default `model`. */
  label?: string;
}

/** An endpoint given as `{baseUrl, model, apiKey}` (a stage payload, a CLI flag). */
export interface JudgeEndpoint {
  /** The server root (`http://host:8000`) or the API root (`http://host:8000/v1`). */
  baseUrl: string;
  /** The model id sent to it. */
  model: string;
  apiKey?: string;
  /** Per attempt. Default the gateway's (60 s). */
  timeoutMs?: number;
}

/** The variable of the gateway's private environment the key is read from (never process.env). */
const KEY_ENV = 'XYP_JUDGE_API_KEY';

/**
 * `endpoint` as a one-model gateway registry (model `judge`, labelled by its model id in reasons).
 * `options` are the gateway's (attempts, backoff scale, metrics registry). Close it with `gateway.close()`.
 */
export function judgeEndpointModel(endpoint: JudgeEndpoint, options: { maxAttempts?: number; backoffScale?: number; metricsRegistry?: Registry } = {}): JudgeModel {
  const gateway = new LlmGateway({
    models: [
      {
        name: 'judge',
        baseUrl: endpoint.baseUrl,
        model: endpoint.model,
        ...(endpoint.apiKey ? { apiKeyEnv: KEY_ENV } : {}),
        ...(endpoint.timeoutMs !== undefined ? { timeoutMs: endpoint.timeoutMs } : {}),
      },
    ],
    env: endpoint.apiKey ? { [KEY_ENV]: endpoint.apiKey } : {},
    ...options,
  });
  return { gateway, model: 'judge', label: endpoint.model };
}

export function llmPairJudge(judge: JudgeModel, options: { maxTokens?: number } = {}): PairJudge {
  const label = judge.label ?? judge.model;
  return async (question, first, second, signal) => {
    const messages = [
      { role: 'system' as const, content: PAIRWISE_SYSTEM_PROMPT },
      { role: 'user' as const, content: pairwiseUserPrompt(question, first, second) },
    ];
    let last = '';
    // A parse retry: HTTP failures are retried by the gateway alone (and throw once it gives up).
    // The retry bypasses a response cache, which would only hand the unparsable answer back.
    for (let attempt = 0; attempt < 2; attempt++) {
      const result = await judge.gateway.chat(judge.model, { messages, temperature: 0, max_tokens: options.maxTokens ?? 512 }, { signal, ...(attempt > 0 ? { cache: false } : {}) });
      last = result.content;
      const verdict = parseJudgeVerdict(last);
      if (verdict) return { verdict, reason: `${label}: ${verdict}${attempt > 0 ? ' (on the retry)' : ''}` };
    }
    const shown = last.replace(/\s+/g, ' ').slice(0, 120);
    return { verdict: null, reason: `${label}: no [[A]]/[[B]]/[[C]] verdict in two answers (last: "${shown}")` };
  };
}
