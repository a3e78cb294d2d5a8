import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError, envInt } from './load-config';

/** The largest gRPC message a server or client of the platform accepts unless `XYP_GRPC_MAX_MESSAGE_BYTES` says otherwise. */
export const DEFAULT_GRPC_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

/** Why a bearer token is unusable, or undefined when it is fine. Never says what the token is. */
export function grpcTokenProblem(token: string): string | undefined {
  if (token.length < 16) return 'must be at least 16 characters';
  if (token.length > 4096) return 'must be at most 4096 characters';
  if (/\s/.test(token)) return 'must not contain whitespace';
  // A metadata value is printable ASCII; a comma separates tokens in XYP_GRPC_TOKENS.
  if (!/^[\x21-\x7e]+$/.test(token)) return 'must be printable ASCII (it travels as gRPC metadata)';
  if (token.includes(',')) return 'must not contain a comma';
  return undefined;
}

/** One bearer token (`XYP_GRPC_TOKEN`). */
export const grpcToken = () =>
  z.string().superRefine((token, context) => {
    const problem = grpcTokenProblem(token);
    if (problem) context.addIssue({ code: 'custom', message: problem });
  });

/** Comma-separated bearer tokens (`XYP_GRPC_TOKENS`), spaces around the commas allowed. */
export const grpcTokenList = () =>
  z.string().transform((value, context) => {
    const tokens = value.split(',').map((token) => token.trim());
    for (const [index, token] of tokens.entries()) {
      const problem = token === '' ? 'is empty' : grpcTokenProblem(token);
      if (problem) {
        context.addIssue({ code: 'custom', message: `token ${index + 1} of ${tokens.length}: ${problem}` });
        return z.NEVER;
      }
    }
    return tokens;
  });

/**
 * gRPC security, shared by every service (servers and the clients inside them) and the CLI:
 * bearer tokens, TLS (mutual when a CA is set) and the message size limit.
 */
export const GrpcEnv = z.object({
  /** Tokens a server accepts (`authorization: Bearer <token>`); unset with `XYP_GRPC_TOKENS_FILE`: servers are open. */
  XYP_GRPC_TOKENS: grpcTokenList().optional(),
  /** A mounted file of accepted tokens, one per line (blank lines and `#` comments skipped); re-read when it changes. */
  XYP_GRPC_TOKENS_FILE: z.string().min(1).optional(),
  /** The one token a client sends (the CLI, and a service calling another); `XYP_GRPC_TOKEN_FILE` works too. */
  XYP_GRPC_TOKEN: grpcToken().optional(),
  /** PEM certificate chain: a server's own; with `XYP_GRPC_TLS_KEY`, a client's certificate too. */
  XYP_GRPC_TLS_CERT: z.string().min(1).optional(),
  XYP_GRPC_TLS_KEY: z.string().min(1).optional(),
  /** PEM CA: a server requires client certificates signed by it; a client verifies the server with it. */
  XYP_GRPC_TLS_CA: z.string().min(1).optional(),
  /** Largest message a gRPC server receives (and a client sends or receives); RESOURCE_EXHAUSTED above it. */
  XYP_GRPC_MAX_MESSAGE_BYTES: envInt(64 * 1024, 2_147_483_647).default(DEFAULT_GRPC_MAX_MESSAGE_BYTES),
});
export type GrpcEnv = z.output<typeof GrpcEnv>;

/** TLS material, PEM bytes read from the configured files. */
export interface GrpcTlsFiles {
  cert?: Buffer;
  key?: Buffer;
  ca?: Buffer;
}

/** How a gRPC server of this process authenticates callers (see `grpcServerOptions` in `@xyp/grpc`). */
export interface GrpcServerSecurity {
  /** Accepted bearer tokens; none (and no file): the server is open. */
  tokens?: readonly string[];
  /** The file the tokens were read from, watched for changes. */
  tokensFile?: string;
  /**
   * Server certificate and key; with `ca`, client certificates are required. `files`: where they
   * were read from, watched so that a renewed certificate is served without a restart.
   */
  tls?: { cert: Buffer; key: Buffer; ca?: Buffer; files?: { cert: string; key: string; ca?: string } };
  maxMessageBytes?: number;
}

/** What a client of this process sends and trusts (see `createPipelineClient` in `@xyp/grpc`). */
export interface GrpcClientSecurity {
  token?: string;
  /** Set: the channel is TLS (`ca` verifies the server, else the system roots; `cert`+`key` is the client certificate). */
  tls?: GrpcTlsFiles;
  maxMessageBytes?: number;
}

function readPem(variable: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new ConfigError(variable, `cannot read the file (${(error as NodeJS.ErrnoException).code ?? String(error)})`, path);
  }
}

