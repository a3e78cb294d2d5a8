/**
 * `PolicyScorer` (`@xyp/policy-eval`) on an engine `Model` with the byte tokenizer: batched forward
 * passes without dropout, tensors released per batch (`tf.tidy`), the event loop served and the
 * signal checked between batches.
 *
 * Windows (lm-evaluation-harness `loglikelihood`): a request is scored as the tokens
 * `context + continuation` cut from the LEFT to the model's context + 1 (the last token is only a
 * target), so the context loses its oldest tokens first and the continuation stays whole. When the
 * continuation alone is longer than the context, only its last `contextLength` tokens are counted
 * (`tokens` says how many; `truncated: true`). An empty context is the `<eot>` token — the document
 * boundary the model was trained after — so every continuation token is predicted.
 *
 * Conversations are templated as in SFT (`encodeChat`, no generation prompt) and scored on the
 * train mask (assistant content and its closing `<eot>`), cut from the left like requests.
 * `logLikelihoodRolling` scores every token of a text in disjoint windows of `contextLength`
 * tokens (the first after `<eot>`, each later one after the last token of the window before it).
 * `generate` is greedy (temperature 0), stops at `<eot>` or a stop string, and cuts each prompt
 * from the left to leave room for `maxTokens`.
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  ByteTokenizer,
  disposeModel,
  forwardHidden,
  generate,
  initBackend,
  lmLogits,
  loadModel,
  openCheckpoint,
  parseCheckpointRef,
  tokenNll,
  yieldToEventLoop,
  type BackendOptions,
  type CheckpointObjectStore,
  type Model,
} from '@xyp/engine';
import {
  charCount,
  type ConversationLogLikelihood,
  type EvalMessage,
  type GenerateOptions,
  type LogLikelihoodRequest,
  type LogLikelihoodResult,
  type PolicyScorer,
  type RollingLogLikelihood,
} from '@xyp/policy-eval';

/** A token sequence to score: `scored[i] = 1` where `ids[i]` is predicted from the tokens before it. */
interface ScoredSequence {
  ids: number[];
  scored: number[];
}

export interface LocalPolicyScorerOptions {
  /** Sequences per forward pass (default 16). */
  batchSize?: number;
  /** Name in reports (default `local`). */
  name?: string;
}

/** Σ log p and count of the scored tokens of each sequence, `batchSize` sequences per forward pass. */
async function scoreSequences(model: Model, sequences: readonly ScoredSequence[], batchSize: number, signal?: AbortSignal): Promise<{ logLikelihood: number; tokens: number; truncated: boolean }[]> {
  const C = model.config.contextLength;
  const out: { logLikelihood: number; tokens: number; truncated: boolean }[] = [];
  for (let start = 0; start < sequences.length; start += batchSize) {
    signal?.throwIfAborted();
    const part = sequences.slice(start, start + batchSize).map((s) => {
      const keep = Math.min(s.ids.length, C + 1);
      const dropped = s.ids.length - keep;
      const droppedScored = s.scored.slice(1, dropped + 1).some((x) => x === 1);
      return { ids: s.ids.slice(dropped), scored: s.scored.slice(dropped), truncated: droppedScored };
    });
    const T = Math.max(1, ...part.map((s) => s.ids.length - 1));
    const B = part.length;
    const ids = new Int32Array(B * T);
    const targets = new Int32Array(B * T);
    const weights = new Float32Array(B * T);
    part.forEach((s, b) => {
      for (let t = 0; t + 1 < s.ids.length; t++) {
        ids[b * T + t] = s.ids[t];
        targets[b * T + t] = s.ids[t + 1];
        weights[b * T + t] = s.scored[t + 1];
      }
    });
    // Right padding: causal attention keeps every real position blind to the pads after it.
    const nll = tf.tidy(() => tokenNll(lmLogits(model, forwardHidden(model, { ids, batch: B, seq: T })), tf.tensor1d(targets, 'int32')).dataSync() as Float32Array);
    part.forEach((s, b) => {
      let sum = 0;
      let tokens = 0;
      for (let t = 0; t < T; t++) {
        if (weights[b * T + t] === 1) {
          sum -= nll[b * T + t];
          tokens += 1;
        }
      }
      out.push({ logLikelihood: sum, tokens, truncated: s.truncated });
    });
    await yieldToEventLoop();
  }
  return out;
}

