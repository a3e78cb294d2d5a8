/**
 * The LLM gateway: every call to an OpenAI-compatible endpoint goes through `LlmGateway.chat`, the
 * only retry loop for them (the official `openai` client runs with `maxRetries: 0`). Per call:
 *
 * 1. the response cache (a hit makes no HTTP request);
 * 2. routing: the model asked for, or — while its endpoint is paused (cooldown) — its fallback,
 *    and the fallback's fallback; when every model of the chain is paused the call waits for the
 *    first pause to end (bounded by the caller's signal) rather than failing;
 * 3. admission: requests/minute and tokens/minute buckets (a request is estimated at
 *    chars/4 + max_tokens·n tokens and charged its actual usage after), then the concurrency slot;
 * 4. the HTTP request, with a timeout over headers and body, by the openai client over keep-alive
 *    node:http (`nodeHttpFetch`: Node's built-in fetch costs far more CPU under concurrency);
 * 5. on a transient failure (connection error, timeout, 408, 409, 429, 5xx, a 200 whose body is no
 *    chat completion) a wait — the server's `retry-after-ms` / `retry-after` when within 0–60 s,
 *    else `min(0.5·2^n, 8) s` less up to 25 % jitter — and another attempt, up to `maxAttempts` in
 *    all; no wait when the failure paused the endpoint and the next attempt goes to a fallback.
 *    Any other status fails at once. Failures are `LlmGatewayError`s (an `EndpointError`) naming
 *    the model, its base URL and model id, the attempts and the last status or cause; API keys
 *    never appear in them.
 */
import OpenAI, { APIConnectionError, APIConnectionTimeoutError, APIError } from 'openai';
import type { ChatCompletion, ChatCompletionCreateParamsNonStreaming } from 'openai/resources/chat/completions';
import { Registry } from 'prom-client';
import type { z } from 'zod';
import { GatewayAccounting, type ModelStats } from './accounting';
import { EndpointError } from './errors';
import { systemClock, type Clock } from './clock';
import { Cooldown } from './cooldown';
import { nodeHttpFetch, type NodeHttpFetch } from './http-transport';
import { Semaphore, TokenBucket } from './limits';
import { parseModelRegistry, resolveApiKey, type ModelConfig, type ModelConfigInput } from './model-registry';
import { responseCacheKey, type ResponseCache } from './response-cache';
import { backoffMs, isRetryableStatus, retryAfterMs } from './retry-policy';
import { parseStructured, repairPrompt } from './structured';

/** The messages and the common sampling parameters of a chat request, as the OpenAI API names them. */
export interface ChatRequest {
  messages: { role: 'system' | 'user' | 'assistant'; content: string }[];
  temperature?: number;
  top_p?: number;
  n?: number;
  max_tokens?: number;
  seed?: number;
}

/** One choice of a chat completion. */
export interface ChatChoice {
  content: string;
  finishReason?: string;
}

/** A chat request: the messages and every sampling parameter, as the OpenAI API names them. */
export interface GatewayChatRequest extends ChatRequest {
  stop?: string | string[];
  presence_penalty?: number;
  frequency_penalty?: number;
  response_format?: { type: 'text' } | { type: 'json_object' } | { type: 'json_schema'; json_schema: { name: string; schema?: Record<string, unknown>; strict?: boolean; description?: string } };
}

export interface ChatOptions {
  signal?: AbortSignal;
  /** false: neither read nor write the response cache for this call. Default true. */
  cache?: boolean;
}

export interface ChatUsage {
  promptTokens: number;
  completionTokens: number;
}

export interface ChatResult {
  /** The first choice's content. */
  content: string;
  /** Every choice's content, in index order. */
  contents: string[];
  choices: ChatChoice[];
  usage: ChatUsage;
  /** The model (config name) that answered: the one asked for, or a fallback. */
  model: string;
  cached: boolean;
  /** HTTP requests made for this call (0 for a cache hit). */
  attempts: number;
  latencyMs: number;
}

export type StructuredResult<T> =
  | { ok: true; value: T; result: ChatResult; repairs: number }
  | { ok: false; reason: string; content: string; result: ChatResult; repairs: number };

