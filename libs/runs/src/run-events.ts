import type { Redis } from 'ioredis';
import { RunEvent, type RunEventInput, TERMINAL_RUN_EVENTS } from '@xyp/contracts';

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
   * terminal event (run completed, failed or cancelled) or until `signal` aborts.
   * Uses its own connection, because XREAD BLOCK holds the connection while it waits.
   */
  async *follow(runId: string, afterId = '0-0', signal?: AbortSignal, blockMs = 1000): AsyncGenerator<RunEvent> {
    const reader = this.redis.duplicate();
    let cursor = afterId;
    try {
      while (!signal?.aborted) {
        const reply = (await reader.xread('COUNT', 200, 'BLOCK', blockMs, 'STREAMS', this.streamKey(runId), cursor)) as
          | [string, [string, string[]][]][]
          | null;
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

function parseEntry(id: string, fields: string[]): RunEvent {
  const index = fields.indexOf('event');
  return RunEvent.parse({ ...JSON.parse(fields[index + 1]), id });
}
