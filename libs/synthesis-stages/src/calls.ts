/** What the generators share around a gateway call: the request, and telling an item's failure from the run's. */
import type { ChatTurn } from '@xyp/contracts';
import type { GatewayChatRequest } from '@xyp/llm';
import type { SamplingConfig } from './config';
import { itemFailureDetail } from './driver';

/** The request of `messages` with the sampling parameters (undefined ones left out, so cache keys do not change with them). */
export function chatRequest(messages: readonly ChatTurn[], sampling: SamplingConfig, extra: Partial<GatewayChatRequest> = {}): GatewayChatRequest {
  return {
    messages: messages.map((m) => ({ role: m.role, content: m.content })),
    temperature: sampling.temperature,
    max_tokens: sampling.max_tokens,
    ...(sampling.top_p !== undefined ? { top_p: sampling.top_p } : {}),
    ...(sampling.seed !== undefined ? { seed: sampling.seed } : {}),
    ...extra,
  };
}

export type Attempted<T> = { ok: true; value: T } | { ok: false; detail: string };

/**
 * `call()`, with a failure that is the item's own (`itemFailureDetail`: the endpoint refused the
 * request for good) as `{ok: false, detail}`; any other failure is the run's and is thrown.
 */
export async function attempt<T>(call: () => Promise<T>): Promise<Attempted<T>> {
  try {
    return { ok: true, value: await call() };
  } catch (error) {
    const detail = itemFailureDetail(error);
    if (detail === undefined) throw error;
    return { ok: false, detail };
  }
}

/** Increments `stats[key]`. */
export function count(stats: Record<string, number>, key: string, by = 1): void {
  stats[key] = (stats[key] ?? 0) + by;
}

/** The distinct names, in first-seen order. */
export function distinct(names: readonly string[]): string[] {
  return [...new Set(names)];
}
