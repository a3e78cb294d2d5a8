/**
 * Test fixtures (not exported by the package): tiny engine checkpoints, the repo's real
 * OpenAI-compatible server (`xyp serve`, in a child process) over one of them, and chat-completions
 * servers on `node:http` that answer as a test tells them (the judge).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { ResponseSource, SampleRequest } from '../sources';
import { BYTE_VOCAB_SIZE, ByteTokenizer, DirectorySink, Trainer, disposeModel, initBackend, initParams, packDocuments, saveModel, trainCpt } from '@xyp/engine';

const WORKSPACE = resolve(__dirname, '../../../..');

/** A tiny LM trained a few steps on finance-flavoured ASCII text, saved as a checkpoint directory. */
export async function tinyCheckpoint(dir: string, size: { layers: number; width: number; seed: number; steps?: number }): Promise<string> {
  await initBackend();
  const tokenizer = new ByteTokenizer();
  const docs = Array.from({ length: 40 }, (_, i) => [...tokenizer.encode(`the rate rose ${i % 7} points. profit was ${i * 3} yuan.`), tokenizer.eosId]);
  const model = initParams({ vocabSize: BYTE_VOCAB_SIZE, contextLength: 96, layers: size.layers, width: size.width, heads: 2 }, size.seed);
  const steps = size.steps ?? 20;
  const trainer = new Trainer(model, { lr: 1e-2, minLr: 1e-3, warmupSteps: 2, totalSteps: steps }, size.seed);
  await trainCpt(trainer, packDocuments(docs, 96, tokenizer.eosId), { steps, batchSize: 8 });
  await saveModel(new DirectorySink(dir), model);
  trainer.dispose();
  disposeModel(model);
  return dir;
}

export interface ServeHandle {
  /** The server root (`http://127.0.0.1:port`). */
  baseUrl: string;
  model: string;
  close(): Promise<void>;
}

/** `xyp serve --checkpoint <dir>` on a free port, ready once it prints its ready line. */
export async function xypServe(checkpoint: string, model: string): Promise<ServeHandle> {
  const child: ChildProcess = spawn(process.execPath, [join(WORKSPACE, 'tools/xyp/bin/xyp.js'), 'serve', '--checkpoint', checkpoint, '--port', '0', '--model-name', model, '--json'], {
    cwd: WORKSPACE,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const ready = await new Promise<{ url: string }>((done, fail) => {
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    lines.once('line', (line) => {
      try {
        done(JSON.parse(line) as { url: string });
      } catch {
        fail(new Error(`xyp serve printed ${line}; stderr: ${stderr}`));
      }
    });
    child.once('exit', (code) => fail(new Error(`xyp serve exited with ${code}: ${stderr}`)));
  });
  return {
    baseUrl: ready.url.replace(/\/v1$/, ''),
    model,
    close: () =>
      new Promise<void>((done) => {
        if (child.exitCode !== null) return done();
        child.once('exit', () => done());
        child.kill('SIGTERM');
      }),
  };
}

export interface ChatRequestBody {
  model: string;
  messages: { role: string; content: string }[];
  n?: number;
  temperature?: number;
  top_p?: number;
  max_tokens?: number;
  seed?: number;
}

export interface ChatServer {
  baseUrl: string;
  /** Every request body received, in order. */
  requests: ChatRequestBody[];
  close(): Promise<void>;
}

export type ChatReply = { status: number; body: unknown; headers?: Record<string, string> } | { contents: string[] };

/** A chat-completions server whose answer to the k-th request (from 0) `reply` decides. */
export async function chatServer(reply: (body: ChatRequestBody, k: number) => ChatReply): Promise<ChatServer> {
  const requests: ChatRequestBody[] = [];
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let raw = '';
    req.on('data', (chunk: Buffer) => (raw += chunk.toString()));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/chat/completions') {
        res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: `no route ${req.method} ${req.url}` } }));
        return;
      }
      const body = JSON.parse(raw) as ChatRequestBody;
      const answer = reply(body, requests.length);
      requests.push(body);
      if ('status' in answer) {
        res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers }).end(JSON.stringify(answer.body));
        return;
      }
      const choices = answer.contents.map((content, index) => ({ index, message: { role: 'assistant', content }, finish_reason: 'stop' }));
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id: `chatcmpl-${requests.length}`, object: 'chat.completion', model: body.model, choices }));
    });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise<void>((done) => server.close(() => done())),
  };
}

/** The question and the two answers of a `pairwise-v1` judge request. */
export function judgeRequestParts(body: ChatRequestBody): { question: string; a: string; b: string } {
  const user = body.messages[body.messages.length - 1].content;
  const pick = (re: RegExp): string => {
    const m = re.exec(user);
    if (!m) throw new Error(`not a pairwise-v1 judge request: ${user.slice(0, 120)}`);
    return m[1];
  };
  return {
    question: pick(/^\[Question\]\n([\s\S]*?)\n\n\[Answer A\]/),
    a: pick(/\[Answer A\]\n([\s\S]*?)\n\[End of Answer A\]/),
    b: pick(/\[Answer B\]\n([\s\S]*?)\n\[End of Answer B\]/),
  };
}

export interface JudgeBehaviour {
  /** Score of one answer, 0..10; the judge prefers the higher (ties: "tie"). */
  score?: (answer: string) => number;
  /** Always says A is better, whatever the answers (a position-biased judge). */
  alwaysA?: boolean;
}

/** A deterministic judge: by default an answer containing `keyword` scores 9, any other 3. */
export async function judgeServer(keyword: string, behaviour: JudgeBehaviour = {}): Promise<ChatServer> {
  const score = behaviour.score ?? ((answer: string) => (answer.includes(keyword) ? 9 : 3));
  return chatServer((body) => {
    const { a, b } = judgeRequestParts(body);
    const verdict = behaviour.alwaysA ? { winner: 'A', scores: { A: 8, B: 2 } } : (() => {
      const scores = { A: score(a), B: score(b) };
      return { winner: scores.A > scores.B ? 'A' : scores.A < scores.B ? 'B' : 'tie', scores };
    })();
    return { contents: Array.from({ length: body.n ?? 1 }, () => JSON.stringify(verdict)) };
  });
}

/** A source that answers from a table: `texts(prompt, setting name, n)`; what it was asked is kept. */
export function fixedSource(id: string, texts: (prompt: string, setting: string, n: number) => string[]): ResponseSource & { asked: SampleRequest[] } {
  const asked: SampleRequest[] = [];
  return {
    id,
    kind: 'openai',
    asked,
    describe: () => ({ kind: 'fixed', model: id }),
    sample: async (request) => {
      asked.push(request);
      return texts(request.prompt, request.setting.name, request.n).map((text) => ({ text }));
    },
  };
}
