/**
 * Bearer-token authentication of every gRPC server the platform builds, as a grpc-js server
 * interceptor: it sees each call's metadata before any handler (NestJS's unary and streaming
 * handlers alike, health and reflection too), so one check covers every service on the server.
 * The token travels as `authorization: Bearer <token>` metadata; the client side adds it with a
 * client interceptor (plaintext channels cannot carry call credentials in grpc-js).
 */
import { timingSafeEqual } from 'node:crypto';
import { unwatchFile, watchFile } from 'node:fs';
import {
  InterceptingCall,
  ResponderBuilder,
  ServerInterceptingCall,
  ServerListenerBuilder,
  status,
  type Interceptor,
  type ServerInterceptor,
} from '@grpc/grpc-js';
import { readGrpcTokensFile, secretDigest } from '@xyp/config';

/** Services a probe or a tool reaches without a token: health checking and server reflection. */
export const OPEN_GRPC_SERVICES: readonly string[] = ['grpc.health.v1.Health', 'grpc.reflection.v1.ServerReflection', 'grpc.reflection.v1alpha.ServerReflection'];

export const AUTHORIZATION_METADATA = 'authorization';

/**
 * The tokens a server accepts. A presented token is compared with every accepted one in constant
 * time (SHA-256 digests of equal length through `timingSafeEqual`, no early exit), so neither a
 * token's bytes nor its length nor which entry matched shows in the timing.
 */
export class AcceptedTokens {
  private digests: Buffer[] = [];

  constructor(tokens: readonly string[]) {
    this.replace(tokens);
  }

  get size(): number {
    return this.digests.length;
  }

  /** Swaps the accepted set at once (a rotated token file). */
  replace(tokens: readonly string[]): void {
    this.digests = tokens.map((token) => secretDigest(token));
  }

  accepts(presented: string): boolean {
    const given = secretDigest(presented);
    let matched = false;
    for (const accepted of this.digests) matched = timingSafeEqual(given, accepted) || matched;
    return matched;
  }
}

/**
 * Why a call's metadata is refused, or undefined when its bearer token is accepted. The reason
 * says what is missing or wrong, never what was presented.
 */
export function bearerProblem(values: readonly (string | Buffer)[], tokens: AcceptedTokens): string | undefined {
  if (values.length === 0) return 'missing "authorization: Bearer <token>" metadata: this server requires a gRPC token (clients send XYP_GRPC_TOKEN)';
  if (values.length > 1) return 'more than one "authorization" metadata entry';
  const value = String(values[0]);
  const match = /^Bearer +(\S+) *$/i.exec(value);
  if (!match) return 'the "authorization" metadata is not "Bearer <token>"';
  if (!tokens.accepts(match[1])) return 'the bearer token in the "authorization" metadata is not accepted by this server';
  return undefined;
}

/** The service of a method path `/package.Service/Method`. */
function serviceOf(path: string): string {
  return path.split('/')[1] ?? '';
}

/**
 * A server interceptor that ends every call without an accepted bearer token with
 * `UNAUTHENTICATED` before its handler runs; calls to `open` services (health, reflection) pass.
 */
export function bearerTokenInterceptor(tokens: AcceptedTokens, open: readonly string[] = OPEN_GRPC_SERVICES): ServerInterceptor {
  return (method, call) => {
    if (open.includes(serviceOf(method.path))) return new ServerInterceptingCall(call);
    const listener = new ServerListenerBuilder()
      .withOnReceiveMetadata((metadata, next) => {
        const problem = bearerProblem(metadata.get(AUTHORIZATION_METADATA), tokens);
        if (problem === undefined) next(metadata);
        else call.sendStatus({ code: status.UNAUTHENTICATED, details: `${method.path}: ${problem}` });
      })
      .build();
    return new ServerInterceptingCall(call, new ResponderBuilder().withStart((next) => next(listener)).build());
  };
}

/**
 * Re-reads a token file when it changes (stat polling: a Kubernetes secret volume swaps a symlink,
 * which file events miss). A file that became unreadable or invalid keeps the tokens it had, and
 * says so through `warn`. Returns the function that stops watching.
 */
export function watchTokensFile(path: string, tokens: AcceptedTokens, warn: (line: string) => void, intervalMs = 2000): () => void {
  const onChange = (): void => {
    try {
      tokens.replace(readGrpcTokensFile(path));
    } catch (error) {
      warn(`${(error as Error).message}; keeping the ${tokens.size} token(s) read before`);
    }
  };
  watchFile(path, { interval: intervalMs, persistent: false }, onChange);
  return () => unwatchFile(path, onChange);
}

/** A client interceptor that sends `authorization: Bearer <token>` on every call (unless the caller set one). */
export function bearerTokenClientInterceptor(token: string): Interceptor {
  return (options, nextCall) =>
    new InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        if (metadata.get(AUTHORIZATION_METADATA).length === 0) metadata.set(AUTHORIZATION_METADATA, `Bearer ${token}`);
        next(metadata, listener);
      },
    });
}
