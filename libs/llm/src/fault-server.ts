/**
 * A local OpenAI-compatible server that answers slowly or badly on purpose, for the gateway's tests
 * and benchmarks: `POST /v1/chat/completions` (JSON body with `choices` and `usage`) and
 * `GET /v1/models`, on node:http. Each chat request waits the fixed latency, then answers with
 * `respond(body, choiceIndex)` for each of its `n` choices — unless the fault plan, asked with the
 * request's index (0, 1, … in arrival order) and body, returns a fault:
 *
 * - `{kind: 'status', status, retryAfter?, retryAfterMs?, body?}`: that status, with `retry-after`
 *   (seconds or an HTTP date) / `retry-after-ms` headers, and an OpenAI-style error body;
 * - `{kind: 'timeout'}`: never answers (the client must give up);
 * - `{kind: 'reset'}`: destroys the socket without a response;
 * - `{kind: 'malformed-body'}`: 200, `application/json`, but the body is not JSON;
 * - `{kind: 'content', content}`: 200 with that content in every choice (e.g. bad JSON for structured outputs).
 *
 * Tokens in `usage` are chars/4 (rounded up) of the messages and of the reply. Sustains 256
 * in-flight requests at 200 ms latency: idle sockets are kept longer than a client keeps them
 * (no reset races on reuse); the backlog takes 511 pending connections.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Fault =
  | { kind: 'status'; status: number; retryAfter?: string | number; retryAfterMs?: number; body?: unknown }
  | { kind: 'timeout' }
  | { kind: 'reset' }
  | { kind: 'malformed-body' }
  | { kind: 'content'; content: string };

export interface FakeChatBody {
  model?: string;
  messages: { role: string; content: string }[];
  n?: number;
  max_tokens?: number;
  [key: string]: unknown;
}

export type FaultPlan = (requestIndex: number, body: FakeChatBody) => Fault | undefined;

export interface LoggedRequest {
  index: number;
  body: FakeChatBody;
  authorization: string | undefined;
  /** The fault served, if any. */
  fault?: Fault['kind'];
}

export interface FakeOpenAiOptions {
  /** Wait before each answer (not before a reset, never for a timeout). Default 0. */
  latencyMs?: number;
  /** The content of choice `choiceIndex`; default `fakeReply` of the last user message. */
  respond?: (body: FakeChatBody, choiceIndex: number) => string;
  faults?: FaultPlan;
  /** Keep every request's body in `log`. Default true (a benchmark turns it off). */
  log?: boolean;
  /** Model ids of `GET /v1/models`. Default ['fake-model']. */
  models?: string[];
  host?: string;
  port?: number;
}

export interface FakeOpenAi {
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  /** `http://127.0.0.1:PORT/v1` */
  readonly baseUrl: string;
  /** Chat completion requests received. */
  readonly requests: number;
  readonly inFlight: number;
  /** The most chat requests in flight at once. */
  readonly maxInFlight: number;
  /** TCP connections accepted. */
  readonly connections: number;
  readonly log: readonly LoggedRequest[];
  setFaults(plan: FaultPlan | undefined): void;
  setLatency(ms: number): void;
  /** Zeroes `requests`, `maxInFlight` and the log (request indices start from 0 again). */
  reset(): void;
  close(): Promise<void>;
}

/** The default reply to a conversation whose last user message is `lastUser`: `reply <16 hex of its SHA-256>`, `#i` for choice i > 0. */
export function fakeReply(lastUser: string, choiceIndex = 0): string {
  const hash = createHash('sha256').update(lastUser).digest('hex').slice(0, 16);
  return choiceIndex === 0 ? `reply ${hash}` : `reply ${hash}#${choiceIndex}`;
}

function lastUserContent(body: FakeChatBody): string {
  for (let i = body.messages.length - 1; i >= 0; i--) if (body.messages[i].role === 'user') return String(body.messages[i].content);
  return '';
}

const tokens = (chars: number) => Math.ceil(chars / 4);

