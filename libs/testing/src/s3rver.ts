import { mkdtemp, rm } from 'node:fs/promises';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** One request the S3 endpoint answered: which object, which bytes, how many crossed the wire. */
export interface S3Request {
  method: string;
  /** Object key ('' for bucket-level requests). */
  key: string;
  /** The `Range` header as sent, or null. */
  range: string | null;
  status: number;
  /** Body bytes sent (the response's Content-Length; 0 for HEAD). */
  bytes: number;
}

export interface TestS3 {
  port: number;
  /** `http://127.0.0.1:<port>` */
  endpoint: string;
  bucket: string;
  accessKey: string;
  secretKey: string;
  /** Every request answered so far, in order (recorded by the HTTP server itself). */
  requests: S3Request[];
  stop(): Promise<void>;
}

/**
 * An in-process S3 endpoint (s3rver) over real HTTP on a free port, with one bucket, that
 * records every request it answers, so a test can show which byte ranges a client fetched.
 */
export async function startTestS3(bucket = 'xyp-test'): Promise<TestS3> {
  // Loaded here so that importing @xyp/testing does not load s3rver for tests that never use it.
  const { default: S3rver } = await import('s3rver');
  const directory = await mkdtemp(join(tmpdir(), 'xyp-test-s3-'));
  const server = new S3rver({ port: 0, address: '127.0.0.1', directory, silent: true, configureBuckets: [{ name: bucket }] });
  const { port } = await server.run();
  const requests: S3Request[] = [];
  const http = (server as unknown as { httpServer: Server }).httpServer;
  http.on('request', (request: IncomingMessage, response: ServerResponse) => {
    response.on('finish', () => {
      const path = new URL(request.url ?? '/', 'http://s3').pathname;
      const key = path.startsWith(`/${bucket}/`) ? decodeURIComponent(path.slice(bucket.length + 2)) : '';
      const method = request.method ?? 'GET';
      const range = request.headers.range;
      requests.push({ method, key, range: range ?? null, status: response.statusCode, bytes: method === 'HEAD' ? 0 : Number(response.getHeader('content-length') ?? 0) });
    });
  });
  return {
    port,
    endpoint: `http://127.0.0.1:${port}`,
    bucket,
    accessKey: 'S3RVER',
    secretKey: 'S3RVER',
    requests,
    async stop() {
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}
