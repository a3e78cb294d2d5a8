import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BYTE_VOCAB_SIZE,
  ByteTokenizer,
  Trainer,
  checkpointManifest,
  createStoreCheckpoint,
  disposeModel,
  initBackend,
  initParams,
  packDocuments,
  saveTrainer,
  trainCpt,
} from '@xyp/engine';
import { LocalDirectoryStore } from '@xyp/storage';
import { loadServedModel, startOpenAiServer, type OpenAiServerHandle } from './http-server';
import { OpenAiService, type ServedModel } from './openai-service';

const dir = mkdtempSync(join(tmpdir(), 'xyp-serve-'));
let served: ServedModel;
let server: OpenAiServerHandle;
let client: OpenAI;
const MODEL = 'tiny-finance';

async function rejection(promise: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(OpenAI.APIError);
  return error as InstanceType<typeof OpenAI.APIError>;
}

beforeAll(async () => {
  // A real checkpoint: a tiny LM trained a few seconds on ASCII text, committed to a store and
  // loaded back by its ID, as `xyp train lm` and `xyp serve` do.
  await initBackend();
  const tokenizer = new ByteTokenizer();
  const docs = Array.from({ length: 40 }, (_, i) => [...tokenizer.encode(`the rate rose ${i % 7} points. the rate fell.`), tokenizer.eosId]);
  const store = new LocalDirectoryStore(join(dir, 'store'));
  const model = initParams({ vocabSize: BYTE_VOCAB_SIZE, contextLength: 64, layers: 1, width: 32, heads: 2 }, 1);
  const trainer = new Trainer(model, { lr: 1e-2, minLr: 1e-3, warmupSteps: 3, totalSteps: 30 }, 1);
  await trainCpt(trainer, packDocuments(docs, 64, tokenizer.eosId), { steps: 30, batchSize: 8 });
  const sink = await createStoreCheckpoint(store, 'serve-test', 'engine.lm');
  await saveTrainer(sink, trainer);
  expect((await store.commitManifest(checkpointManifest(sink))).committed).toBe(true);
  trainer.dispose();
  disposeModel(model);
  const job = { checkpoint: sink.id };
  expect(job.checkpoint).toBe('serve-test/engine.lm');
  served = await loadServedModel(job.checkpoint, { store, name: MODEL });
  server = await startOpenAiServer(new OpenAiService({ models: [served] }), { port: 0 });
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'not-checked', maxRetries: 0 });
});

afterAll(async () => {
  await server?.close();
  if (served) disposeModel(served.model);
  rmSync(dir, { recursive: true, force: true });
});

