/**
 * `RewardService` without the transport: requests in, responses out, every refusal a
 * `RewardServiceError` with the gRPC status to answer with. Scoring goes through the models'
 * registry (`RewardModels`): each call holds the model it was admitted on until it ends, and its
 * items are batched with other callers'. The reward app's controller only adds the call's deadline
 * (an AbortSignal) and maps the error to an `RpcException`.
 */
import { status } from '@grpc/grpc-js';
import type { TextRewardItem } from '@xyp/contracts';
import {
  Preference,
  type CompareRequest,
  type CompareResponse,
  type ListModelsResponse,
  type LoadModelRequest,
  type LoadModelResponse,
  type ScoreItem,
  type ScoreRequest,
  type ScoreResponse,
  type UnloadModelRequest,
  type UnloadModelResponse,
} from '@xyp/grpc';
import type { RewardModelLease, RewardModels } from './reward-models';
import { RewardServiceError } from './reward-service-error';

export const DEFAULT_MAX_ITEMS = 4096;
/** Prompt plus response, UTF-8 bytes, per item: 64 KiB. */
export const DEFAULT_MAX_ITEM_BYTES = 64 * 1024;

export interface RewardScoringOptions {
  /** Most items per request (default 4,096): a larger one is refused with `RESOURCE_EXHAUSTED`. */
  maxItems?: number;
  /** Most UTF-8 bytes of prompt plus response per item (default 64 KiB): more is `INVALID_ARGUMENT`. */
  maxItemBytes?: number;
}

export interface ScoreItemLimits {
  maxItemBytes?: number;
}

const formatBytes = (n: number): string => (n % 1024 === 0 ? `${n.toLocaleString('en-US')} bytes (${n / 1024} KiB)` : `${n.toLocaleString('en-US')} bytes`);

/**
 * The items of a request checked one by one, the first bad one refused with `INVALID_ARGUMENT` naming
 * it (`label(i)`, default `item i`) and the limit: prompt and response over `maxItemBytes` of UTF-8.
 * An empty response is scored (as the in-process scorer does: a PPO rollout can decode to no text). What `Score` and `Compare` check, and `xyp reward score` before scoring.
 */
export function checkScoreItems(items: readonly Partial<ScoreItem>[], limits: ScoreItemLimits = {}, label: (index: number) => string = (i) => `item ${i}`): TextRewardItem[] {
  const maxBytes = limits.maxItemBytes ?? DEFAULT_MAX_ITEM_BYTES;
  return items.map((item, i) => {
    const prompt = item.prompt ?? '';
    const response = item.response ?? '';
    const bytes = Buffer.byteLength(prompt, 'utf8') + Buffer.byteLength(response, 'utf8');
    if (bytes > maxBytes) {
      throw new RewardServiceError(status.INVALID_ARGUMENT, `${label(i)}: prompt and response are ${bytes.toLocaleString('en-US')} bytes of UTF-8; at most ${formatBytes(maxBytes)} per item`);
    }
    return { prompt, response, category: item.category || undefined };
  });
}

/** `Preference` of two scores: the higher one; a tie (margin 0) is A. */
export function preferenceOf(scoreA: number, scoreB: number): Preference {
  return scoreA >= scoreB ? Preference.PREFERENCE_A : Preference.PREFERENCE_B;
}

export class RewardScoring {
  private readonly maxItems: number;
  private readonly limits: ScoreItemLimits;

  constructor(
    readonly models: RewardModels,
    options: RewardScoringOptions = {},
  ) {
    this.maxItems = options.maxItems ?? DEFAULT_MAX_ITEMS;
    this.limits = { maxItemBytes: options.maxItemBytes ?? DEFAULT_MAX_ITEM_BYTES };
  }

  /** The current model's ID ('' when none is loaded). */
  get modelId(): string {
    return this.models.current ?? '';
  }

  /** One score per item, in order, by the model asked for (empty: the current one). */
  async score(request: Partial<ScoreRequest>, signal?: AbortSignal): Promise<ScoreResponse> {
    return this.withModel(request.model ?? '', signal, async (lease) => {
      const items = request.items ?? [];
      if (items.length > this.maxItems) {
        throw new RewardServiceError(status.RESOURCE_EXHAUSTED, `${items.length} items in one request; at most ${this.maxItems} (split the batch)`);
      }
      const checked = checkScoreItems(items, this.limits);
      return { scores: await this.scoreWith(lease, checked, signal), model: lease.id };
    });
  }

  /** Both responses scored in one batch; `preferred` is the higher, `margin` = score_a − score_b. */
  async compare(request: Partial<CompareRequest>, signal?: AbortSignal): Promise<CompareResponse> {
    return this.withModel(request.model ?? '', signal, async (lease) => {
      const prompt = request.prompt ?? '';
      const category = request.category ?? '';
      const pair = [
        { prompt, response: request.responseA ?? '', category },
        { prompt, response: request.responseB ?? '', category },
      ];
      const checked = checkScoreItems(pair, this.limits, (i) => (i === 0 ? 'response_a' : 'response_b'));
      const [scoreA, scoreB] = await this.scoreWith(lease, checked, signal);
      return { preferred: preferenceOf(scoreA, scoreB), margin: scoreA - scoreB, scoreA, scoreB, model: lease.id };
    });
  }

  async loadModel(request: Partial<LoadModelRequest>): Promise<LoadModelResponse> {
    const { loaded, previous } = await this.models.load(request.model ?? '', { makeCurrent: request.makeCurrent === true, keepPrevious: request.keepPrevious === true });
    return { loaded, previous: previous ?? '' };
  }

  unloadModel(request: Partial<UnloadModelRequest>): UnloadModelResponse {
    return { model: this.models.unload(request.model ?? '') };
  }

  listModels(): ListModelsResponse {
    return this.models.list();
  }

  private async withModel<T>(model: string, signal: AbortSignal | undefined, work: (lease: RewardModelLease) => Promise<T>): Promise<T> {
    if (signal?.aborted) throw abortError(signal);
    const lease = this.models.acquire(model);
    try {
      return await work(lease);
    } finally {
      lease.release();
    }
  }

  private async scoreWith(lease: RewardModelLease, items: TextRewardItem[], signal: AbortSignal | undefined): Promise<number[]> {
    try {
      return await lease.score(items, { signal });
    } catch (error) {
      if (signal?.aborted) throw abortError(signal);
      throw new RewardServiceError(status.INTERNAL, `scoring with ${lease.id} failed: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
}

/** The error an aborted call ends with: the signal's reason when it is a `RewardServiceError`, else `CANCELLED`. */
function abortError(signal: AbortSignal): RewardServiceError {
  const reason: unknown = signal.reason;
  if (reason instanceof RewardServiceError) return reason;
  return new RewardServiceError(status.CANCELLED, `the call was cancelled: ${reason instanceof Error ? reason.message : String(reason)}`);
}
