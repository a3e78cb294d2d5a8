import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { freePort } from '@xyp/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeHttpFetch } from './http-transport';

const transport = nodeHttpFetch();
const server = createServer((req, res) => {
  if (req.url === '/empty') {
    res.writeHead(204);
    return res.end();
  }
  if (req.url === '/hang') return;
  let body = '';
  req.on('data', (c: Buffer) => (body += c.toString()));
  req.on('end', () => {
    res.writeHead(201, { 'content-type': 'application/json', 'x-seen': req.headers['x-test'] ?? '' });
    res.end(JSON.stringify({ method: req.method, body, length: req.headers['content-length'] }));
  });
});
let base = '';
beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  transport.close();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

describe('nodeHttpFetch', () => {
  it('sends method, headers and body and returns a Response', async () => {
    const response = await transport.fetch(`${base}/echo`, { method: 'POST', headers: { 'x-test': 'yes' }, body: 'héllo' });
    expect(response.status).toBe(201);
    expect(response.headers.get('x-seen')).toBe('yes');
    expect(await response.json()).toEqual({ method: 'POST', body: 'héllo', length: '6' });
    const empty = await transport.fetch(`${base}/empty`);
    expect(empty.status).toBe(204);
    expect(empty.body).toBeNull();
  });

  it('rejects a refused connection like fetch, with the cause', async () => {
    const error = (await transport.fetch(`http://127.0.0.1:${await freePort()}/`).catch((e: unknown) => e)) as TypeError;
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toBe('fetch failed');
    expect((error.cause as NodeJS.ErrnoException).code).toBe('ECONNREFUSED');
  });

  it('rejects with an AbortError when the signal aborts', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 30);
    const error = (await transport.fetch(`${base}/hang`, { signal: controller.signal }).catch((e: unknown) => e)) as Error;
    expect(error.name).toBe('AbortError');
  });
});
