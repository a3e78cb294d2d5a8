/**
 * A refused or failed `RewardService` call, with the gRPC status to answer with. Everything below the
 * controller throws this; the controller only maps it to an `RpcException`.
 */
import { status } from '@grpc/grpc-js';

export class RewardServiceError extends Error {
  override readonly name = 'RewardServiceError';
  constructor(
    readonly code: status,
    message: string,
  ) {
    super(message);
  }
}
