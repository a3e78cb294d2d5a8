/**
 * The subset of the OpenAI API the local server speaks: request schemas of `/v1/completions` and
 * `/v1/chat/completions`, and OpenAI-style errors (`{error: {message, type, param, code}}`, as
 * the OpenAI API and vLLM return them).
 */
import { z } from 'zod';

export class OpenAiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
    this.name = 'OpenAiError';
  }

  body(): { error: { message: string; type: string; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export function invalidRequest(message: string, param: string | null, code: string | null = null): OpenAiError {
  return new OpenAiError(400, message, 'invalid_request_error', param, code);
}

/** `['messages', 0, 'role']` → `messages[0].role`, the form OpenAI's `param` uses. */
export function paramName(path: readonly PropertyKey[]): string | null {
  let out = '';
  for (const part of path) out += typeof part === 'number' ? `[${part}]` : out === '' ? String(part) : `.${String(part)}`;
  return out === '' ? null : out;
}

function valueAt(body: unknown, path: readonly PropertyKey[]): unknown {
  let value = body;
  for (const part of path) {
    if (typeof value !== 'object' || value === null) return undefined;
    value = (value as Record<PropertyKey, unknown>)[part];
  }
  return value;
}

/** Validates a request body; the first problem becomes a 400 naming the field. */
export function parseRequest<S extends z.ZodType>(schema: S, body: unknown): z.output<S> {
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const param = paramName(issue.path);
  const missing = issue.code === 'invalid_type' && valueAt(body, issue.path) === undefined;
  const message = missing ? `Missing required parameter: '${param}'.` : `Invalid value for '${param ?? 'body'}': ${issue.message}.`;
  throw invalidRequest(message, param, missing ? 'missing_required_parameter' : 'invalid_value');
}

const Stop = z.union([z.string(), z.array(z.string()).max(4, 'at most 4 stop sequences')]).nullish();

/** Sampling parameters shared by both endpoints, with OpenAI's ranges. */
const Sampling = {
  model: z.string({ error: 'must be a string' }).min(1, 'must not be empty'),
  n: z.number().int('must be an integer').min(1, 'must be at least 1').max(64, 'must be at most 64 on this server').nullish(),
  temperature: z.number().min(0, 'must be at least 0').max(2, 'must be at most 2').nullish(),
  top_p: z.number().gt(0, 'must be greater than 0').max(1, 'must be at most 1').nullish(),
  max_tokens: z.number().int('must be an integer').min(1, 'must be at least 1').nullish(),
  /** vLLM's extra parameter: keep only the last k tokens of the prompt (a small local model's context). */
  truncate_prompt_tokens: z.number().int('must be an integer').min(1, 'must be at least 1').nullish(),
  stop: Stop,
  seed: z.number().int('must be an integer').nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().nullish() }).nullish(),
  user: z.string().nullish(),
  /** Accepted only at their neutral values: this server has no penalties, logprobs or biases. */
  frequency_penalty: z.literal(0, 'is not supported by this server (only 0)').nullish(),
  presence_penalty: z.literal(0, 'is not supported by this server (only 0)').nullish(),
  logit_bias: z.record(z.string(), z.number()).refine((v) => Object.keys(v).length === 0, 'is not supported by this server').nullish(),
};

const TextPart = z.object({ type: z.literal('text', "only 'text' content parts are supported"), text: z.string() });
const ChatMessage = z.object({
  role: z.enum(['system', 'developer', 'user', 'assistant'], "must be one of 'system', 'developer', 'user', 'assistant'"),
  content: z.union([z.string(), z.array(TextPart)], 'must be a string or an array of text parts'),
  name: z.string().nullish(),
});

export const ChatCompletionRequest = z.object({
  ...Sampling,
  messages: z.array(ChatMessage, 'must be an array of messages').min(1, 'must contain at least one message'),
  max_completion_tokens: z.number().int('must be an integer').min(1, 'must be at least 1').nullish(),
  logprobs: z.literal(false, 'is not supported by this server').nullish(),
  tools: z.array(z.unknown()).max(0, 'are not supported by this server').nullish(),
  response_format: z.object({ type: z.literal('text', "only {type: 'text'} is supported") }).nullish(),
});
export type ChatCompletionRequest = z.output<typeof ChatCompletionRequest>;

const TokenIds = z.array(z.number().int('token ids must be integers').nonnegative('token ids must be non-negative'));
export const CompletionRequest = z.object({
  ...Sampling,
  prompt: z.union([z.string(), z.array(z.string()).min(1), TokenIds.min(1), z.array(TokenIds.min(1)).min(1)], 'must be a string, an array of strings, or token ids'),
  max_tokens: z.number().int('must be an integer').min(1, 'must be at least 1').nullish(),
  /** vLLM's extra parameter: keep only the last k tokens of the prompt (a small local model's context). */
  truncate_prompt_tokens: z.number().int('must be an integer').min(1, 'must be at least 1').nullish(),
  echo: z.literal(false, 'is not supported by this server').nullish(),
  logprobs: z.null('is not supported by this server').optional(),
  suffix: z.null('is not supported by this server').optional(),
  best_of: z.literal(1, 'is not supported by this server (only 1)').nullish(),
});
export type CompletionRequest = z.output<typeof CompletionRequest>;

export type FinishReason = 'stop' | 'length';

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}
