/**
 * The OpenAI-compatible endpoints of the pairs (samplers and judge) as models of the LLM gateway
 * (`LlmGateway` of `@xyp/llm`), the only retry loop for them: timeouts, backoff, `Retry-After`,
 * concurrency and rate limits, cooldown. A `{baseUrl, model, apiKey, timeoutMs, retries, backoffMs}`
 * endpoint of the config becomes a one-model registry (`endpointModel`); a caller with a registry
 * of its own passes its gateway and a model of it (`GatewayModel`) instead.
 */
import { INITIAL_RETRY_DELAY_MS, LlmGateway, apiBaseUrl, type ModelConfig, type ModelConfigInput } from '@xyp/llm';

/** A gateway and one model of its registry: the name calls ask for, the base URL and model id provenance records. */
export interface GatewayModel extends Pick<ModelConfig, 'name' | 'baseUrl' | 'model'> {
  gateway: LlmGateway;
}

/** An endpoint as the config gives it, with its API key resolved. */
export interface PairsEndpoint {
  /** The server root (`http://host:8000`) or the API root (`http://host:8000/v1`). */
  baseUrl: string;
  /** The model id sent to it. */
  model: string;
  apiKey?: string;
  /** Per attempt. Default the gateway's (60 s). */
  timeoutMs?: number;
  /** Retries after the first attempt (the gateway's `maxAttempts` − 1). Default the gateway's (5). */
  retries?: number;
  /** The first backoff: the gateway's schedule (0.5 s · 2^n, at most 8 s) scaled by backoffMs / 500. Default 500. */
  backoffMs?: number;
  maxConcurrency?: number;
  requestsPerMinute?: number;
  tokensPerMinute?: number;
}

/** The variable of the gateway's private environment the key is read from (never process.env). */
const KEY_ENV = 'XYP_PAIRS_ENDPOINT_KEY';

/** `endpoint` as the model `name` of a gateway of its own (one-model registry); close it with `gateway.close()`. */
export function endpointModel(name: string, endpoint: PairsEndpoint): GatewayModel {
  const model: ModelConfigInput = {
    name,
    baseUrl: endpoint.baseUrl,
    model: endpoint.model,
    ...(endpoint.apiKey ? { apiKeyEnv: KEY_ENV } : {}),
    ...(endpoint.timeoutMs !== undefined ? { timeoutMs: endpoint.timeoutMs } : {}),
    ...(endpoint.maxConcurrency !== undefined ? { maxConcurrency: endpoint.maxConcurrency } : {}),
    ...(endpoint.requestsPerMinute !== undefined ? { requestsPerMinute: endpoint.requestsPerMinute } : {}),
    ...(endpoint.tokensPerMinute !== undefined ? { tokensPerMinute: endpoint.tokensPerMinute } : {}),
  };
  const gateway = new LlmGateway({
    models: [model],
    env: endpoint.apiKey ? { [KEY_ENV]: endpoint.apiKey } : {},
    ...(endpoint.retries !== undefined ? { maxAttempts: endpoint.retries + 1 } : {}),
    ...(endpoint.backoffMs !== undefined ? { backoffScale: endpoint.backoffMs / INITIAL_RETRY_DELAY_MS } : {}),
  });
  return { gateway, name, baseUrl: endpoint.baseUrl, model: endpoint.model };
}

/** The chat-completions URL the gateway posts to for `baseUrl` (what provenance records). */
export function chatCompletionsUrl(baseUrl: string): string {
  return `${apiBaseUrl(baseUrl)}/chat/completions`;
}
