/**
 * Where responses come from: a `ResponseSource` samples n responses to one prompt under one
 * sampling setting. Two kinds: a local engine checkpoint generating in process
 * (`LocalCheckpointSource`), and an OpenAI-compatible chat endpoint called through the LLM gateway
 * (`OpenAiChatSource`).
 */
import { ByteTokenizer, countParams, disposeModel, generateAsync, initBackend, loadModel, openCheckpoint, type BackendOptions, type CheckpointObjectStore, type Model } from '@xyp/engine';
import { z } from 'zod';
import { chatCompletionsUrl, endpointModel, type GatewayModel, type PairsEndpoint } from './endpoint';

export const SamplingSetting = z
  .object({
    /** Names the setting in provenance and summaries; default `t<temperature>-p<topP>`. */
    name: z.string().trim().min(1).optional(),
    temperature: z.number().min(0).max(2),
    topP: z.number().gt(0).max(1).default(1),
    maxTokens: z.number().int().positive().default(256),
  })
  .strict();
export type SamplingSettingInput = z.input<typeof SamplingSetting>;
export type SamplingSetting = z.output<typeof SamplingSetting> & { name: string };

/** A setting with its name filled in. */
export function namedSetting(input: SamplingSettingInput): SamplingSetting {
  const s = SamplingSetting.parse(input);
  return { ...s, name: s.name ?? `t${s.temperature}-p${s.topP}` };
}

export interface SampleRequest {
  prompt: string;
  setting: SamplingSetting;
  n: number;
  seed: number;
  signal?: AbortSignal;
}

export interface SampledText {
  text: string;
  finishReason?: string;
}

/** A source cannot answer this prompt (it does not fit the model's context): counted, not fatal. */
export class SkipSampleError extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'SkipSampleError';
  }
}

export interface ResponseSource {
  /** Unique among the run's sources; names the model in pairs and summaries. */
  readonly id: string;
  readonly kind: 'local' | 'openai';
  /** What provenance records of the source (checkpoint and size, or endpoint and model). */
  describe(): Record<string, unknown>;
  sample(request: SampleRequest): Promise<SampledText[]>;
  /** Frees what the source holds (a loaded model). */
  close?(): Promise<void>;
}

export interface LocalCheckpointSourceOptions {
  id: string;
  /** `<runId>/<stage>` in `store`, or a checkpoint directory. */
  checkpoint: string;
  store?: CheckpointObjectStore;
  backend?: BackendOptions;
}

/** Generation in process from an engine checkpoint (byte tokenizer, chat template), as `LocalEngine.generate` does. */
export class LocalCheckpointSource implements ResponseSource {
  readonly kind = 'local' as const;
  readonly id: string;
  private readonly tokenizer = new ByteTokenizer();
  private loading: Promise<Model> | undefined;
  private loaded: Model | undefined;

  constructor(private readonly options: LocalCheckpointSourceOptions) {
    this.id = options.id;
  }

  private model(): Promise<Model> {
    this.loading ??= (async () => {
      await initBackend(this.options.backend);
      const { sink } = await openCheckpoint(this.options.checkpoint, this.options.store);
      const model = await loadModel(sink, false);
      if (!model.params.lm_head) {
        disposeModel(model);
        throw new Error(`source ${this.id}: checkpoint ${this.options.checkpoint} has no LM head (a reward model cannot generate)`);
      }
      this.loaded = model;
      return model;
    })();
    return this.loading;
  }

  describe(): Record<string, unknown> {
    const config = this.loaded?.config;
    return {
      kind: this.kind,
      checkpoint: this.options.checkpoint,
      ...(config ? { params: countParams(config).total, layers: config.layers, width: config.width, context: config.contextLength } : {}),
    };
  }

  async sample(request: SampleRequest): Promise<SampledText[]> {
    const model = await this.model();
    const ids = this.tokenizer.encodeChat([{ role: 'user', content: request.prompt }], true).ids;
    const context = model.config.contextLength;
    if (ids.length >= context) throw new SkipSampleError(`prompt of ${ids.length} tokens does not fit the context of ${context}`);
    const samples = await generateAsync(model, [ids], {
      n: request.n,
      temperature: request.setting.temperature,
      topP: request.setting.topP,
      maxTokens: request.setting.maxTokens,
      eos: this.tokenizer.eosId,
      seed: request.seed,
      signal: request.signal,
    });
    return samples.map((s) => ({ text: this.tokenizer.decodeText(s.tokens), finishReason: s.finishReason }));
  }

  async close(): Promise<void> {
    const loading = this.loading;
    this.loading = undefined;
    this.loaded = undefined;
    const model = loading ? await loading.catch(() => undefined) : undefined;
    if (model) disposeModel(model);
  }
}

export interface OpenAiChatSourceOptions extends GatewayModel {
  id: string;
  /** The gateway was made for this source: `close()` closes it. Default false. */
  ownsGateway?: boolean;
}

/**
 * A chat model behind the LLM gateway (`gateway.chat`: its retries, timeouts, limits and cooldown
 * are the only ones), asked with n, temperature, top_p, max_tokens and seed.
 */
export class OpenAiChatSource implements ResponseSource {
  readonly kind = 'openai' as const;
  readonly id: string;

  constructor(private readonly options: OpenAiChatSourceOptions) {
    this.id = options.id;
  }

  /** A source over `endpoint` alone: a one-model gateway registry (model `id`), closed with the source. */
  static forEndpoint(options: PairsEndpoint & { id: string }): OpenAiChatSource {
    const { id, ...endpoint } = options;
    return new OpenAiChatSource({ id, ...endpointModel(id, endpoint), ownsGateway: true });
  }

  describe(): Record<string, unknown> {
    return { kind: this.kind, endpoint: chatCompletionsUrl(this.options.baseUrl), model: this.options.model };
  }

  async sample(request: SampleRequest): Promise<SampledText[]> {
    const result = await this.options.gateway.chat(
      this.options.name,
      {
        messages: [{ role: 'user', content: request.prompt }],
        temperature: request.setting.temperature,
        top_p: request.setting.topP,
        n: request.n,
        max_tokens: request.setting.maxTokens,
        seed: request.seed,
      },
      { signal: request.signal },
    );
    return result.choices.map((c) => ({ text: c.content, ...(c.finishReason ? { finishReason: c.finishReason } : {}) }));
  }

  async close(): Promise<void> {
    if (this.options.ownsGateway) this.options.gateway.close();
  }
}
