import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from './backend';
import { generate, generateAsync, sampleToken, type GenerationStep } from './generate';
import { forwardHidden, initParams, lmLogits, type KvCache } from './model';
import { Rng } from './rng';

beforeAll(async () => {
  await initBackend();
});

const model = () => initParams({ vocabSize: 12, contextLength: 24, layers: 2, width: 16, heads: 2 }, 5);

describe('generation', () => {
  it('decoding with the KV cache gives the logits of a full forward pass', () => {
    const m = model();
    const ids = Int32Array.from([3, 1, 4, 1, 5, 9]);
    const full = tf.tidy(() => lmLogits(m, forwardHidden(m, { ids, batch: 1, seq: 6 })).dataSync());
    const cache: KvCache = { k: [], v: [], length: 0 };
    tf.tidy(() => forwardHidden(m, { ids: ids.slice(0, 5), batch: 1, seq: 5, cache }));
    const last = tf.tidy(() => lmLogits(m, forwardHidden(m, { ids: ids.slice(5), batch: 1, seq: 1, cache })).dataSync());
    for (let v = 0; v < 12; v++) expect(last[v]).toBeCloseTo(full[5 * 12 + v], 4);
    for (const t of [...cache.k, ...cache.v]) t.dispose();
  });

  it('samples n completions per prompt reproducibly from a seed, within max tokens', () => {
    const m = model();
    const prompts = [[1, 2, 3], [4]];
    const a = generate(m, prompts, { n: 3, maxTokens: 5, temperature: 0.9, topP: 0.9, seed: 7 });
    const b = generate(m, prompts, { n: 3, maxTokens: 5, temperature: 0.9, topP: 0.9, seed: 7 });
    expect(a).toEqual(b);
    expect(a.map((s) => s.prompt)).toEqual([0, 0, 0, 1, 1, 1]);
    for (const s of a) expect(s.tokens.length).toBeLessThanOrEqual(5);
    const c = generate(m, prompts, { n: 3, maxTokens: 5, temperature: 0.9, topP: 0.9, seed: 8 });
    expect(c).not.toEqual(a);
  });

  it('left-padded batched prompts decode like the same prompt alone (greedy)', () => {
    const m = model();
    const alone = generate(m, [[4]], { maxTokens: 6, temperature: 0 });
    const batched = generate(m, [[1, 2, 3, 5, 6], [4]], { maxTokens: 6, temperature: 0 });
    expect(batched[1].tokens).toEqual(alone[0].tokens);
  });

  it('ends a sample at a stop sequence or the end token', () => {
    const m = model();
    const free = generate(m, [[1]], { maxTokens: 8, temperature: 0 })[0].tokens;
    const stop = free.slice(2, 4);
    const stopped = generate(m, [[1]], { maxTokens: 8, temperature: 0, stop: [stop] })[0];
    const at = free.findIndex((_, i) => i + 1 < free.length && free[i] === stop[0] && free[i + 1] === stop[1]);
    expect(stopped.finishReason).toBe('stop');
    expect(stopped.tokens).toEqual(free.slice(0, at));
    const eos = generate(m, [[1]], { maxTokens: 8, temperature: 0, eos: free[1] })[0];
    expect(eos).toEqual({ prompt: 0, tokens: free.slice(0, free.indexOf(free[1])), finishReason: 'stop' });
  });

  it('top-p keeps only the nucleus and temperature 0 is greedy', () => {
    const logits = Float32Array.from([0, Math.log(6), Math.log(3), Math.log(1)]);
    const rng = new Rng(1);
    const seen = new Set(Array.from({ length: 200 }, () => sampleToken(logits, 1, 0.8, rng)));
    expect([...seen].sort()).toEqual([1, 2]);
    expect(sampleToken(logits, 0, 1, rng)).toBe(1);
  });

  it('reports every step to onStep, holding back a token that may start a stop sequence, and samples as without it', () => {
    const m = model();
    const free = generate(m, [[1]], { maxTokens: 8, temperature: 0 })[0].tokens;
    // A stop sequence that starts with a generated token but never completes: that token is held
    // back when sampled and reported with a later one.
    const absent = Array.from({ length: 12 }, (_, t) => t).find((t) => !free.includes(t)) as number;
    const options = { n: 3, maxTokens: 8, temperature: 0.9, seed: 11, stop: [[free[2], absent]], eos: 0 };
    const steps: GenerationStep[] = [];
    const samples = generate(m, [[1], [2, 3]], { ...options, onStep: (s) => steps.push(s) });
    expect(samples).toEqual(generate(m, [[1], [2, 3]], options));
    expect(steps.map((s) => s.step)).toEqual(steps.map((_, i) => i));
    const last = steps[steps.length - 1];
    samples.forEach((sample, b) => {
      expect(steps.flatMap((s) => s.tokens[b])).toEqual(sample.tokens);
      expect(last.finished[b]).toBe(sample.finishReason);
      const endedAt = steps.findIndex((s) => s.finished[b] !== null);
      for (const s of steps.slice(endedAt + 1)) expect(s.tokens[b]).toEqual([]);
    });

    const greedy: GenerationStep[] = [];
    const held = generate(m, [[1]], { maxTokens: 8, temperature: 0, stop: [[free[2], absent]], onStep: (s) => greedy.push(s) })[0];
    expect(held.tokens).toEqual(free);
    const first = free.indexOf(free[2]);
    expect(greedy[first].tokens[0]).toEqual([]);
    expect(greedy.flatMap((s) => s.tokens[0])).toEqual(free);
  });

  it('generateAsync gives the same samples while the event loop runs between steps, and stops on abort', async () => {
    const m = model();
    const options = { n: 2, maxTokens: 6, temperature: 0.9, seed: 3 };
    let turns = 0;
    let spinning = true;
    const spin = (): void => {
      if (!spinning) return;
      turns += 1;
      setImmediate(spin);
    };
    setImmediate(spin);
    const seen: number[] = [];
    const samples = await generateAsync(m, [[1, 2]], { ...options, onStep: () => seen.push(turns) });
    spinning = false;
    expect(samples).toEqual(generate(m, [[1, 2]], options));
    expect(seen).toHaveLength(6);
    for (let i = 1; i < seen.length; i++) expect(seen[i]).toBeGreaterThan(seen[i - 1]);

    const before = tf.memory().numTensors;
    const controller = new AbortController();
    const decoded: number[] = [];
    const aborted = generateAsync(m, [[1, 2]], {
      ...options,
      signal: controller.signal,
      onStep: (s) => {
        decoded.push(s.step);
        if (s.step === 2) controller.abort(new Error('client went away'));
      },
    });
    await expect(aborted).rejects.toThrow('client went away');
    expect(decoded).toEqual([0, 1, 2]);
    const failing = (): never => {
      throw new Error('callback failed');
    };
    expect(() => generate(m, [[1, 2]], { ...options, onStep: failing })).toThrow('callback failed');
    // The KV cache is released however decoding ends.
    expect(tf.memory().numTensors).toBe(before);
  });
});
