/**
 * The `fetch` the gateway gives the openai client: node:http / node:https with keep-alive agents,
 * the whole body read before the promise resolves (so the client's timeout covers the body too).
 *
 * Why not Node's built-in fetch (undici): under concurrency it costs several times the CPU per call
 * and opens more connections than there are requests in flight (a connection is not free again by
 * the time the next call starts), which on a 2-core machine held a 200 ms endpoint at 0.75–0.92 of
 * the ideal throughput at 64 concurrent calls, against 0.99 over node:http (`xyp bench synth`).
 *
 * It serves what the gateway sends — JSON bodies (string or bytes), buffered responses — not
 * streams or form uploads (those are refused with a TypeError). Idle sockets close after
 * `idleSocketMs` (4 s, as undici) or earlier when the server's `Keep-Alive: timeout` says so.
 * Connection failures reject like fetch does (`TypeError('fetch failed', {cause})`), an abort with
 * an `AbortError`.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';

export interface NodeHttpFetchOptions {
  /** Free (idle) sockets close after this long. Default 4,000 ms. */
  idleSocketMs?: number;
}

export interface NodeHttpFetch {
  fetch: typeof fetch;
  /** Destroys the pooled sockets. */
  close(): void;
}

const NULL_BODY_STATUSES = new Set([101, 204, 205, 304]);

function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error && reason.name === 'AbortError' ? reason : new DOMException('This operation was aborted', 'AbortError');
}

function requestBody(body: unknown): string | Uint8Array | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string' || body instanceof Uint8Array) return body;
  if (body instanceof ArrayBuffer) return new Uint8Array(body);
  throw new TypeError('nodeHttpFetch sends string or byte bodies only');
}

function responseHeaders(res: IncomingMessage): Headers {
  const headers = new Headers();
  const raw = res.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) headers.append(raw[i], raw[i + 1]);
  return headers;
}

export function nodeHttpFetch(options: NodeHttpFetchOptions = {}): NodeHttpFetch {
  const agentOptions = { keepAlive: true, timeout: options.idleSocketMs ?? 4_000, scheduling: 'lifo' as const };
  const httpAgent = new HttpAgent(agentOptions);
  const httpsAgent = new HttpsAgent(agentOptions);

  const fetchOverNodeHttp = (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    const url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
    const signal = init.signal ?? undefined;
    if (signal?.aborted) return Promise.reject(abortError(signal));
    let body: string | Uint8Array | undefined;
    try {
      body = requestBody(init.body);
    } catch (error) {
      return Promise.reject(error);
    }
    const headers: Record<string, string> = {};
    new Headers(init.headers).forEach((value, name) => {
      headers[name] = value;
    });
    if (body !== undefined && headers['content-length'] === undefined) headers['content-length'] = String(Buffer.byteLength(body));
    const https = url.protocol === 'https:';
    if (!https && url.protocol !== 'http:') return Promise.reject(new TypeError(`nodeHttpFetch: unsupported protocol ${url.protocol}`));

    return new Promise<Response>((resolve, reject) => {
      let settled = false;
      const settle = (fn: () => void) => {
        if (settled) return;
        settled = true;
        signal?.removeEventListener('abort', onAbort);
        fn();
      };
      const fail = (error: Error) => settle(() => reject(error instanceof TypeError ? error : new TypeError('fetch failed', { cause: error })));
      const onAbort = () => {
        settle(() => reject(abortError(signal as AbortSignal)));
        req.destroy();
      };
      const req = (https ? httpsRequest : httpRequest)(url, { method: init.method ?? 'GET', headers, agent: https ? httpsAgent : httpAgent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', fail);
        res.on('close', () => {
          if (!res.complete) fail(new Error('the connection closed before the response ended'));
        });
        res.on('end', () =>
          settle(() => {
            const status = res.statusCode ?? 0;
            try {
              resolve(new Response(NULL_BODY_STATUSES.has(status) ? null : Buffer.concat(chunks), { status, statusText: res.statusMessage ?? '', headers: responseHeaders(res) }));
            } catch (error) {
              reject(error);
            }
          }),
        );
      });
      req.on('error', fail);
      signal?.addEventListener('abort', onAbort, { once: true });
      req.end(body);
    });
  };

  return {
    fetch: fetchOverNodeHttp as typeof fetch,
    close: () => {
      httpAgent.destroy();
      httpsAgent.destroy();
    },
  };
}
