import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, GrpcEnv, PlatformEnv, SERVICE_ENVS, grpcClientSecurity, grpcServerSecurity, loadConfig, readGrpcTokensFile } from './index';

const dir = mkdtempSync(join(tmpdir(), 'xyp-grpc-env-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string): string => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};
const message = (run: () => unknown): string => {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('expected a ConfigError');
};

const GOOD = 'tok-aaaaaaaaaaaaaaaa';
const OTHER = 'tok-bbbbbbbbbbbbbbbb';

describe('GrpcEnv: bearer tokens', () => {
  it('is open by default: no tokens, no TLS, a 64 MiB message limit', () => {
    const env = loadConfig(GrpcEnv, {});
    expect(grpcServerSecurity(env)).toEqual({ maxMessageBytes: 64 * 1024 * 1024 });
    expect(grpcClientSecurity(env)).toEqual({ maxMessageBytes: 64 * 1024 * 1024 });
  });

  it('accepts comma-separated tokens (spaces around commas allowed) and the one token a client sends', () => {
    const env = loadConfig(GrpcEnv, { XYP_GRPC_TOKENS: `${GOOD}, ${OTHER}`, XYP_GRPC_TOKEN: GOOD });
    expect(grpcServerSecurity(env).tokens).toEqual([GOOD, OTHER]);
    expect(grpcClientSecurity(env).token).toBe(GOOD);
  });

  it('refuses a short token or one with whitespace in one line naming the variable, never showing the token', () => {
    const short = message(() => loadConfig(GrpcEnv, { XYP_GRPC_TOKENS: `${GOOD},short-secret` }));
    expect(short).toBe('invalid configuration: XYP_GRPC_TOKENS: token 2 of 2: must be at least 16 characters (got a value of 33 characters, not shown)');
    const spaced = message(() => loadConfig(GrpcEnv, { XYP_GRPC_TOKEN: 'a token with spaces inside' }));
    expect(spaced).toBe('invalid configuration: XYP_GRPC_TOKEN: must not contain whitespace (got a value of 26 characters, not shown)');
    expect(spaced.split('\n')).toHaveLength(1);
    expect(message(() => loadConfig(GrpcEnv, { XYP_GRPC_TOKENS: `${GOOD},,${OTHER}` }))).toContain('token 2 of 3: is empty');
    expect(message(() => loadConfig(GrpcEnv, { XYP_GRPC_TOKEN: 'tökenwithumlautsxx' }))).toContain('must be printable ASCII');
  });

  it('reads a token file, one per line, skipping blanks and comments, and names the line of a bad one', () => {
    const path = file('tokens', `# rotated weekly\n${GOOD}\n\n${OTHER}\r\n`);
    const security = grpcServerSecurity(loadConfig(GrpcEnv, { XYP_GRPC_TOKENS_FILE: path }));
    expect(security).toMatchObject({ tokens: [GOOD, OTHER], tokensFile: path });
    const bad = file('bad-tokens', `${GOOD}\nshort-secret\n`);
    expect(message(() => readGrpcTokensFile(bad))).toBe(`invalid configuration: XYP_GRPC_TOKENS_FILE: line 2: the token must be at least 16 characters (got ${JSON.stringify(bad)})`);
    expect(message(() => readGrpcTokensFile(file('empty', '# nothing\n')))).toContain('the file holds no token');
    expect(message(() => readGrpcTokensFile(join(dir, 'missing')))).toContain('XYP_GRPC_TOKENS_FILE: cannot read the file (ENOENT)');
    expect(message(() => grpcServerSecurity(loadConfig(GrpcEnv, { XYP_GRPC_TOKENS: GOOD, XYP_GRPC_TOKENS_FILE: path })))).toContain(
      'set either XYP_GRPC_TOKENS or XYP_GRPC_TOKENS_FILE, not both',
    );
  });

  it('reads the client token from XYP_GRPC_TOKEN_FILE, and refuses both set', () => {
    const path = file('client-token', `${GOOD}\n`);
    expect(loadConfig(GrpcEnv, { XYP_GRPC_TOKEN_FILE: path }).XYP_GRPC_TOKEN).toBe(GOOD);
    expect(message(() => loadConfig(GrpcEnv, { XYP_GRPC_TOKEN_FILE: path, XYP_GRPC_TOKEN: GOOD }))).toContain(
      'XYP_GRPC_TOKEN_FILE: set either XYP_GRPC_TOKEN or XYP_GRPC_TOKEN_FILE, not both',
    );
  });
});

describe('GrpcEnv: TLS', () => {
  it('reads the server certificate, key and CA; a CA alone or a certificate without its key is refused', () => {
    const cert = file('server.crt', 'CERT');
    const key = file('server.key', 'KEY');
    const ca = file('ca.crt', 'CA');
    expect(grpcServerSecurity(loadConfig(GrpcEnv, { XYP_GRPC_TLS_CERT: cert, XYP_GRPC_TLS_KEY: key, XYP_GRPC_TLS_CA: ca })).tls).toEqual({
      cert: Buffer.from('CERT'),
      key: Buffer.from('KEY'),
      ca: Buffer.from('CA'),
      // Where they were read from: the server watches them for a renewed certificate.
      files: { cert, key, ca },
    });
    expect(message(() => grpcServerSecurity(loadConfig(GrpcEnv, { XYP_GRPC_TLS_CERT: cert })))).toContain('XYP_GRPC_TLS_KEY: required with XYP_GRPC_TLS_CERT');
    expect(message(() => grpcServerSecurity(loadConfig(GrpcEnv, { XYP_GRPC_TLS_CA: ca })))).toContain('XYP_GRPC_TLS_CERT: required with XYP_GRPC_TLS_CA');
    expect(message(() => grpcServerSecurity(loadConfig(GrpcEnv, { XYP_GRPC_TLS_CERT: cert, XYP_GRPC_TLS_KEY: join(dir, 'nope') })))).toContain(
      'XYP_GRPC_TLS_KEY: cannot read the file (ENOENT)',
    );
    // A client with only the CA verifies the server and presents no certificate.
    expect(grpcClientSecurity(loadConfig(GrpcEnv, { XYP_GRPC_TLS_CA: ca })).tls).toEqual({ ca: Buffer.from('CA') });
  });
});

describe('secrets in the environment', () => {
  it('reads XYP_BOARD_PASSWORD and XYP_S3_SECRET_KEY from their _FILE variants', () => {
    const password = file('board-password', 'from-a-mounted-file\n');
    const secret = file('s3-secret', 's3-secret-from-file');
    const env = loadConfig(SERVICE_ENVS['control-plane'], { XYP_BOARD_PASSWORD_FILE: password, XYP_S3_SECRET_KEY_FILE: secret });
    expect(env.XYP_BOARD_PASSWORD).toBe('from-a-mounted-file');
    expect(env.XYP_S3_SECRET_KEY).toBe('s3-secret-from-file');
  });

  it('never shows a secret in an error, and hides the password of a URL', () => {
    const error = message(() => loadConfig(SERVICE_ENVS['control-plane'], { XYP_BOARD_PASSWORD: 'short' }));
    expect(error).toBe('invalid configuration: XYP_BOARD_PASSWORD: must be at least 8 characters (got a value of 5 characters, not shown)');
    const url = message(() => loadConfig(PlatformEnv, { XYP_REDIS_URL: 'http://user:hunter2-secret@redis:6379' }));
    expect(url).not.toContain('hunter2');
    expect(url).toContain('XYP_REDIS_URL: must be a redis or rediss URL (got "http://user:***@redis:6379")');
  });
});
