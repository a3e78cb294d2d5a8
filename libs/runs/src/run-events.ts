import type { Redis } from 'ioredis';
import { RunEvent, type RunEventInput, TERMINAL_RUN_EVENTS } from '@xyp/contracts';
import { REDIS_OUTAGE_LIMIT_MS, RedisUnreachableError, keepReconnecting, redisAddress } from './redis-outage';

/** Events kept per run; older ones are trimmed (approximately, as XADD MAXLEN ~ does). */
const MAX_EVENTS_PER_RUN = 10_000;

/**
 * A run's events live in one Redis stream, `<prefix>:run:<runId>:events`. Every
 * service appends to it; a watcher reads from the start (or after an id it already
 * has), so a late or reconnecting watcher misses nothing.
 */
export class RunEvents {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private streamKey(runId: string): string {
    return `${this.prefix}:run:${runId}:events`;
  }

  async publish(input: Omit<RunEventInput, 'id' | 'at'> & { at?: string }): Promise<RunEvent> {
    const event = RunEvent.parse({ ...input, id: '', at: input.at ?? new Date().toISOString() });
    const { id: _omitted, ...body } = event;
    const id = await this.redis.xadd(
      this.streamKey(event.runId),
      'MAXLEN',
      '~',
      String(MAX_EVENTS_PER_RUN),
      '*',
      'event',
      JSON.stringify(body),
    );
    return { ...event, id: id ?? '' };
  }

  /** Events after `afterId`, oldest first, without waiting. */
  async history(runId: string, afterId = '0-0', count = 1000): Promise<RunEvent[]> {
    const entries = await this.redis.xrange(this.streamKey(runId), `(${afterId}`, '+', 'COUNT', count);
    return entries.map(([id, fields]) => parseEntry(id, fields));
  }

  /**
   * Yields the run's events after `afterId` and then new ones as they arrive, until a
   * terminal event (run completed, failed or cancelled), until `signal` aborts, or until
   * `check` throws. Events come in stream order and none twice: the read resumes from the
   * last id it yielded.
   *
   * XREAD BLOCK holds its connection while it waits, so the reads use a connection of their
   * own, one that rides through a Redis outage: no per-command retry limit
   * (`maxRetriesPerRequest: null`, the shared client's limit would fail the read after a
   * few reconnects) and a reconnect strategy that never gives up. A read that gets no answer
   * for `unreachableAfterMs` past its BLOCK time (Redis down or frozen) ends the follow with
   * {@link RedisUnreachableError}, so a watcher never hangs on a Redis that is gone.
   */
  async *follow(runId: string, afterId = '0-0', options: FollowOptions = {}): AsyncGenerator<RunEvent> {
    const { signal, blockMs = 1000, check, checkEveryMs = 2000, unreachableAfterMs = REDIS_OUTAGE_LIMIT_MS } = options;
    const reader = this.redis.duplicate({ maxRetriesPerRequest: null, retryStrategy: keepReconnecting, enableOfflineQueue: true, lazyConnect: false });
    // Reconnects are expected here; a Redis that stays away ends the follow through the limit below.
    reader.on('error', () => undefined);
    const address = redisAddress(this.redis);
    let cursor = afterId;
    let checkedAt = Date.now();
    try {
      while (!signal?.aborted) {
        if (check && Date.now() - checkedAt >= checkEveryMs) {
          await check();
          checkedAt = Date.now();
        }
        const reply = await answerOf(
          reader.xread('COUNT', 200, 'BLOCK', blockMs, 'STREAMS', this.streamKey(runId), cursor) as Promise<XReadReply | null>,
          blockMs + unreachableAfterMs,
          address,
          signal,
        );
        if (reply === ABORTED) return;
        if (!reply) continue;
        for (const [id, fields] of reply[0][1]) {
          cursor = id;
          const event = parseEntry(id, fields);
          yield event;
          if (TERMINAL_RUN_EVENTS.has(event.type)) return;
        }
      }
    } finally {
      reader.disconnect();
    }
  }
}

export interface FollowOptions {
  /** Ends the follow (without an error) when aborted, even while Redis is away. */
  signal?: AbortSignal;
  /** How long one XREAD waits for new events (default 1 s). */
  blockMs?: number;
  /**
   * Called between reads, at most every `checkEveryMs` (default 2 s): throws to end the follow,
   * e.g. when the run's record vanished because Redis restarted empty.
   */
  check?: () => Promise<void>;
  checkEveryMs?: number;
  /** How long a read may go unanswered past its BLOCK time (default {@link REDIS_OUTAGE_LIMIT_MS}). */
  unreachableAfterMs?: number;
}

type XReadReply = [string, [string, string[]][]][];

const ABORTED = Symbol('aborted');

/** The read's answer, ABORTED once `signal` aborts, or RedisUnreachableError after `limitMs`. */
function answerOf<T>(read: Promise<T>, limitMs: number, address: string, signal?: AbortSignal): Promise<T | typeof ABORTED> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => settle(() => reject(new RedisUnreachableError(address, limitMs))), limitMs);
    const onAbort = () => settle(() => resolve(ABORTED));
    signal?.addEventListener('abort', onAbort, { once: true });
    read.then(
      (value) => settle(() => resolve(value)),
      (error: unknown) => settle(() => reject(error)),
    );
    function settle(finish: () => void) {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      finish();
    }
  });
}

function parseEntry(id: string, fields: string[]): RunEvent {
  const index = fields.indexOf('event');
  return RunEvent.parse({ ...JSON.parse(fields[index + 1]), id });
}