export interface StructuredOptions extends ChatOptions {
  /** Times the model is re-asked after a reply that does not parse or validate. Default 1. */
  repairs?: number;
}

export interface LlmGatewayOptions {
  /** The model registry: `{models: [...]}` or the list (parsed with `parseModelRegistry`). */
  models: { models: ModelConfigInput[] } | ModelConfigInput[];
  /** Where `apiKeyEnv` is read (default process.env). */
  env?: NodeJS.ProcessEnv;
  cache?: ResponseCache;
  /** Where the `xyp_llm_*` metrics are registered (default: a registry of this gateway's own). */
  metricsRegistry?: Registry;
  clock?: Clock;
  /** Uniform in [0, 1), for backoff jitter (default Math.random). */
  random?: () => number;
  /** HTTP requests per call at most, fallbacks included. Default 6. */
  maxAttempts?: number;
  /** Multiplies the backoff schedule (not a server's Retry-After). Default 1. */
  backoffScale?: number;
  /** The openai client's transport. Default `nodeHttpFetch()` (keep-alive node:http/https; see http-transport.ts). */
  fetch?: typeof fetch;
}

/** A failed gateway call: `model` is the model whose endpoint failed last, `requestedModel` the one asked for. */
export class LlmGatewayError extends EndpointError {
  constructor(
    message: string,
    endpoint: string,
    status: number | undefined,
    attempts: number,
    readonly model: string,
    readonly requestedModel: string,
    /** True when the failure was not retried (a 4xx other than 408/409/429). */
    readonly permanent: boolean,
  ) {
    super(message, endpoint, status, attempts);
    this.name = 'LlmGatewayError';
  }
}

/** Sent as the bearer token to endpoints without a configured key (the client needs one; never the environment's OPENAI_API_KEY). */
const NO_KEY = 'no-key';

interface Endpoint {
  config: ModelConfig;
  baseURL: string;
  /** `model judge at http://host:8000/v1 (model id Qwen/…)` */
  label: string;
  client: OpenAI;
  slots: Semaphore;
  requestsPerMinute?: TokenBucket;
  tokensPerMinute?: TokenBucket;
  cooldown: Cooldown;
  fallback?: Endpoint;
}

interface AttemptFailure {
  retryable: boolean;
  status?: number;
  /** The `reason` label of `xyp_llm_retries_total`. */
  reason: string;
  detail: string;
  retryAfterMs?: number;
}

type Attempt = { ok: true; choices: ChatChoice[]; usage: ChatUsage } | { ok: false; failure: AttemptFailure };

interface CachedAnswer {
  v: 1;
  model: string;
  choices: ChatChoice[];
  usage: ChatUsage;
}

/** A bare origin (`http://host:8000`) gets `/v1`; a URL with a path is the API root as given (as the openai client takes it). */
export function apiBaseUrl(baseUrl: string): string {
  const url = new URL(baseUrl);
  const trimmed = baseUrl.replace(/\/+$/, '');
  return url.pathname === '/' || url.pathname === '' ? `${trimmed}/v1` : trimmed;
}

function snippet(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 300 ? `${flat.slice(0, 300)}…` : flat;
}

/** The messages of an error and its causes, `a: b: c`. */
function causeChain(error: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = error; e !== undefined && e !== null && parts.length < 5; e = (e as { cause?: unknown }).cause) {
    const message = e instanceof Error ? e.message : String(e);
    const code = (e as { code?: unknown }).code;
    const part = typeof code === 'string' && !message.includes(code) ? `${message} (${code})` : message;
    if (part && !parts.includes(part)) parts.push(part);
    if (!(e instanceof Error)) break;
  }
  return parts.join(': ') || 'unknown error';
}

function estimateTokens(request: GatewayChatRequest): number {
  let chars = 0;
  for (const m of request.messages) chars += m.content.length;
  return Math.ceil(chars / 4) + (request.max_tokens ?? 0) * (request.n ?? 1);
}

function isCompletion(value: unknown): value is ChatCompletion {
  const choices = (value as { choices?: unknown } | null)?.choices;
  return Array.isArray(choices) && choices.length > 0 && choices.every((c) => typeof (c as { message?: unknown })?.message === 'object' && (c as { message: unknown }).message !== null);
}

