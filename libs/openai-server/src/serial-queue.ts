/**
 * Runs jobs one at a time in arrival order. The engine's model is one set of TF.js variables and a
 * generation holds the thread, so concurrent requests wait here instead of interleaving.
 */
export class QueueFullError extends Error {
  constructor(readonly limit: number) {
    super(`the server is busy: ${limit} requests are already waiting`);
    this.name = 'QueueFullError';
  }
}

export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();
  private waiting = 0;

  /** `maxPending`: jobs allowed to wait or run at once; one more is refused with `QueueFullError`. */
  constructor(readonly maxPending = 64) {}

  get pending(): number {
    return this.waiting;
  }

  run<T>(job: () => T | Promise<T>): Promise<T> {
    if (this.waiting >= this.maxPending) return Promise.reject(new QueueFullError(this.maxPending));
    this.waiting += 1;
    const result = this.tail.then(async () => {
      // Let the event loop serve sockets (new requests, health checks) between two generations.
      await new Promise<void>((resolve) => setImmediate(resolve));
      return job();
    });
    const settle = (): void => {
      this.waiting -= 1;
    };
    this.tail = result.then(settle, settle);
    return result;
  }
}
