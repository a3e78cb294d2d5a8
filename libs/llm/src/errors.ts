/**
 * A failed call to an OpenAI-compatible endpoint: the base class of the gateway's
 * `LlmGatewayError`. `status` is the last HTTP status, undefined when no response came (timeout,
 * refused connection).
 */
export class EndpointError extends Error {
  constructor(
    message: string,
    readonly endpoint: string,
    readonly status: number | undefined,
    readonly attempts: number,
  ) {
    super(message);
    this.name = 'EndpointError';
  }
}
