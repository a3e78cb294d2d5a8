import { randomBytes } from 'node:crypto';

/**
 * The gRPC token of one launch: unless the environment already configures accepted tokens
 * (`XYP_GRPC_TOKENS` or `XYP_GRPC_TOKENS_FILE`, with the caller's own `XYP_GRPC_TOKEN`), a fresh
 * random token that every service started accepts (`XYP_GRPC_TOKENS`) and sends to the others
 * (`XYP_GRPC_TOKEN`), and that the launcher's own client sends. Never printed or logged.
 */
export function launchGrpcEnv(env: Record<string, string | undefined> = process.env): Record<string, string> {
  if (env.XYP_GRPC_TOKENS || env.XYP_GRPC_TOKENS_FILE) return {};
  const token = randomBytes(32).toString('base64url');
  return { XYP_GRPC_TOKENS: token, XYP_GRPC_TOKEN: token };
}