function parseCached(text: string): CachedAnswer | undefined {
  try {
    const value = JSON.parse(text) as CachedAnswer;
    return value?.v === 1 && Array.isArray(value.choices) && value.choices.length > 0 && typeof value.model === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
}

export class LlmGateway {
  private readonly endpoints = new Map<string, Endpoint>();
  private readonly secrets: string[] = [];
  private readonly accounting: GatewayAccounting;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly maxAttempts: number;
  private readonly backoffScale: number;
  private readonly cache?: ResponseCache;
  private readonly transport?: NodeHttpFetch;
  readonly metricsRegistry: Registry;

  constructor(options: LlmGatewayOptions) {
    const registry = parseModelRegistry(Array.isArray(options.models) ? { models: options.models } : options.models);
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.maxAttempts = options.maxAttempts ?? 6;
    if (!Number.isInteger(this.maxAttempts) || this.maxAttempts < 1) throw new Error(`LlmGateway: maxAttempts must be an integer ≥ 1, got ${this.maxAttempts}`);
    this.backoffScale = options.backoffScale ?? 1;
    this.cache = options.cache;
    this.metricsRegistry = options.metricsRegistry ?? new Registry();
    this.accounting = new GatewayAccounting(this.metricsRegistry);
    if (!options.fetch) this.transport = nodeHttpFetch();
    const transport = options.fetch ?? this.transport?.fetch;
    for (const config of registry.models) {
      const apiKey = resolveApiKey(config, options.env);
      if (apiKey) this.secrets.push(apiKey);
      const baseURL = apiBaseUrl(config.baseUrl);
      this.endpoints.set(config.name, {
        config,
        baseURL,
        label: `model ${config.name} at ${baseURL} (model id ${config.model})`,
        client: new OpenAI({ baseURL, apiKey: apiKey ?? NO_KEY, adminAPIKey: null, organization: null, project: null, maxRetries: 0, timeout: config.timeoutMs, logLevel: 'off', fetch: transport }),
        slots: new Semaphore(config.maxConcurrency),
        ...(config.requestsPerMinute ? { requestsPerMinute: new TokenBucket(config.requestsPerMinute, this.clock) } : {}),
        ...(config.tokensPerMinute ? { tokensPerMinute: new TokenBucket(config.tokensPerMinute, this.clock) } : {}),
        cooldown: new Cooldown(config.cooldown, this.clock),
      });
    }
    for (const endpoint of this.endpoints.values()) {
      if (endpoint.config.fallback !== undefined) endpoint.fallback = this.endpoints.get(endpoint.config.fallback);
    }
  }

  /** The configured model names. */
  get modelNames(): string[] {
    return [...this.endpoints.keys()];
  }

  /** Closes the pooled connections of the default transport. */
  close(): void {
    this.transport?.close();
  }

  /** Tokens, cost, latency and counts per model (a copy). */
  stats(): Record<string, ModelStats> {
    return this.accounting.snapshot();
  }

  /** One chat completion from `modelName` (or its fallback while it is paused). */
  async chat(modelName: string, request: GatewayChatRequest, options: ChatOptions = {}): Promise<ChatResult> {
    const { signal } = options;
    signal?.throwIfAborted();
    const requested = this.endpoint(modelName);
    const started = this.clock.now();
    const useCache = this.cache !== undefined && options.cache !== false;
    const key = useCache ? responseCacheKey(requested.config, request) : undefined;
    if (key !== undefined) {
      const hit = await this.cache?.get(key);
      const answer = hit === undefined ? undefined : parseCached(hit);
      if (answer) {
        this.accounting.cached(requested.config.name);
        return { ...this.result(answer.choices, answer.usage, answer.model, 0, started), cached: true };
      }
    }
    let attempts = 0;
    for (;;) {
      const target = await this.route(requested, signal);
      attempts++;
      const attempt = await this.attempt(target, request, signal);
      if (attempt.ok) {
        target.cooldown.record(false);
        const result = this.result(attempt.choices, attempt.usage, target.config.name, attempts, started);
        this.accounting.answered(target.config.name, attempt.usage, this.costUsd(target.config, attempt.usage), result.latencyMs);
        if (key !== undefined) await this.store(key, requested, target, request, result);
        return result;
      }
      const { failure } = attempt;
      if (target.cooldown.record(failure.retryable)) this.accounting.cooldown(target.config.name);
      if (!failure.retryable || attempts >= this.maxAttempts) {
        this.accounting.failed(requested.config.name);
        throw this.failure(requested, target, failure, attempts);
      }
      this.accounting.retry(target.config.name, failure.reason);
      // A failure that paused the endpoint sends the next attempt to a fallback at once.
      const next = this.available(requested);
      if (next !== undefined && next !== target) continue;
      await this.clock.sleep(failure.retryAfterMs ?? backoffMs(attempts - 1, this.random, this.backoffScale), signal);
    }
  }

  /**
   * A chat completion whose first choice is JSON matching `schema` (bare, in a ```json block, or the
   * first `{…}`/`[…]` span). A reply that does not parse or validate is answered with the bad reply
   * (as the assistant) and a user turn naming the error, up to `repairs` times (default 1); then
   * `{ok: false, reason}`. Malformed output never throws; endpoint failures do (`LlmGatewayError`).
   */
  async chatStructured<T>(modelName: string, request: GatewayChatRequest, schema: z.ZodType<T>, options: StructuredOptions = {}): Promise<StructuredResult<T>> {
    const repairs = options.repairs ?? 1;
    let messages = request.messages;
    for (let round = 0; ; round++) {
      const result = await this.chat(modelName, { ...request, messages }, options);
      const parsed = parseStructured(result.content, schema);
      if (parsed.ok) return { ok: true, value: parsed.value, result, repairs: round };
      if (round >= repairs) {
        const reason = round === 0 ? parsed.reason : `${parsed.reason}, still after ${round} repair request(s)`;
        return { ok: false, reason, content: result.content, result, repairs: round };
      }
      messages = [...messages, { role: 'assistant', content: result.content }, { role: 'user', content: repairPrompt(parsed.reason) }];
    }
  }

  private endpoint(name: string): Endpoint {
    const endpoint = this.endpoints.get(name);
    if (!endpoint) throw new Error(`LlmGateway: no model named ${name} (models: ${this.modelNames.join(', ')})`);
    return endpoint;
  }

  /** The first model of the fallback chain that is not paused now, if any. */
  private available(requested: Endpoint): Endpoint | undefined {
    const now = this.clock.now();
    for (let e: Endpoint | undefined = requested; e; e = e.fallback) if (e.cooldown.pausedUntil(now) === undefined) return e;
    return undefined;
  }

  /** The model to call now: the first of the chain not paused, else waits until the first pause ends. */
  private async route(requested: Endpoint, signal?: AbortSignal): Promise<Endpoint> {
    for (;;) {
      const available = this.available(requested);
      if (available) return available;
      let resumes = Infinity;
      for (let e: Endpoint | undefined = requested; e; e = e.fallback) resumes = Math.min(resumes, e.cooldown.pausedUntil() ?? Infinity);
      await this.clock.sleep(Math.max(0, resumes - this.clock.now()), signal);
    }
  }

  /** One HTTP request to `target`, admitted by its rate limits and concurrency slot. */
  private async attempt(target: Endpoint, request: GatewayChatRequest, signal?: AbortSignal): Promise<Attempt> {
    const estimate = estimateTokens(request);
    await target.requestsPerMinute?.take(1, signal);
    let release: () => void;
    try {
      await target.tokensPerMinute?.take(estimate, signal);
      try {
        release = await target.slots.acquire(signal);
      } catch (error) {
        target.tokensPerMinute?.adjust(-estimate);
        throw error;
      }
    } catch (error) {
      target.requestsPerMinute?.adjust(-1);
      throw error;
    }
    const controller = new AbortController();
    const onAbort = () => controller.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, target.config.timeoutMs);
    this.accounting.httpRequest(target.config.name);
    let completion: unknown;
    try {
      const body = { ...request, model: target.config.model } as ChatCompletionCreateParamsNonStreaming;
      completion = await target.client.chat.completions.create(body, { signal: controller.signal });
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      target.tokensPerMinute?.adjust(-estimate);
      return { ok: false, failure: this.classify(error, target, timedOut) };
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      release();
    }
    if (!isCompletion(completion)) {
      target.tokensPerMinute?.adjust(-estimate);
      const shown = typeof completion === 'string' ? completion : JSON.stringify(completion) ?? String(completion);
      return { ok: false, failure: { retryable: true, reason: 'malformed_body', detail: `status 200 but no chat completion in the body: ${snippet(this.redact(shown))}` } };
    }
    const choices = [...completion.choices]
      .sort((a, b) => (a.index ?? 0) - (b.index ?? 0))
      .map((c) => ({ content: c.message.content ?? '', ...(c.finish_reason ? { finishReason: c.finish_reason } : {}) }));
    const usage = {
      promptTokens: completion.usage?.prompt_tokens ?? 0,
      completionTokens: completion.usage?.completion_tokens ?? 0,
    };
    target.tokensPerMinute?.adjust(usage.promptTokens + usage.completionTokens - estimate);
    return { ok: true, choices, usage };
  }

  private classify(error: unknown, target: Endpoint, timedOut: boolean): AttemptFailure {
    if (timedOut || error instanceof APIConnectionTimeoutError) {
      return { retryable: true, reason: 'timeout', detail: `no answer within ${target.config.timeoutMs} ms` };
    }
    if (error instanceof APIError && typeof error.status === 'number') {
      const status = error.status;
      const retryAfter = isRetryableStatus(status) ? retryAfterMs(error.headers, this.clock.now()) : undefined;
      return {
        retryable: isRetryableStatus(status),
        status,
        reason: `http_${status}`,
        detail: `status ${status}: ${snippet(this.redact(error.message.startsWith(`${status} `) ? error.message.slice(`${status} `.length) : error.message))}`,
        ...(retryAfter !== undefined ? { retryAfterMs: retryAfter } : {}),
      };
    }
    if (error instanceof SyntaxError) {
      return { retryable: true, reason: 'malformed_body', detail: `the body is not JSON (${snippet(this.redact(error.message))})` };
    }
    const cause = error instanceof APIConnectionError && error.cause !== undefined ? error.cause : error;
    return { retryable: true, reason: 'connection', detail: `connection failed (${snippet(this.redact(causeChain(cause)))})` };
  }

  private failure(requested: Endpoint, target: Endpoint, failure: AttemptFailure, attempts: number): LlmGatewayError {
    const via = target === requested ? '' : ` (asked for model ${requested.config.name}, routed to its fallback)`;
    const message = failure.retryable
      ? `LLM ${target.label}${via} failed after ${attempts} attempt(s); last: ${failure.detail}`
      : `LLM ${target.label}${via} failed with ${failure.detail} (not retried)`;
    return new LlmGatewayError(this.redact(message), target.baseURL, failure.status, attempts, target.config.name, requested.config.name, !failure.retryable);
  }

  private redact(text: string): string {
    let out = text;
    for (const secret of this.secrets) if (secret.length >= 4) out = out.split(secret).join('[redacted]');
    return out;
  }

  private costUsd(config: ModelConfig, usage: ChatUsage): number {
    const price = config.pricePer1M;
    return price ? (usage.promptTokens * price.input + usage.completionTokens * price.output) / 1e6 : 0;
  }

  private result(choices: ChatChoice[], usage: ChatUsage, model: string, attempts: number, started: number): ChatResult {
    return { content: choices[0]?.content ?? '', contents: choices.map((c) => c.content), choices, usage, model, cached: false, attempts, latencyMs: this.clock.now() - started };
  }

  /** Under the requested model's key, and under the answering model's too when a fallback answered. */
  private async store(key: string, requested: Endpoint, target: Endpoint, request: GatewayChatRequest, result: ChatResult): Promise<void> {
    const value = JSON.stringify({ v: 1, model: result.model, choices: result.choices, usage: result.usage } satisfies CachedAnswer);
    await this.cache?.set(key, value);
    if (target !== requested) await this.cache?.set(responseCacheKey(target.config, request), value);
  }
}