/** The scorer of a loaded model; the caller keeps ownership of the model (dispose it when done). */
export function localPolicyScorer(model: Model, tokenizer: ByteTokenizer = new ByteTokenizer(), options: LocalPolicyScorerOptions = {}): PolicyScorer {
  const batchSize = Math.max(1, options.batchSize ?? 16);
  const C = model.config.contextLength;
  return {
    name: options.name ?? 'local',

    async logLikelihood(requests: readonly LogLikelihoodRequest[], opts: { signal?: AbortSignal } = {}): Promise<LogLikelihoodResult[]> {
      const sequences = requests.map((r) => {
        const context = r.context === '' ? [tokenizer.eosId] : tokenizer.encode(r.context);
        const continuation = tokenizer.encode(r.continuation);
        return { ids: [...context, ...continuation], scored: [...context.map(() => 0), ...continuation.map(() => 1)] };
      });
      const scores = await scoreSequences(model, sequences, batchSize, opts.signal);
      return scores.map((s, i) => ({ logLikelihood: s.logLikelihood, tokens: s.tokens, chars: charCount(requests[i].continuation), ...(s.truncated ? { truncated: true } : {}) }));
    },

    async conversationLogLikelihood(conversations: readonly (readonly EvalMessage[])[], opts: { signal?: AbortSignal } = {}): Promise<ConversationLogLikelihood[]> {
      const sequences = conversations.map((messages) => {
        const { ids, trainMask } = tokenizer.encodeChat([...messages], false);
        return { ids, scored: trainMask };
      });
      const scores = await scoreSequences(model, sequences, batchSize, opts.signal);
      return scores.map((s) => ({ logLikelihood: s.logLikelihood, tokens: s.tokens, ...(s.truncated ? { truncated: true } : {}) }));
    },

    async logLikelihoodRolling(texts: readonly string[], opts: { signal?: AbortSignal } = {}): Promise<RollingLogLikelihood[]> {
      const windows: { text: number; seq: ScoredSequence }[] = [];
      texts.forEach((text, k) => {
        const tokens = [tokenizer.eosId, ...tokenizer.encode(text)];
        for (let s = 1; s < tokens.length; s += C) {
          const ids = tokens.slice(s - 1, Math.min(tokens.length, s + C));
          windows.push({ text: k, seq: { ids, scored: ids.map((_, i) => (i === 0 ? 0 : 1)) } });
        }
      });
      const scores = await scoreSequences(
        model,
        windows.map((w) => w.seq),
        batchSize,
        opts.signal,
      );
      const out = texts.map(() => ({ logLikelihood: 0, tokens: 0 }));
      windows.forEach((w, i) => {
        out[w.text].logLikelihood += scores[i].logLikelihood;
        out[w.text].tokens += scores[i].tokens;
      });
      return out;
    },

    async generate(prompts: readonly string[], opts: GenerateOptions): Promise<string[]> {
      const maxTokens = Math.max(1, Math.min(opts.maxTokens, C - 1));
      const stop = (opts.stop ?? []).filter((s) => s !== '').map((s) => tokenizer.encode(s));
      const texts: string[] = [];
      for (let start = 0; start < prompts.length; start += batchSize) {
        opts.signal?.throwIfAborted();
        const ids = prompts.slice(start, start + batchSize).map((p) => {
          const all = p === '' ? [tokenizer.eosId] : tokenizer.encode(p);
          return all.slice(Math.max(0, all.length - (C - maxTokens)));
        });
        const samples = generate(model, ids, { temperature: 0, maxTokens, eos: tokenizer.eosId, stop });
        for (const s of samples) texts.push(tokenizer.decodeText(s.tokens));
        await yieldToEventLoop();
      }
      return texts;
    },
  };
}

/**
 * Loads a checkpoint (ID in `store`, or a directory) on the configured backend and returns its
 * scorer, named by the checkpoint ID; `dispose` releases the weights.
 */
export async function openPolicyScorer(
  ref: string,
  store?: CheckpointObjectStore,
  options: LocalPolicyScorerOptions & { backend?: BackendOptions } = {},
): Promise<{ scorer: PolicyScorer; model: Model; dispose: () => void }> {
  await initBackend(options.backend);
  const { ref: parsed, sink } = await openCheckpoint(ref, parseCheckpointRef(ref).kind === 'store' ? store : undefined);
  const model = await loadModel(sink, false);
  if (!model.params.lm_head) {
    disposeModel(model);
    throw new Error(`${parsed.id}: the checkpoint has no LM head (a reward model?); policy evaluation needs a language model`);
  }
  const scorer = localPolicyScorer(model, new ByteTokenizer(), { ...options, name: options.name ?? parsed.id });
  return { scorer, model, dispose: () => disposeModel(model) };
}
