/**
 * Cross-caller batching in front of a reward model's `TextReward`: the items of concurrent requests
 * are queued, scored together in one call of the model's scorer, and the scores handed back to each
 * request in its own order.
 */
import { checkRewardScores, type RewardCallOptions, type TextReward, type TextRewardItem } from '@xyp/contracts';

export interface BatchingRewardOptions {
  /**
   * How long the first queued item waits for others before its batch is scored (default 5 ms). 0: the
   * batch is scored on the next timer turn of the event loop (requests of the same turn still join).
   */
  windowMs?: number;
  /** Most items per call of the scorer (default 64). A request with more is split over several batches. */
  maxBatch?: number;
}

export const DEFAULT_BATCH_WINDOW_MS = 5;
export const DEFAULT_MAX_BATCH = 64;

/** Calls of the scorer made so far and the items they scored (mean batch = items / calls). */
export interface BatchingStats {
  calls: number;
  items: number;
}

interface QueuedRequest {
  scores: number[];
  /** Items not scored yet (queued or in the running batch). */
  remaining: number;
  settled: boolean;
  resolve(scores: number[]): void;
  reject(reason: unknown): void;
  detach(): void;
}

interface QueuedItem {
  request: QueuedRequest;
  /** The item's index within its request. */
  index: number;
  item: TextRewardItem;
}

/**
 * Batches the items of concurrent callers for one scorer. Requests are queued FIFO; a batch is
 * scored when the queue holds `maxBatch` items or `windowMs` after its first item arrived, whichever
 * comes first, and batches run one at a time (what queues up while one runs goes into the next, on
 * the next turn of the event loop). Per request:
 * - its scores come back in its own order, exactly as the scorer gave them for its items;
 * - an aborted signal rejects it at once with the signal's reason; its queued items are dropped, and
 *   a running batch is aborted only when every request in it has gone (the others' scores are
 *   unaffected);
 * - the scorer sees a batch's items shortest first (less padding), its scores are put back in order;
 * - a scorer failure (or a wrong number of scores) rejects exactly the requests with items in that
 *   batch, with the scorer's error; their items still queued are dropped.
 */
const textLength = (item: TextRewardItem): number => item.prompt.length + item.response.length;

export class BatchingReward {
  readonly windowMs: number;
  readonly maxBatch: number;
  /** The batched `TextReward`: what callers score with. */
  readonly score: TextReward;
  private readonly queue: QueuedItem[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushPending = false;
  private running: { requests: Set<QueuedRequest>; abort: AbortController } | undefined;
  private idleWaiters: (() => void)[] = [];
  private readonly counts: BatchingStats = { calls: 0, items: 0 };

  constructor(
    private readonly scorer: TextReward,
    options: BatchingRewardOptions = {},
  ) {
    this.windowMs = Math.max(0, options.windowMs ?? DEFAULT_BATCH_WINDOW_MS);
    this.maxBatch = Math.max(1, Math.floor(options.maxBatch ?? DEFAULT_MAX_BATCH));
    this.score = (batch, call) => this.enqueue(batch, call);
  }

  get stats(): BatchingStats {
    return { ...this.counts };
  }

  /** Items waiting for a batch. */
  get queued(): number {
    return this.queue.length;
  }

  /** Resolves once nothing is queued and no batch runs (at once when idle). */
  whenIdle(): Promise<void> {
    if (this.idle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private idle(): boolean {
    return this.queue.length === 0 && this.running === undefined;
  }

  private enqueue(batch: readonly TextRewardItem[], call: RewardCallOptions = {}): Promise<number[]> {
    const signal = call.signal;
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (batch.length === 0) return Promise.resolve([]);
    return new Promise<number[]>((resolve, reject) => {
      const onAbort = (): void => this.fail(request, signal?.reason);
      const request: QueuedRequest = {
        scores: new Array<number>(batch.length),
        remaining: batch.length,
        settled: false,
        resolve,
        reject,
        detach: () => signal?.removeEventListener('abort', onAbort),
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      batch.forEach((item, index) => this.queue.push({ request, index, item }));
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.running || this.queue.length === 0) return;
    if (this.queue.length >= this.maxBatch) {
      // Full: score on the next microtask, not inside the caller's stack.
      if (!this.flushPending) {
        this.flushPending = true;
        queueMicrotask(() => {
          this.flushPending = false;
          this.flush();
        });
      }
      return;
    }
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, this.windowMs);
  }

  private flush(): void {
    if (this.running || this.queue.length === 0) return this.notifyIfIdle();
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.queue.splice(0, this.maxBatch);
    const requests = new Set(batch.map((queued) => queued.request));
    const abort = new AbortController();
    this.running = { requests, abort };
    this.counts.calls += 1;
    this.counts.items += batch.length;
    void this.run(batch, abort.signal).finally(() => {
      this.running = undefined;
      if (this.queue.length > 0) setImmediate(() => this.flush());
      else this.notifyIfIdle();
    });
  }

  /**
   * Scores a batch with its items in order of length (prompt plus response, stable), the scores put
   * back in the batch's order: the scorer pads each forward pass to its longest sequence, so items of
   * like length together waste the least (callers' items are of any length).
   */
  private async run(batch: QueuedItem[], signal: AbortSignal): Promise<void> {
    const order = batch.map((_, i) => i).sort((a, b) => textLength(batch[a].item) - textLength(batch[b].item) || a - b);
    let scores: number[];
    try {
      const sorted = checkRewardScores(await this.scorer(order.map((i) => batch[i].item), { signal }), batch.length, 'reward scorer');
      scores = new Array<number>(batch.length);
      order.forEach((i, k) => (scores[i] = sorted[k]));
    } catch (error) {
      for (const queued of batch) this.fail(queued.request, error);
      return;
    }
    batch.forEach((queued, i) => {
      const request = queued.request;
      if (request.settled) return;
      request.scores[queued.index] = scores[i];
      request.remaining -= 1;
      if (request.remaining === 0) {
        request.settled = true;
        request.detach();
        request.resolve(request.scores);
      }
    });
  }

  /** Rejects a request, drops its queued items and aborts the running batch if no one waits for it any more. */
  private fail(request: QueuedRequest, reason: unknown): void {
    if (request.settled) return;
    request.settled = true;
    request.detach();
    for (let i = this.queue.length - 1; i >= 0; i--) if (this.queue[i].request === request) this.queue.splice(i, 1);
    request.reject(reason);
    const running = this.running;
    if (running && [...running.requests].every((r) => r.settled) && !running.abort.signal.aborted) running.abort.abort(reason);
    if (this.queue.length === 0 && this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.notifyIfIdle();
  }

  private notifyIfIdle(): void {
    if (!this.idle()) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
