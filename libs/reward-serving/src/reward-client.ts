/**
 * The client side of `RewardService.Score`: the same `TextReward` as the in-process scorer, over gRPC.
 */
import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { checkRewardScores, type TextReward } from '@xyp/contracts';
import { RewardServiceClient, grpcClientSettings, type GrpcClientOptions, type ScoreResponse } from '@xyp/grpc';

export type RewardClient = InstanceType<typeof RewardServiceClient>;

/**
 * A typed @grpc/grpc-js client of RewardService, sending the bearer token and using the TLS of
 * `options`, or of the environment (`XYP_GRPC_TOKEN`, `XYP_GRPC_TLS_*`: what a service calling
 * another was started with).
 */
export function createRewardClient(address: string, options?: GrpcClientOptions): RewardClient {
  const settings = grpcClientSettings(options);
  return new RewardServiceClient(address, settings.credentials, settings.options);
}

export interface RewardServiceScorerOptions {
  /** The reward model to ask for (`ScoreRequest.model`); empty: the service's own. */
  model?: string;
  /** Deadline of each call (default 60 s); past it the call ends with `DEADLINE_EXCEEDED`. */
  timeoutMs?: number;
  /** A batch larger than this goes as several calls, in order (default 1,024 items). */
  maxItemsPerCall?: number;
}

/**
 * A `TextReward` that scores through `RewardService.Score`: each batch is sent (in chunks of
 * `maxItemsPerCall`), the scores come back in order and are checked (one finite score per item). An
 * aborted signal cancels the call in flight and rejects with the signal's reason; a failed call
 * rejects with the service's message and status.
 */
export function rewardServiceScorer(client: RewardClient, options: RewardServiceScorerOptions = {}): TextReward {
  const chunk = Math.max(1, options.maxItemsPerCall ?? 1024);
  const call = (items: { prompt: string; response: string; category: string }[], signal?: AbortSignal): Promise<ScoreResponse> =>
    new Promise((resolve, reject) => {
      signal?.throwIfAborted();
      const deadline = new Date(Date.now() + (options.timeoutMs ?? 60_000));
      const pending = client.score({ model: options.model ?? '', items }, new Metadata(), { deadline }, (error: ServiceError | null, response: ScoreResponse) => {
        signal?.removeEventListener('abort', onAbort);
        if (signal?.aborted) return reject(signal.reason);
        if (error) return reject(new Error(`RewardService.Score: ${error.details || error.message} (${status[error.code] ?? error.code})`, { cause: error }));
        resolve(response);
      });
      const onAbort = (): void => pending.cancel();
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  return async (batch, callOptions = {}) => {
    const scores: number[] = [];
    for (let start = 0; start < batch.length; start += chunk) {
      const items = batch.slice(start, start + chunk).map((item) => ({ prompt: item.prompt, response: item.response, category: item.category ?? '' }));
      const response = await call(items, callOptions.signal);
      scores.push(...checkRewardScores(response.scores, items.length, `RewardService.Score (${response.model || 'its model'})`));
    }
    return scores;
  };
}
