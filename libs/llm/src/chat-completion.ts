/**
 * POST `{baseUrl}/v1/chat/completions` on an OpenAI-compatible endpoint (vLLM, `xyp serve`, the
 * OpenAI API), with a timeout per attempt and retries with exponential backoff on 429, 5xx,
 * timeouts and connection errors. Any other status fails at once. Errors name the endpoint and the
 * status (`EndpointError`).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';

export interface EndpointOptions {
  /** The server root (`http://host:8000`); a trailing `/v1` is accepted too. */
  baseUrl: string;
  model: string;
  apiKey?: string;
  /** Per attempt. Default 60 s. */
  timeoutMs?: number;
  /** Retries after the first attempt. Default 3. */
  retries?: number;
  /** First backoff; doubles per retry (a `Retry-After` header wins, up to 30 s). Default 500 ms. */
  backoffMs?: number;
}

export interface ChatRequest {
  messages: { role: 'system' | 'user' | 'assistant'; content: string }[];
  temperature?: number;
  top_p?: number;
  n?: number;
  max_tokens?: number;
  seed?: number;
}

/** A failed call: `status` is the last HTTP status, undefined when no response came (timeout, refused). */
export class EndpointError extends Error {
  constructor(
    message: string,
    readonly endpoint: string,
    readonly status: number | undefined,
    readonly attempts: number,
  ) {
    super(message);
    this.name = 'EndpointError';
  }
}

const ChatResponse = z.object({
  choices: z
    .array(z.object({ index: z.number().int().optional(), message: z.object({ content: z.string().nullable() }), finish_reason: z.string().nullish() }))
    .min(1),
});

export interface ChatChoice {
  content: string;
  finishReason?: string;
}

export function chatCompletionsUrl(baseUrl: string): string {
  const root = baseUrl.replace(/\/+$/, '').replace(/\/v1$/, '');
  return `${root}/v1/chat/completions`;
}

function retryable(status: number): boolean {
  return status === 429 || status >= 500;
}

function retryAfterMs(header: string | null): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.min(seconds * 1000, 30_000);
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.min(Math.max(0, at - Date.now()), 30_000);
}

function snippet(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 300 ? `${flat.slice(0, 300)}…` : flat;
}

/** The choices of one chat completion, in index order. */
export async function chatCompletion(endpoint: EndpointOptions, request: ChatRequest, signal?: AbortSignal): Promise<ChatChoice[]> {
  const url = chatCompletionsUrl(endpoint.baseUrl);
  const retries = endpoint.retries ?? 3;
  const timeoutMs = endpoint.timeoutMs ?? 60_000;
  const backoffMs = endpoint.backoffMs ?? 500;
  const body = JSON.stringify({ model: endpoint.model, ...request });
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (endpoint.apiKey) headers.authorization = `Bearer ${endpoint.apiKey}`;
  let last = '';
  let lastStatus: number | undefined;
  for (let attempt = 0; attempt <= retries; attempt++) {
    signal?.throwIfAborted();
    let wait = backoffMs * 2 ** attempt;
    const timeout = AbortSignal.timeout(timeoutMs);
    try {
      const response = await fetch(url, { method: 'POST', headers, body, signal: signal ? AbortSignal.any([signal, timeout]) : timeout });
      const text = await response.text();
      if (response.ok) {
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          throw new EndpointError(`POST ${url} (model ${endpoint.model}): status ${response.status} but the body is not JSON: ${snippet(text)}`, url, response.status, attempt + 1);
        }
        const parsed = ChatResponse.safeParse(json);
        if (!parsed.success) {
          throw new EndpointError(`POST ${url} (model ${endpoint.model}): status ${response.status} but no chat completion choices in ${snippet(text)}`, url, response.status, attempt + 1);
        }
        return [...parsed.data.choices]
          .sort((a, b) => (a.index ?? 0) - (b.index ?? 0))
          .map((c) => ({ content: c.message.content ?? '', ...(c.finish_reason ? { finishReason: c.finish_reason } : {}) }));
      }
      lastStatus = response.status;
      last = `status ${response.status}: ${snippet(text)}`;
      if (!retryable(response.status)) {
        throw new EndpointError(`POST ${url} (model ${endpoint.model}) failed with ${last}`, url, response.status, attempt + 1);
      }
      wait = retryAfterMs(response.headers.get('retry-after')) ?? wait;
    } catch (error) {
      if (error instanceof EndpointError) throw error;
      if (signal?.aborted) throw signal.reason;
      lastStatus = undefined;
      last = timeout.aborted ? `no answer within ${timeoutMs} ms` : `request failed (${error instanceof Error ? (error.cause instanceof Error ? error.cause.message : error.message) : String(error)})`;
    }
    if (attempt < retries) await sleep(wait, undefined, { signal });
  }
  throw new EndpointError(`POST ${url} (model ${endpoint.model}) failed after ${retries + 1} attempt(s); last: ${last}`, url, lastStatus, retries + 1);
}