describe('OpenAI-compatible server, called with the official openai client', () => {
  it('lists the served model', async () => {
    const page = await client.models.list();
    expect(page.data.map((m) => [m.id, m.object, m.owned_by])).toEqual([[MODEL, 'model', 'xyp']]);
    const one = await client.models.retrieve(MODEL);
    expect(one.id).toBe(MODEL);
  });

  it('completes a prompt up to max_tokens with finish_reason length and usage counts', async () => {
    const completion = await client.completions.create({ model: MODEL, prompt: 'the rate', max_tokens: 5, temperature: 0 });
    expect(completion.object).toBe('text_completion');
    expect(completion.choices).toHaveLength(1);
    expect(completion.choices[0].finish_reason).toBe('length');
    expect(completion.usage).toEqual({ prompt_tokens: 8, completion_tokens: 5, total_tokens: 13 });
    expect(Buffer.byteLength(completion.choices[0].text)).toBeLessThanOrEqual(5 * 3);
  });

  it('answers n=2 chat choices that a seed reproduces and another seed changes', async () => {
    const ask = (seed: number) =>
      client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'the rate' }], n: 2, seed, max_tokens: 12, temperature: 1 });
    const [a, b, c] = await Promise.all([ask(7), ask(7), ask(8)]);
    expect(a.object).toBe('chat.completion');
    expect(a.choices.map((ch) => ch.index)).toEqual([0, 1]);
    expect(a.choices.map((ch) => ch.message.content)).toEqual(b.choices.map((ch) => ch.message.content));
    expect(c.choices.map((ch) => ch.message.content)).not.toEqual(a.choices.map((ch) => ch.message.content));
    for (const ch of a.choices) {
      expect(ch.message.role).toBe('assistant');
      expect(['stop', 'length']).toContain(ch.finish_reason);
    }
    // Chat template: <user> + 8 bytes + <eot> + <assistant>.
    expect(a.usage?.prompt_tokens).toBe(11);
  });

  it('ends a completion at a stop sequence, which is not returned, with finish_reason stop', async () => {
    const free = await client.completions.create({ model: MODEL, prompt: 'the rate rose', max_tokens: 20, temperature: 0 });
    const text = free.choices[0].text;
    expect(text).toMatch(/^[\x20-\x7e]{6,}/);
    const stop = text.slice(3, 5);
    const stopped = await client.completions.create({ model: MODEL, prompt: 'the rate rose', max_tokens: 20, temperature: 0, stop: [stop] });
    expect(stopped.choices[0].finish_reason).toBe('stop');
    expect(stopped.choices[0].text).toBe(text.slice(0, text.indexOf(stop)));
  });

  it('streams chat chunks that join to the non-streamed reply, then the finish reason and usage', async () => {
    const request = { model: MODEL, messages: [{ role: 'user' as const, content: 'the rate' }], max_tokens: 16, temperature: 0.8, seed: 3 };
    const whole = await client.chat.completions.create(request);
    const stream = await client.chat.completions.create({ ...request, stream: true, stream_options: { include_usage: true } });
    let content = '';
    let role: string | undefined;
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | null | undefined;
    let chunks = 0;
    for await (const chunk of stream) {
      chunks += 1;
      expect(chunk.object).toBe('chat.completion.chunk');
      if (chunk.usage) usage = chunk.usage;
      const choice = chunk.choices[0];
      if (!choice) continue;
      role ??= choice.delta.role;
      content += choice.delta.content ?? '';
      if (choice.finish_reason) finish = choice.finish_reason;
    }
    expect(role).toBe('assistant');
    expect(content).toBe(whole.choices[0].message.content);
    expect(finish).toBe(whole.choices[0].finish_reason);
    expect(usage).toEqual(whole.usage);
    expect(chunks).toBeGreaterThan(3);
  });

  it('ends the raw event stream with data: [DONE]', async () => {
    const response = await fetch(`${server.url}/v1/completions`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ model: MODEL, prompt: 'the', max_tokens: 3, stream: true, seed: 1 }),
    });
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const events = (await response.text()).split('\n\n').filter(Boolean);
    expect(events.every((e) => e.startsWith('data: '))).toBe(true);
    expect(events[events.length - 1]).toBe('data: [DONE]');
    const last = JSON.parse(events[events.length - 2].slice('data: '.length)) as { choices: { finish_reason: string }[] };
    expect(last.choices[0].finish_reason).toBe('length');
  });

  it('streams chunks as tokens are sampled: the first arrives, and another request is answered, before generation ends', async () => {
    // An untrained model with a long context, for a generation of 240 steps (the timing is the point).
    const model = initParams({ vocabSize: BYTE_VOCAB_SIZE, contextLength: 256, layers: 1, width: 32, heads: 2 }, 21);
    const live = await startOpenAiServer(new OpenAiService({ models: [{ id: 'live', model, source: 'untrained', created: 0 }] }), { port: 0 });
    try {
      const response = await fetch(`${live.url}/v1/completions`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ model: 'live', prompt: 'the', max_tokens: 240, temperature: 0, stream: true }),
      });
      const reader = response.body!.getReader();
      const decoder = new TextDecoder();
      let buffered = '';
      const events: string[] = [];
      const read = async (): Promise<boolean> => {
        const { done, value } = await reader.read();
        buffered += decoder.decode(value, { stream: !done });
        const parts = buffered.split('\n\n');
        buffered = parts.pop() ?? '';
        events.push(...parts);
        return !done;
      };
      while (events.length === 0) expect(await read()).toBe(true);
      expect(events).not.toContain('data: [DONE]');
      // While the stream is open, the server reads and answers another request.
      let eventsWhenAnswered = -1;
      const models = fetch(`${live.url}/v1/models`).then(async (r) => {
        eventsWhenAnswered = events.length;
        return (await r.json()) as { data: { id: string }[] };
      });
      while (await read());
      expect((await models).data.map((m) => m.id)).toEqual(['live']);
      expect(events[events.length - 1]).toBe('data: [DONE]');
      const chunks = events.slice(0, -1).map((e) => JSON.parse(e.slice('data: '.length)) as { choices: { text: string; finish_reason: string | null }[] });
      expect(chunks[chunks.length - 1].choices[0].finish_reason).toBe('length');
      // Content chunks kept arriving after the other request was answered: generation was still running.
      expect(eventsWhenAnswered).toBeGreaterThan(0);
      expect(chunks.slice(eventsWhenAnswered).filter((c) => c.choices[0].text !== '').length).toBeGreaterThan(10);
    } finally {
      await live.close();
      disposeModel(model);
    }
  });

  it('refuses a bad parameter with 400 naming it, OpenAI style', async () => {
    const error = await rejection(client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'x' }], temperature: 3 }));
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect(error.param).toBe('temperature');
    expect(error.type).toBe('invalid_request_error');
    const tooLong = await rejection(client.completions.create({ model: MODEL, prompt: 'x'.repeat(60), max_tokens: 10 }));
    expect(tooLong.status).toBe(400);
    expect(tooLong.param).toBe('max_tokens');
    expect(tooLong.code).toBe('context_length_exceeded');
    const badRole = await rejection(fetchError({ model: MODEL, messages: [{ role: 'tool', content: 'x' }] }));
    expect(badRole.param).toBe('messages[0].role');
  });

  it('keeps the last truncate_prompt_tokens tokens of a prompt too long for the context (vLLM\'s parameter)', async () => {
    const body = { model: MODEL, prompt: 'x'.repeat(60), max_tokens: 10, temperature: 0, truncate_prompt_tokens: 20 };
    const res = await fetch(`${server.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect(res.status).toBe(200);
    const json = (await res.json()) as { usage: { prompt_tokens: number; completion_tokens: number } };
    expect(json.usage.prompt_tokens).toBe(20);
    expect(json.usage.completion_tokens).toBe(10);
    const chat = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'y'.repeat(200) }], max_tokens: 4, truncate_prompt_tokens: 16 }) });
    expect(((await chat.json()) as { usage: { prompt_tokens: number } }).usage.prompt_tokens).toBe(16);
  });

  it('with truncatePrompts, keeps what leaves room for the completion instead of refusing', async () => {
    const truncating = await startOpenAiServer(new OpenAiService({ models: [served], truncatePrompts: true }), { port: 0 });
    try {
      const res = await fetch(`${truncating.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL, prompt: 'x'.repeat(60), max_tokens: 10 }) });
      expect(res.status).toBe(200);
      // Context 64 − 10 completion tokens.
      expect(((await res.json()) as { usage: { prompt_tokens: number } }).usage.prompt_tokens).toBe(54);
    } finally {
      await truncating.close();
    }
  });

  it('answers 404 for an unknown model', async () => {
    const error = await rejection(client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }));
    expect(error).toBeInstanceOf(OpenAI.NotFoundError);
    expect(error.code).toBe('model_not_found');
    expect(error.param).toBe('model');
  });
});

/** Sends a body the typed client would not let through; rejects with the API error it gets. */
async function fetchError(body: unknown): Promise<never> {
  const response = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  const json = (await response.json()) as { error: object };
  throw OpenAI.APIError.generate(response.status, json, undefined, response.headers);
}
