/**
 * OpenAI-compatible endpoints over local checkpoints: `GET /v1/models`, `GET /v1/models/{id}`,
 * `POST /v1/completions`, `POST /v1/chat/completions`. Independent of the HTTP framework: `handle`
 * takes Node's request and response and the path below `/v1`, so the same routes serve from a bare
 * `node:http` server (`xyp serve`) and from the rlhf app's Express instance.
 *
 * Response shapes follow the OpenAI API reference (and vLLM's server, which implements it):
 * `text_completion` / `chat.completion` objects with `choices[i].finish_reason` `stop` or `length`
 * and `usage`; with `stream: true`, Server-Sent Events `data: {chunk}\n\n` ending with
 * `data: [DONE]\n\n`, chunk objects `text_completion` / `chat.completion.chunk`, written as the
 * tokens are sampled.
 */
import { randomInt, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { TextDecoder } from 'node:util';
import { ByteTokenizer, generateAsync, type ChatMessage, type GenerationStep, type Model, type Sample } from '@xyp/engine';
import {
  ChatCompletionRequest,
  CompletionRequest,
  OpenAiError,
  invalidRequest,
  parseRequest,
  type FinishReason,
  type Usage,
} from './protocol';
import { QueueFullError, SerialQueue } from './serial-queue';
import { completeText } from './utf8-text';

export interface ServedModel {
  /** The name clients pass as `model`. */
  id: string;
  model: Model;
  /** Where the weights came from (checkpoint ID or directory), reported by `/v1/models`. */
  source: string;
  /** Unix seconds, for `/v1/models`. */
  created: number;
}

/** vLLM's `truncate_prompt_tokens`: each prompt's last k tokens (all of it when shorter or unset). */
function truncated(prompts: number[][], k: number | null | undefined): number[][] {
  return k == null ? prompts : prompts.map((p) => (p.length > k ? p.slice(p.length - k) : p));
}

export interface OpenAiServiceOptions {
  models: ServedModel[];
  /** Requests allowed to wait or run at once; more are refused with 503. */
  maxPending?: number;
  /** Largest accepted request body. */
  maxBodyBytes?: number;
  /** Receives one line per failed request that is not the client's fault. */
  onError?: (error: unknown) => void;
  /**
   * A prompt that leaves no room for the completion keeps its last tokens instead of being refused
   * (as if every request sent `truncate_prompt_tokens` = context − max_tokens, or three quarters of
   * the context without max_tokens). Off by default, as vLLM; the synthesis service turns it on for
   * the run's small embedded models.
   */
  truncatePrompts?: boolean;
}

interface SamplingParams {
  n: number;
  temperature: number;
  topP: number;
  maxTokens: number;
  stop: number[][];
  seed: number;
}

interface Choice {
  index: number;
  tokens: number[];
  text: string;
  finishReason: FinishReason;
}

interface ModelObject {
  id: string;
  object: 'model';
  created: number;
  owned_by: string;
  root: string;
  max_model_len: number;
}

/** A request body that a framework (Express's JSON parser) has already read. */
type RequestWithBody = IncomingMessage & { body?: unknown };

const unixNow = (): number => Math.floor(Date.now() / 1000);

export class OpenAiService {
  readonly tokenizer = new ByteTokenizer();
  private readonly models = new Map<string, ServedModel>();
  private readonly queue: SerialQueue;
  private readonly maxBodyBytes: number;

  constructor(private readonly options: OpenAiServiceOptions) {
    if (options.models.length === 0) throw new Error('OpenAiService: no models to serve');
    for (const m of options.models) {
      if (this.models.has(m.id)) throw new Error(`OpenAiService: model name "${m.id}" is given twice`);
      if (!m.model.params.lm_head) throw new Error(`OpenAiService: model "${m.id}" has no LM head (a reward model cannot generate)`);
      if (m.model.config.vocabSize !== this.tokenizer.vocabSize) {
        throw new Error(`OpenAiService: model "${m.id}" has a vocabulary of ${m.model.config.vocabSize}; the byte tokenizer needs ${this.tokenizer.vocabSize}`);
      }
      this.models.set(m.id, m);
    }
    this.queue = new SerialQueue(options.maxPending ?? 64);
    this.maxBodyBytes = options.maxBodyBytes ?? 1 << 20;
  }

  modelIds(): string[] {
    return [...this.models.keys()];
  }

  /** Answers one request; `path` is the part after `/v1` (`/models`, `/chat/completions`, ...). */
  async handle(req: RequestWithBody, res: ServerResponse, path: string): Promise<void> {
    try {
      const route = (path.split('?')[0] || '/').replace(/\/+$/, '') || '/';
      const method = req.method ?? 'GET';
      if (route === '/models') return this.expect(method, 'GET', () => sendJson(res, 200, this.listModels()));
      if (route.startsWith('/models/')) {
        return this.expect(method, 'GET', () => sendJson(res, 200, this.describeModel(this.find(decodeURIComponent(route.slice('/models/'.length)), null))));
      }
      if (route === '/completions') {
        this.expect(method, 'POST', () => undefined);
        return await this.completions(parseRequest(CompletionRequest, await this.readBody(req)), res);
      }
      if (route === '/chat/completions') {
        this.expect(method, 'POST', () => undefined);
        return await this.chatCompletions(parseRequest(ChatCompletionRequest, await this.readBody(req)), res);
      }
      throw new OpenAiError(404, `Unknown request URL: ${method} /v1${route}.`, 'invalid_request_error', null, 'unknown_url');
    } catch (error) {
      this.fail(res, error);
    }
  }

  private expect(method: string, wanted: string, then: () => void): void {
    if (method !== wanted) throw new OpenAiError(405, `Method ${method} is not allowed here; use ${wanted}.`, 'invalid_request_error', null, 'method_not_allowed');
    then();
  }

  private fail(res: ServerResponse, error: unknown): void {
    // Nobody is left to answer; the generation has stopped.
    if (error instanceof ClientGoneError) {
      res.end();
      return;
    }
    let failure: OpenAiError;
    if (error instanceof OpenAiError) failure = error;
    else if (error instanceof QueueFullError) failure = new OpenAiError(503, error.message, 'server_error', null, 'overloaded');
    else {
      this.options.onError?.(error);
      failure = new OpenAiError(500, `The server failed to answer: ${error instanceof Error ? error.message : String(error)}`, 'server_error');
    }
    if (res.headersSent) {
      res.end();
      return;
    }
    sendJson(res, failure.status, failure.body());
  }

  private listModels(): { object: 'list'; data: ModelObject[] } {
    return { object: 'list', data: [...this.models.values()].map((m) => this.describeModel(m)) };
  }

  private describeModel(m: ServedModel): ModelObject {
    // `root` and `max_model_len` are vLLM's extensions of the model object.
    return { id: m.id, object: 'model', created: m.created, owned_by: 'xyp', root: m.source, max_model_len: m.model.config.contextLength };
  }

  private find(name: string, param: string | null): ServedModel {
    const found = this.models.get(name);
    if (!found) throw new OpenAiError(404, `The model \`${name}\` does not exist.`, 'invalid_request_error', param, 'model_not_found');
    return found;
  }

  private async readBody(req: RequestWithBody): Promise<unknown> {
    // Express's JSON parser leaves `{}` and the stream unread for bodies it does not parse.
    const unread = req.readable && !req.readableEnded;
    const emptyObject = typeof req.body === 'object' && req.body !== null && Object.keys(req.body).length === 0;
    if (req.body !== undefined && !(unread && emptyObject)) return req.body;
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req) {
      const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
      size += buffer.length;
      if (size > this.maxBodyBytes) throw new OpenAiError(413, `The request body exceeds ${this.maxBodyBytes} bytes.`, 'invalid_request_error', null, 'request_too_large');
      chunks.push(buffer);
    }
    const text = Buffer.concat(chunks).toString('utf8');
    if (text.trim() === '') throw invalidRequest('The request body is empty; send a JSON object.', null, 'invalid_json');
    try {
      return JSON.parse(text);
    } catch (error) {
      throw invalidRequest(`The request body is not valid JSON: ${error instanceof Error ? error.message : String(error)}.`, null, 'invalid_json');
    }
  }

  /** The prompt tokens a request keeps: its `truncate_prompt_tokens`, else with `truncatePrompts` what leaves room for the completion. */
  private keepTokens(served: ServedModel, asked: number | null | undefined, maxTokens: number | null | undefined): number | undefined {
    if (asked != null) return asked;
    if (!this.options.truncatePrompts) return undefined;
    const context = served.model.config.contextLength;
    return Math.max(1, context - (maxTokens ?? Math.floor(context / 4)));
  }

  /**
   * Sampling parameters with the context check of vLLM: prompt plus requested tokens must fit the
   * model's context; without `max_tokens` a completion gets `defaultMax` or what is left of it.
   */
  private sampling(
    served: ServedModel,
    prompts: number[][],
    request: { n?: number | null; temperature?: number | null; top_p?: number | null; seed?: number | null; stop?: string | string[] | null },
    maxTokens: number | null | undefined,
    defaultMax: number,
    promptParam: string,
  ): SamplingParams {
    const context = served.model.config.contextLength;
    const longest = Math.max(...prompts.map((p) => p.length));
    if (prompts.some((p) => p.length === 0)) throw invalidRequest('The prompt is empty.', promptParam, 'empty_prompt');
    if (longest >= context) {
      throw invalidRequest(
        `This model's maximum context length is ${context} tokens. However, your prompt has ${longest} tokens, which leaves no room for a completion. Please reduce the length of the prompt.`,
        promptParam,
        'context_length_exceeded',
      );
    }
    if (maxTokens != null && longest + maxTokens > context) {
      throw invalidRequest(
        `This model's maximum context length is ${context} tokens. However, you requested ${longest + maxTokens} tokens (${longest} in the prompt, ${maxTokens} in the completion). Please reduce the length of the prompt or completion.`,
        'max_tokens',
        'context_length_exceeded',
      );
    }
    const stops = request.stop == null ? [] : typeof request.stop === 'string' ? [request.stop] : request.stop;
    if (stops.some((s) => s === '')) throw invalidRequest("Invalid value for 'stop': stop sequences must not be empty.", 'stop', 'invalid_value');
    return {
      n: request.n ?? 1,
      temperature: request.temperature ?? 1,
      topP: request.top_p ?? 1,
      maxTokens: maxTokens ?? Math.min(defaultMax, context - longest),
      stop: stops.map((s) => this.tokenizer.encode(s)),
      // Without a seed, OpenAI's sampling is not reproducible; a fresh seed per request matches that.
      seed: request.seed ?? randomInt(0, 2 ** 31 - 1),
    };
  }

  /**
   * One batched generation for every prompt × n, run alone through the queue. Decoding awaits the
   * event loop between steps, so `onStep`'s chunks go out as tokens are sampled and other requests
   * are read meanwhile; a client that disconnects stops its generation after the current step.
   */
  private async sample(served: ServedModel, prompts: number[][], p: SamplingParams, res: ServerResponse, onStep?: (step: GenerationStep) => void): Promise<Choice[]> {
    const abort = new AbortController();
    const gone = (): void => {
      if (!res.writableFinished) abort.abort(new ClientGoneError());
    };
    res.once('close', gone);
    try {
      const samples: Sample[] = await this.queue.run(() =>
        generateAsync(served.model, prompts, {
          n: p.n,
          temperature: p.temperature,
          topP: p.topP,
          maxTokens: p.maxTokens,
          stop: p.stop,
          eos: this.tokenizer.eosId,
          seed: p.seed,
          onStep,
          signal: abort.signal,
        }),
      );
      // generate returns rows prompt-major (prompt 0's n samples, then prompt 1's), OpenAI's choice order.
      return samples.map((s, index) => ({ index, tokens: s.tokens, text: completeText(s.tokens), finishReason: s.finishReason }));
    } finally {
      res.off('close', gone);
    }
  }

  private usage(prompts: number[][], choices: Choice[]): Usage {
    const prompt_tokens = prompts.reduce((a, p) => a + p.length, 0);
    const completion_tokens = choices.reduce((a, c) => a + c.tokens.length, 0);
    return { prompt_tokens, completion_tokens, total_tokens: prompt_tokens + completion_tokens };
  }

  private async completions(request: CompletionRequest, res: ServerResponse): Promise<void> {
    const served = this.find(request.model, 'model');
    const prompts = truncated(this.completionPrompts(request.prompt), this.keepTokens(served, request.truncate_prompt_tokens, request.max_tokens));
    // OpenAI's default `max_tokens` for completions is 16.
    const params = this.sampling(served, prompts, request, request.max_tokens, 16, 'prompt');
    const id = `cmpl-${randomUUID().replace(/-/g, '')}`;
    const created = unixNow();
    if (request.stream) {
      const chunk = (choice: { index: number; text: string; finish_reason: FinishReason | null }) => ({
        id,
        object: 'text_completion',
        created,
        model: served.id,
        choices: [{ ...choice, logprobs: null }],
      });
      const stream = new ChoiceStream(res, {
        delta: (index, text) => chunk({ index, text, finish_reason: null }),
        finish: (index, reason) => chunk({ index, text: '', finish_reason: reason }),
      });
      const choices = await this.sample(served, prompts, params, res, (step) => stream.step(step));
      const usage = this.usage(prompts, choices);
      stream.end(choices, request.stream_options?.include_usage ? { id, object: 'text_completion', created, model: served.id, choices: [], usage } : undefined);
      return;
    }
    const choices = await this.sample(served, prompts, params, res);
    const usage = this.usage(prompts, choices);
    sendJson(res, 200, {
      id,
      object: 'text_completion',
      created,
      model: served.id,
      choices: choices.map((c) => ({ index: c.index, text: c.text, logprobs: null, finish_reason: c.finishReason })),
      usage,
    });
  }

  private completionPrompts(prompt: CompletionRequest['prompt']): number[][] {
    const check = (ids: number[], param: string): number[] => {
      const bad = ids.findIndex((t) => t >= this.tokenizer.vocabSize);
      if (bad >= 0) throw invalidRequest(`Invalid value for '${param}': token id ${ids[bad]} is outside the vocabulary of ${this.tokenizer.vocabSize}.`, param, 'invalid_value');
      return ids;
    };
    if (typeof prompt === 'string') return [this.tokenizer.encode(prompt)];
    if (prompt.every((p) => typeof p === 'string')) return (prompt as string[]).map((p) => this.tokenizer.encode(p));
    if (prompt.every((p) => typeof p === 'number')) return [check(prompt as number[], 'prompt')];
    return (prompt as number[][]).map((p, i) => check(p, `prompt[${i}]`));
  }

  /**
   * The chat template of the byte tokenizer (`ByteTokenizer.encodeChat`): every message is its role
   * token (`<system>`, `<user>`, `<assistant>`), its UTF-8 bytes and `<eot>`; the prompt ends with
   * `<assistant>`, and the reply ends when the model samples `<eot>`. `developer` messages (OpenAI's
   * newer name for system instructions) take the `<system>` token.
   */
  chatPrompt(messages: ChatCompletionRequest['messages']): number[] {
    const turns: ChatMessage[] = messages.map((m) => ({
      role: m.role === 'developer' ? 'system' : m.role,
      content: typeof m.content === 'string' ? m.content : m.content.map((part) => part.text).join(''),
    }));
    return this.tokenizer.encodeChat(turns, true).ids;
  }

  private async chatCompletions(request: ChatCompletionRequest, res: ServerResponse): Promise<void> {
    const served = this.find(request.model, 'model');
    const maxTokens = request.max_completion_tokens ?? request.max_tokens;
    const prompts = truncated([this.chatPrompt(request.messages)], this.keepTokens(served, request.truncate_prompt_tokens, maxTokens));
    const params = this.sampling(served, prompts, request, maxTokens, Number.POSITIVE_INFINITY, 'messages');
    const id = `chatcmpl-${randomUUID().replace(/-/g, '')}`;
    const created = unixNow();
    if (request.stream) {
      const chunk = (choice: { index: number; delta: { role?: 'assistant'; content?: string }; finish_reason: FinishReason | null }) => ({
        id,
        object: 'chat.completion.chunk',
        created,
        model: served.id,
        choices: [{ ...choice, logprobs: null }],
      });
      const stream = new ChoiceStream(res, {
        start: (index) => chunk({ index, delta: { role: 'assistant', content: '' }, finish_reason: null }),
        delta: (index, content) => chunk({ index, delta: { content }, finish_reason: null }),
        finish: (index, reason) => chunk({ index, delta: {}, finish_reason: reason }),
      });
      const choices = await this.sample(served, prompts, params, res, (step) => stream.step(step));
      const usage = this.usage(prompts, choices);
      stream.end(choices, request.stream_options?.include_usage ? { id, object: 'chat.completion.chunk', created, model: served.id, choices: [], usage } : undefined);
      return;
    }
    const choices = await this.sample(served, prompts, params, res);
    const usage = this.usage(prompts, choices);
    sendJson(res, 200, {
      id,
      object: 'chat.completion',
      created,
      model: served.id,
      choices: choices.map((c) => ({
        index: c.index,
        message: { role: 'assistant', content: c.text, refusal: null },
        logprobs: null,
        finish_reason: c.finishReason,
      })),
      usage,
    });
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

/** The client closed the connection before its answer was complete. */
class ClientGoneError extends Error {
  constructor() {
    super('the client closed the connection');
    this.name = 'ClientGoneError';
  }
}

interface StreamShape {
  start?: (index: number) => unknown;
  delta: (index: number, text: string) => unknown;
  finish: (index: number, reason: FinishReason) => unknown;
}

/**
 * Writes choices as Server-Sent Events while they are generated: the headers and the `start`
 * chunks (chat: `delta.role`) with the first step, then per step one chunk per new token and choice
 * (choices interleaved step by step) and a choice's finish chunk as soon as it ends; `end` adds
 * anything not yet written, the optional usage chunk and `[DONE]`. The text of a choice's chunks
 * joins to its non-streamed text: the tokens come from `GenerationStep`, which holds back a
 * possible stop sequence, and bytes of a multi-byte character are held until the character is
 * complete (a streaming UTF-8 decoder per choice); a character still incomplete when the choice
 * ends is left out, in both.
 */
class ChoiceStream {
  private started = false;
  private readonly decoders = new Map<number, TextDecoder>();
  private readonly finished = new Set<number>();

  constructor(
    private readonly res: ServerResponse,
    private readonly shape: StreamShape,
  ) {}

  step(step: GenerationStep): void {
    this.begin(step.tokens.length);
    step.tokens.forEach((tokens, index) => {
      for (const token of tokens) {
        // Special tokens (>= 256) have no text; the byte tokenizer's ids below 256 are UTF-8 bytes.
        const text = token < 256 ? this.decoder(index).decode(Uint8Array.of(token), { stream: true }) : '';
        if (text !== '') this.send(this.shape.delta(index, text));
      }
      const reason = step.finished[index];
      if (reason) this.finish(index, reason);
    });
  }

  end(choices: Choice[], usage: unknown): void {
    this.begin(choices.length);
    for (const c of choices) this.finish(c.index, c.finishReason);
    if (usage) this.send(usage);
    if (!this.res.destroyed) this.res.write('data: [DONE]\n\n');
    this.res.end();
  }

  private begin(choices: number): void {
    if (this.started) return;
    this.started = true;
    this.res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache', Connection: 'keep-alive' });
    // Without this, Node may hold the headers until the first body write.
    this.res.flushHeaders();
    if (this.shape.start) for (let index = 0; index < choices; index++) this.send(this.shape.start(index));
  }

  private finish(index: number, reason: FinishReason): void {
    if (this.finished.has(index)) return;
    this.finished.add(index);
    // Bytes still held by the streaming decoder are an incomplete last character: left out, as
    // in the whole response (`completeText`), rather than flushed as U+FFFD.
    this.decoders.delete(index);
    this.send(this.shape.finish(index, reason));
  }

  private decoder(index: number): TextDecoder {
    let decoder = this.decoders.get(index);
    if (!decoder) this.decoders.set(index, (decoder = new TextDecoder('utf-8', { fatal: false })));
    return decoder;
  }

  /** A client that went away leaves a destroyed response; writing to it would be wasted work. */
  private send(value: unknown): void {
    if (!this.res.destroyed) this.res.write(`data: ${JSON.stringify(value)}\n\n`);
  }
}