/**
 * The tokens of an `XYP_GRPC_TOKENS_FILE`: one per line, blank lines and `#` comments skipped,
 * each checked like `XYP_GRPC_TOKENS` (errors name the line, never its token). A file with no
 * token is an error: a server configured for tokens never falls back to open.
 */
export function readGrpcTokensFile(path: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError('XYP_GRPC_TOKENS_FILE', `cannot read the file (${(error as NodeJS.ErrnoException).code ?? String(error)})`, path);
  }
  const tokens: string[] = [];
  for (const [index, raw] of text.split('\n').entries()) {
    const line = raw.replace(/\r$/, '').trim();
    if (line === '' || line.startsWith('#')) continue;
    const problem = grpcTokenProblem(line);
    if (problem) throw new ConfigError('XYP_GRPC_TOKENS_FILE', `line ${index + 1}: the token ${problem}`, path);
    tokens.push(line);
  }
  if (tokens.length === 0) throw new ConfigError('XYP_GRPC_TOKENS_FILE', 'the file holds no token', path);
  return tokens;
}

/** A server's security from the validated environment; files are read (and checked) now. */
export function grpcServerSecurity(env: GrpcEnv): GrpcServerSecurity {
  if (env.XYP_GRPC_TOKENS !== undefined && env.XYP_GRPC_TOKENS_FILE !== undefined) {
    throw new ConfigError('XYP_GRPC_TOKENS_FILE', 'set either XYP_GRPC_TOKENS or XYP_GRPC_TOKENS_FILE, not both', env.XYP_GRPC_TOKENS_FILE);
  }
  const security: GrpcServerSecurity = { maxMessageBytes: env.XYP_GRPC_MAX_MESSAGE_BYTES };
  if (env.XYP_GRPC_TOKENS !== undefined) security.tokens = env.XYP_GRPC_TOKENS;
  if (env.XYP_GRPC_TOKENS_FILE !== undefined) {
    security.tokens = readGrpcTokensFile(env.XYP_GRPC_TOKENS_FILE);
    security.tokensFile = env.XYP_GRPC_TOKENS_FILE;
  }
  const { XYP_GRPC_TLS_CERT: cert, XYP_GRPC_TLS_KEY: key, XYP_GRPC_TLS_CA: ca } = env;
  if (cert !== undefined && key === undefined) throw new ConfigError('XYP_GRPC_TLS_KEY', 'required with XYP_GRPC_TLS_CERT (the certificate\'s private key)', undefined);
  if (key !== undefined && cert === undefined) throw new ConfigError('XYP_GRPC_TLS_CERT', 'required with XYP_GRPC_TLS_KEY (the key\'s certificate chain)', undefined);
  if (ca !== undefined && cert === undefined) {
    throw new ConfigError('XYP_GRPC_TLS_CERT', 'required with XYP_GRPC_TLS_CA: a server asking for client certificates needs its own', undefined);
  }
  if (cert !== undefined && key !== undefined) {
    security.tls = {
      cert: readPem('XYP_GRPC_TLS_CERT', cert),
      key: readPem('XYP_GRPC_TLS_KEY', key),
      ...(ca === undefined ? {} : { ca: readPem('XYP_GRPC_TLS_CA', ca) }),
      files: { cert, key, ...(ca === undefined ? {} : { ca }) },
    };
  }
  return security;
}

/** A client's security from the validated environment: the token it sends, TLS when any TLS file is set. */
export function grpcClientSecurity(env: GrpcEnv): GrpcClientSecurity {
  const { XYP_GRPC_TLS_CERT: cert, XYP_GRPC_TLS_KEY: key, XYP_GRPC_TLS_CA: ca } = env;
  if ((cert === undefined) !== (key === undefined)) {
    throw new ConfigError(cert === undefined ? 'XYP_GRPC_TLS_CERT' : 'XYP_GRPC_TLS_KEY', 'XYP_GRPC_TLS_CERT and XYP_GRPC_TLS_KEY go together', undefined);
  }
  const security: GrpcClientSecurity = { maxMessageBytes: env.XYP_GRPC_MAX_MESSAGE_BYTES };
  if (env.XYP_GRPC_TOKEN !== undefined) security.token = env.XYP_GRPC_TOKEN;
  if (cert !== undefined || ca !== undefined) {
    security.tls = {
      ...(ca === undefined ? {} : { ca: readPem('XYP_GRPC_TLS_CA', ca) }),
      ...(cert === undefined || key === undefined ? {} : { cert: readPem('XYP_GRPC_TLS_CERT', cert), key: readPem('XYP_GRPC_TLS_KEY', key) }),
    };
  }
  return security;
}
