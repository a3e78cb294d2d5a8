import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { startFakeOpenAi, type FakeOpenAi, type Fault } from './fault-server';
import { LlmGateway } from './gateway';
import { extractJson } from './structured';

const Verdict = z.object({ winner: z.enum(['A', 'B']), confidence: z.number().min(0).max(1) });

const open: { close(): unknown }[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((o) => o.close()));
});

/** A server whose replies are `contents` in order (the last one repeated). */
async function replying(...contents: string[]): Promise<{ server: FakeOpenAi; gateway: LlmGateway }> {
  const server = await startFakeOpenAi({ faults: (i): Fault => ({ kind: 'content', content: contents[Math.min(i, contents.length - 1)] }) });
  const gateway = new LlmGateway({ models: [{ name: 'judge', baseUrl: server.baseUrl, model: 'tiny-judge' }] });
  open.push(server, gateway);
  return { server, gateway };
}

const ask = { messages: [{ role: 'user' as const, content: 'Which answer is better?' }], temperature: 0 };

describe('extractJson', () => {
  it('reads bare JSON, a fenced block and the first balanced span in prose', () => {
    expect(extractJson(' {"a": 1} ')).toEqual({ ok: true, value: { a: 1 } });
    expect(extractJson('Here you go:\n```json\n{"a": [1, 2]}\n```\nDone.')).toEqual({ ok: true, value: { a: [1, 2] } });
    expect(extractJson('```\n[1, 2]\n```')).toEqual({ ok: true, value: [1, 2] });
    expect(extractJson('Sure! {"a": "}{", "b": {"c": "\\"]"}} and {"later": 1}')).toEqual({ ok: true, value: { a: '}{', b: { c: '"]' } } });
    expect(extractJson('The list: [1, {"x": 2}] as asked')).toEqual({ ok: true, value: [1, { x: 2 }] });
  });

  it('says why there is no JSON', () => {
    expect(extractJson('no json here')).toEqual({ ok: false, reason: 'the reply holds no JSON object or array' });
    const broken = extractJson('{"a": 1,');
    expect(broken.ok).toBe(false);
    expect(broken.ok ? '' : broken.reason).toMatch(/^the reply holds no JSON|is not valid JSON/);
    const fenced = extractJson('```json\n{"a": }\n```');
    expect(fenced.ok ? '' : fenced.reason).toMatch(/^the ```json block is not valid JSON \(/);
  });
});

describe('LlmGateway.chatStructured', () => {
  it('parses a fenced JSON reply in one request', async () => {
    const { server, gateway } = await replying('```json\n{"winner": "A", "confidence": 0.9}\n```');
    const result = await gateway.chatStructured('judge', ask, Verdict);
    expect(result).toMatchObject({ ok: true, value: { winner: 'A', confidence: 0.9 }, repairs: 0 });
    expect(server.requests).toBe(1);
  });

  it('re-asks once after a malformed reply, with the bad reply and the error, and takes the repair', async () => {
    const { server, gateway } = await replying('{"winner": "A", confidence: high}', '{"winner": "B", "confidence": 0.6}');
    const result = await gateway.chatStructured('judge', ask, Verdict);
    expect(result).toMatchObject({ ok: true, value: { winner: 'B', confidence: 0.6 }, repairs: 1 });
    expect(server.requests).toBe(2);
    const repair = server.log[1].body.messages;
    expect(repair).toHaveLength(3);
    expect(repair[0]).toEqual(ask.messages[0]);
    expect(repair[1]).toEqual({ role: 'assistant', content: '{"winner": "A", confidence: high}' });
    expect(repair[2].role).toBe('user');
    expect(repair[2].content).toMatch(/is not valid JSON \(.+\)\. Reply again with only the corrected JSON/);
  });

  it('re-asks after a reply that does not match the schema, naming the field', async () => {
    const { server, gateway } = await replying('{"winner": "C", "confidence": 0.5}', '{"winner": "A", "confidence": 0.5}');
    const result = await gateway.chatStructured('judge', ask, Verdict);
    expect(result.ok).toBe(true);
    expect(server.log[1].body.messages[2].content).toContain("does not match the schema (winner: ");
  });

  it('returns {ok: false, reason} when the repair is malformed too, without throwing', async () => {
    const { server, gateway } = await replying('not json at all', 'still {not json');
    const result = await gateway.chatStructured('judge', ask, Verdict);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.reason).toMatch(/is not valid JSON .*still after 1 repair request\(s\)$/);
    expect(result.content).toBe('still {not json');
    expect(result.repairs).toBe(1);
    expect(server.requests).toBe(2);
  });

  it('is bounded by repairs: 0 makes one request', async () => {
    const { server, gateway } = await replying('{"winner": 1}');
    const result = await gateway.chatStructured('judge', ask, Verdict, { repairs: 0 });
    expect(result).toMatchObject({ ok: false, repairs: 0 });
    expect(result.ok ? '' : result.reason).toMatch(/^the reply's JSON does not match the schema \(winner: .*confidence: /);
    expect(server.requests).toBe(1);
  });
});
