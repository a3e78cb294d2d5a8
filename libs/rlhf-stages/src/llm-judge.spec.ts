/**
 * The LLM judge against a local HTTP server that speaks OpenAI's chat completions protocol (a hosted
 * judge cannot run here), through the LLM gateway: the MT-Bench prompt is sent, a verdict is parsed,
 * a garbage answer is asked again once and then recorded as a skip, and the two orders are combined
 * so a flip is a tie. HTTP failures are the gateway's to retry: a transient 500 is retried, a 400
 * fails at once naming the endpoint.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LlmGatewayError, startFakeOpenAi } from '@xyp/llm';
import { combineOrders } from '@xyp/rlhf';
import { PAIRWISE_SYSTEM_PROMPT, judgeEndpointModel, llmPairJudge, type JudgeModel } from './llm-judge';

const open: { close(): unknown }[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((o) => o.close()));
});

/** `{baseUrl, model: 'judge-7b'}` as a one-model gateway, backoff at 0.2 % (1 ms first). */
function judgeAt(url: string): JudgeModel {
  const model = judgeEndpointModel({ baseUrl: url, model: 'judge-7b' }, { backoffScale: 0.002 });
  open.push(model.gateway);
  return model;
}

let server: Server;
let baseUrl = '';
const requests: { model: string; messages: { role: string; content: string }[]; temperature: number }[] = [];
/** Answers by the first answer's text: what the judge "says" when that response is shown as A. */
const script: Record<string, string[]> = {};

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const parsed = JSON.parse(body) as (typeof requests)[number];
      requests.push(parsed);
      const user = parsed.messages[1].content;
      const first = /\[The Start of Assistant A's Answer\]\n([\s\S]*?)\n\[The End/.exec(user)?.[1] ?? '';
      const queue = script[first] ?? ['[[C]]'];
      const content = queue.length > 1 ? (queue.shift() as string) : queue[0];
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ id: 'x', object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }] }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe('llmPairJudge', () => {
  it('sends the MT-Bench pairwise prompt at temperature 0 and reads the verdict', async () => {
    script['good answer'] = ['A is more accurate. [[A]]'];
    const judge = llmPairJudge(judgeAt(baseUrl));
    const out = await judge('What is a bond?', 'good answer', 'bad answer');
    expect(out).toEqual({ verdict: 'first', reason: 'judge-7b: first' });
    const sent = requests[requests.length - 1];
    expect(sent.model).toBe('judge-7b');
    expect(sent.temperature).toBe(0);
    expect(sent.messages[0]).toEqual({ role: 'system', content: PAIRWISE_SYSTEM_PROMPT });
    expect(sent.messages[1].content).toContain('[User Question]\nWhat is a bond?');
  });

  it('asks once more after a garbage answer, and records a skip after two', async () => {
    script['retry me'] = ['I cannot decide', '[[B]]'];
    script['garbage'] = ['no verdict here', 'still none [[A]] or [[B]]'];
    const judge = llmPairJudge(judgeAt(baseUrl));
    expect(await judge('q', 'retry me', 'x')).toEqual({ verdict: 'second', reason: 'judge-7b: second (on the retry)' });
    const skipped = await judge('q', 'garbage', 'x');
    expect(skipped.verdict).toBeNull();
    expect(skipped.reason).toMatch(/^judge-7b: no \[\[A\]\]\/\[\[B\]\]\/\[\[C\]\] verdict in two answers/);
    expect(combineOrders(skipped.verdict, 'first').outcome).toBe('skip');
  });

  it('a judge that always prefers the first position gives a tie once both orders are combined', async () => {
    script['policy reply'] = ['[[A]]'];
    script['sft reply'] = ['[[A]]'];
    const judge = llmPairJudge(judgeAt(baseUrl));
    const ab = await judge('q', 'policy reply', 'sft reply');
    const ba = await judge('q', 'sft reply', 'policy reply');
    expect(combineOrders(ab.verdict, ba.verdict)).toMatchObject({ outcome: 'tie', consistent: false });
  });
});

describe('llmPairJudge over the gateway: HTTP retries are the gateway\'s', () => {
  it('a transient 500 is retried by the gateway and the verdict read', async () => {
    const s = await startFakeOpenAi({ respond: () => 'A is better. [[A]]', faults: (i) => (i === 0 ? { kind: 'status', status: 500 } : undefined) });
    open.push(s);
    const out = await llmPairJudge(judgeAt(s.url))('q', 'first answer', 'second answer');
    expect(out).toEqual({ verdict: 'first', reason: 'judge-7b: first' });
    expect(s.requests).toBe(2);
    expect(s.log.map((r) => r.fault ?? 'answered')).toEqual(['status', 'answered']);
  });

  it('a 400 fails at once, naming the endpoint and the model, with no retry of any kind', async () => {
    const s = await startFakeOpenAi({ faults: () => ({ kind: 'status', status: 400, body: { error: { message: 'unknown model judge-7b', type: 'invalid_request_error' } } }) });
    open.push(s);
    const error = await llmPairJudge(judgeAt(s.url))('q', 'a', 'b').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LlmGatewayError);
    const e = error as LlmGatewayError;
    expect([e.status, e.attempts, e.permanent, e.endpoint]).toEqual([400, 1, true, `${s.url}/v1`]);
    expect(e.message).toContain(`model judge at ${s.url}/v1 (model id judge-7b) failed with status 400: unknown model judge-7b`);
    expect(s.requests).toBe(1);
  });
});
