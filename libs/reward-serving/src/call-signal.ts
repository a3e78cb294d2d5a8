/**
 * The AbortSignal of a gRPC call on the server: aborted when the call's deadline passes
 * (`DEADLINE_EXCEEDED`) or the client cancels it (`CANCELLED`), with a `RewardServiceError` as the
 * reason, so that the work of a call nobody waits for any more stops and its queued items are dropped.
 */
import { status, type Deadline } from '@grpc/grpc-js';
import { RewardServiceError } from './reward-service-error';

/** What a grpc-js server call offers (`ServerUnaryCall`); NestJS passes it as a handler's third argument. */
export interface ServerCallLike {
  getDeadline?(): Deadline;
  on?(event: 'cancelled', listener: () => void): unknown;
  off?(event: 'cancelled', listener: () => void): unknown;
}

/** setTimeout's limit (2^31 − 1 ms, ~24.8 days); a deadline further off is left to grpc-js. */
const MAX_TIMER_MS = 2 ** 31 - 1;

function deadlineMs(call: ServerCallLike | undefined): number {
  const deadline = call?.getDeadline?.();
  if (deadline === undefined) return Infinity;
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  return Number.isFinite(at) ? at : Infinity;
}

/**
 * A signal for the call's work and `done`, which stops watching (call it when the call has been
 * answered). Without a call (in-process use), a signal that never aborts.
 */
export function callSignal(call: ServerCallLike | undefined, now: () => number = Date.now): { signal: AbortSignal; done(): void } {
  const controller = new AbortController();
  const arrived = now();
  const deadline = deadlineMs(call);
  const expire = (): void => {
    controller.abort(new RewardServiceError(status.DEADLINE_EXCEEDED, `the call's deadline (${deadline - arrived} ms after it arrived) passed before it was answered`));
  };
  let timer: NodeJS.Timeout | undefined;
  if (deadline !== Infinity) {
    const left = deadline - arrived;
    if (left <= 0) expire();
    else if (left <= MAX_TIMER_MS) timer = setTimeout(expire, left);
  }
  // grpc-js cancels the call itself at the deadline too; whichever comes first names the deadline.
  const onCancelled = (): void => {
    if (now() >= deadline) expire();
    else controller.abort(new RewardServiceError(status.CANCELLED, 'the client cancelled the call'));
  };
  call?.on?.('cancelled', onCancelled);
  return {
    signal: controller.signal,
    done: () => {
      if (timer) clearTimeout(timer);
      call?.off?.('cancelled', onCancelled);
    },
  };
}
