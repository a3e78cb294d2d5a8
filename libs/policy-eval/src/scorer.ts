/**
 * What an evaluation needs from a policy, whatever runs it (the local TF.js engine, a served
 * model): the three request types of lm-evaluation-harness — log-likelihood of a continuation
 * after a context, rolling log-likelihood of a whole text, greedy generation — plus the
 * log-likelihood of a conversation's assistant tokens (the chat template's train mask).
 */

export interface LogLikelihoodRequest {
  context: string;
  continuation: string;
}

export interface LogLikelihoodResult {
  /** Σ log p(continuation token | everything before it), natural log. */
  logLikelihood: number;
  /** Continuation tokens counted in `logLikelihood`. */
  tokens: number;
  /** Characters (Unicode code points) of the continuation, as given. */
  chars: number;
  /** True when the continuation alone did not fit the model's context and only its last tokens were counted. */
  truncated?: boolean;
}

export type EvalRole = 'system' | 'user' | 'assistant';
export interface EvalMessage {
  role: EvalRole;
  content: string;
}

export interface ConversationLogLikelihood {
  /** Σ log p over the assistant tokens (content and closing end token of each assistant message). */
  logLikelihood: number;
  tokens: number;
  /** True when the conversation was cut from the left to fit the context. */
  truncated?: boolean;
}

export interface RollingLogLikelihood {
  /** Σ log p over every token of the text. */
  logLikelihood: number;
  tokens: number;
}

export interface GenerateOptions {
  maxTokens: number;
  /** Strings that end a generation (not part of the returned text). */
  stop?: string[];
  signal?: AbortSignal;
}

export interface PolicyScorer {
  /** Model name for reports (checkpoint ID). */
  readonly name: string;
  logLikelihood(requests: readonly LogLikelihoodRequest[], options?: { signal?: AbortSignal }): Promise<LogLikelihoodResult[]>;
  conversationLogLikelihood(conversations: readonly (readonly EvalMessage[])[], options?: { signal?: AbortSignal }): Promise<ConversationLogLikelihood[]>;
  /** Greedy (temperature 0) continuations of raw-text prompts. */
  generate(prompts: readonly string[], options: GenerateOptions): Promise<string[]>;
  /**
   * Optional: log-likelihood of every token of each text, in windows when it is longer than the
   * context (lm-evaluation-harness `loglikelihood_rolling`). Perplexity uses it when present and
   * falls back to `logLikelihood` with an empty context otherwise.
   */
  logLikelihoodRolling?(texts: readonly string[], options?: { signal?: AbortSignal }): Promise<RollingLogLikelihood[]>;
}

/** Characters of a string as Python's `len` counts them (code points, not UTF-16 units). */
export function charCount(text: string): number {
  let n = 0;
  for (const _ of text) n += 1;
  return n;
}
