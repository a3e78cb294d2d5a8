/**
 * `RewardService.Score` without the transport: a request in (model id, items), one score per item
 * out, every refusal a `RewardServiceError` with the gRPC status to answer with. The reward app's
 * controller only maps that error to an `RpcException`.
 */
import { status } from '@grpc/grpc-js';
import type { ScoreRequest, ScoreResponse } from '@xyp/grpc';
import type { TextReward } from '@xyp/contracts';

/** A refused or failed Score call, with its gRPC status code. */
export class RewardServiceError extends Error {
  override readonly name = 'RewardServiceError';
  constructor(
    readonly code: status,
    message: string,
  ) {
    super(message);
  }
}

/** A reward function the service scores with, under the model id clients ask for. */
export interface ScoringModel {
  id: string;
  score: TextReward;
}

export interface RewardScoringOptions {
  /** Most items per request (default 4,096): a larger one is refused with `RESOURCE_EXHAUSTED`. */
  maxItems?: number;
}

export class RewardScoring {
  private readonly maxItems: number;

  /** `model` answers requests that name it, or no model at all. */
  constructor(
    private readonly model: ScoringModel,
    options: RewardScoringOptions = {},
  ) {
    this.maxItems = options.maxItems ?? 4096;
  }

  get modelId(): string {
    return this.model.id;
  }

  async score(request: ScoreRequest, signal?: AbortSignal): Promise<ScoreResponse> {
    const wanted = request.model ?? '';
    if (wanted !== '' && wanted !== this.model.id) {
      throw new RewardServiceError(status.NOT_FOUND, `reward model "${wanted}" is not served here; this service scores with "${this.model.id}" (leave model empty for it)`);
    }
    const items = request.items ?? [];
    if (items.length > this.maxItems) {
      throw new RewardServiceError(status.RESOURCE_EXHAUSTED, `${items.length} items in one request; at most ${this.maxItems} (split the batch)`);
    }
    let scores: number[];
    try {
      scores = await this.model.score(
        items.map((item) => ({ prompt: item.prompt ?? '', response: item.response ?? '', category: item.category || undefined })),
        { signal },
      );
    } catch (error) {
      throw new RewardServiceError(status.INTERNAL, `scoring with ${this.model.id} failed: ${error instanceof Error ? error.message : String(error)}`);
    }
    return { scores, model: this.model.id };
  }
}