function sendJson(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export async function startFakeOpenAi(options: FakeOpenAiOptions = {}): Promise<FakeOpenAi> {
  let latencyMs = options.latencyMs ?? 0;
  let faults = options.faults;
  const respond = options.respond ?? ((body: FakeChatBody, i: number) => fakeReply(lastUserContent(body), i));
  const keepLog = options.log ?? true;
  const models = options.models ?? ['fake-model'];
  let requests = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  let connections = 0;
  let log: LoggedRequest[] = [];
  const timers = new Set<NodeJS.Timeout>();

  const later = (fn: () => void) => {
    if (latencyMs <= 0) return fn();
    const timer = setTimeout(() => {
      timers.delete(timer);
      fn();
    }, latencyMs);
    timers.add(timer);
  };

  async function chat(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const index = requests++;
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    res.once('close', () => inFlight--);
    let body: FakeChatBody;
    try {
      body = JSON.parse(await readBody(req)) as FakeChatBody;
      if (!Array.isArray(body?.messages)) throw new Error('messages must be an array');
    } catch (error) {
      sendJson(res, 400, { error: { message: `bad request: ${error instanceof Error ? error.message : String(error)}`, type: 'invalid_request_error' } });
      return;
    }
    const fault = faults?.(index, body);
    if (keepLog) log.push({ index, body, authorization: req.headers.authorization, ...(fault ? { fault: fault.kind } : {}) });
    if (fault?.kind === 'timeout') return;
    if (fault?.kind === 'reset') {
      req.socket.destroy();
      return;
    }
    later(() => {
      if (res.destroyed) return;
      if (fault?.kind === 'status') {
        const headers: Record<string, string> = {};
        if (fault.retryAfter !== undefined) headers['retry-after'] = String(fault.retryAfter);
        if (fault.retryAfterMs !== undefined) headers['retry-after-ms'] = String(fault.retryAfterMs);
        sendJson(res, fault.status, fault.body ?? { error: { message: `injected status ${fault.status}`, type: 'fault', code: String(fault.status) } }, headers);
        return;
      }
      if (fault?.kind === 'malformed-body') {
        const text = '{"id": "chatcmpl-broken", "choices": [';
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
        res.end(text);
        return;
      }
      const n = Math.max(1, Math.floor(Number(body.n ?? 1)) || 1);
      const contents = Array.from({ length: n }, (_, i) => (fault?.kind === 'content' ? fault.content : respond(body, i)));
      const promptTokens = tokens(body.messages.reduce((sum, m) => sum + String(m.content).length, 0));
      const completionTokens = contents.reduce((sum, c) => sum + tokens(c.length), 0);
      sendJson(res, 200, {
        id: `chatcmpl-fake-${index}`,
        object: 'chat.completion',
        created: Math.floor(Date.now() / 1000),
        model: body.model ?? models[0],
        choices: contents.map((content, i) => ({ index: i, message: { role: 'assistant', content }, finish_reason: 'stop' })),
        usage: { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens },
      });
    });
  }

  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0].replace(/\/+$/, '');
    if (req.method === 'POST' && path === '/v1/chat/completions') {
      chat(req, res).catch(() => res.destroy());
      return;
    }
    if (req.method === 'GET' && path === '/v1/models') {
      sendJson(res, 200, { object: 'list', data: models.map((id) => ({ id, object: 'model', created: 0, owned_by: 'xyp-fake' })) });
      return;
    }
    sendJson(res, 404, { error: { message: `no route ${req.method} ${req.url}`, type: 'not_found' } });
  });
  // Idle sockets outlive the client's (undici keeps them 4 s), so a reused socket is never closed under a request.
  server.on('connection', () => connections++);
  server.keepAliveTimeout = 60_000;
  server.headersTimeout = 60_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', 511, () => resolve());
  });
  const { port, address } = server.address() as AddressInfo;
  const host = address.includes(':') ? `[${address}]` : address;
  const url = `http://${host}:${port}`;

  return {
    url,
    baseUrl: `${url}/v1`,
    get requests() {
      return requests;
    },
    get inFlight() {
      return inFlight;
    },
    get maxInFlight() {
      return maxInFlight;
    },
    get connections() {
      return connections;
    },
    get log() {
      return log;
    },
    setFaults: (plan) => {
      faults = plan;
    },
    setLatency: (ms) => {
      latencyMs = ms;
    },
    reset: () => {
      requests = 0;
      maxInFlight = inFlight;
      log = [];
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const timer of timers) clearTimeout(timer);
        timers.clear();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
