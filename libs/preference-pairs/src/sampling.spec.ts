import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PreferenceRecord } from '@xyp/contracts';
import { runRewardPairs, type RunRewardPairsInput } from './run';
import { judgeServer, tinyCheckpoint, xypServe, type ChatServer, type ServeHandle } from './testing/fixtures';

const dir = mkdtempSync(join(tmpdir(), 'xyp-pairs-'));
let small: string;
let large: string;
let served: ServeHandle;
let judge: ChatServer;

beforeAll(async () => {
  // Two local checkpoints of different sizes, and a third model behind the repo's real
  // OpenAI-compatible server (`xyp serve`).
  small = await tinyCheckpoint(join(dir, 'small'), { layers: 1, width: 32, seed: 1 });
  large = await tinyCheckpoint(join(dir, 'large'), { layers: 2, width: 48, seed: 2 });
  const remote = await tinyCheckpoint(join(dir, 'remote'), { layers: 1, width: 32, seed: 3, steps: 30 });
  served = await xypServe(remote, 'tiny-remote');
  // Prefers the answer with more letters (position-independent); equal counts are a tie.
  judge = await judgeServer('', { score: (answer) => Math.min(10, (answer.match(/[a-z]/g) ?? []).length / 3) });
});

afterAll(async () => {
  await served?.close();
  await judge?.close();
  rmSync(dir, { recursive: true, force: true });
});

const PROMPTS = [
  JSON.stringify({ id: 'g1', prompt: 'the rate', set: 'general' }),
  JSON.stringify({ id: 'f1', prompt: 'profit was', category: 'finance.business-analysis' }),
].join('\n');

function input(extra: Partial<RunRewardPairsInput> = {}): RunRewardPairsInput {
  const config = {
    sources: [
      { kind: 'local', id: 'local-small', checkpoint: small },
      { kind: 'local', id: 'local-large', checkpoint: large },
      { kind: 'openai', id: 'remote', baseUrl: served.baseUrl, model: served.model, backoffMs: 10 },
    ],
    settings: [
      { name: 'cool', temperature: 0.7, topP: 0.9, maxTokens: 24 },
      { name: 'hot', temperature: 1.3, topP: 1, maxTokens: 24 },
    ],
    samplesPerSetting: 2,
    seed: 5,
    maxPairsPerPrompt: 12,
    judge: { baseUrl: judge.baseUrl, model: 'letters', minMargin: 0.5, backoffMs: 1 },
  };
  return { config: { text: JSON.stringify(config) }, prompts: { text: PROMPTS }, ...extra };
}

describe('sampling from several models and settings', () => {
  it('samples every prompt from every source under every setting, and records models, settings and seeds', async () => {
    const out = await runRewardPairs(input());
    // 2 prompts × 3 sources × 2 settings × n = 2.
    expect(out.summary.samples).toBe(24);
    expect(out.summary.perSource).toMatchObject({ 'local-small': { samples: 8 }, 'local-large': { samples: 8 }, remote: { samples: 8 } });
    const combos = ['local-large/cool', 'local-large/hot', 'local-small/cool', 'local-small/hot', 'remote/cool', 'remote/hot'];
    expect(Object.keys(out.summary.perSourceSetting).sort()).toEqual(combos);
    for (const combo of combos) expect(out.summary.perSourceSetting[combo].samples, combo).toBe(4);
    // The distinct non-empty responses come from several sources and settings, each named.
    const origins = new Set(out.responses.flatMap((r) => [`${r.source}/${r.setting.name}`, ...r.alsoFrom.map((o) => `${o.source}/${o.setting}`)]));
    expect(origins.size).toBeGreaterThanOrEqual(5);
    expect([...origins].every((o) => combos.includes(o))).toBe(true);
    expect(out.summary.responses + out.summary.emptySamples + out.summary.duplicateSamples).toBe(24);
    // Sources of different sizes, and the endpoint, as provenance.
    const sources = out.summary.sources as Record<string, { params?: number; kind: string; endpoint?: string; model?: string }>;
    expect(sources['local-large'].params).toBeGreaterThan(sources['local-small'].params as number);
    expect(sources.remote).toEqual({ kind: 'openai', endpoint: `${served.baseUrl}/v1/chat/completions`, model: 'tiny-remote' });

    expect(out.records.length).toBeGreaterThan(0);
    expect(out.summary.candidatePairs).toBe(out.summary.kept + Object.values(out.summary.dropped).reduce((s, n) => s + (n ?? 0), 0));
    const models = new Set<string>();
    for (const record of out.records) {
      PreferenceRecord.parse(record);
      const p = record.provenance as {
        models: string[];
        settings: string[];
        seed: number;
        labeller: string;
        judgePromptVersion: string;
        chosen: { source: string; setting: { name: string; temperature: number; topP: number }; seed: number };
        rejected: { source: string; setting: { name: string } };
      };
      expect(p.models).toEqual([p.chosen.source, p.rejected.source]);
      expect(p.settings).toEqual([p.chosen.setting.name, p.rejected.setting.name]);
      expect(p.chosen.setting.temperature).toBe(p.chosen.setting.name === 'cool' ? 0.7 : 1.3);
      expect(Number.isInteger(p.chosen.seed)).toBe(true);
      expect([p.seed, p.labeller, p.judgePromptVersion]).toEqual([5, 'judge', 'pairwise-v1']);
      expect(record.margin).toBeGreaterThanOrEqual(0.5);
      p.models.forEach((m) => models.add(m));
      // The judge's preference, the letters count, decided the side.
      const letters = (t: string) => (t.match(/[a-z]/g) ?? []).length;
      expect(letters(record.chosen[0].content)).toBeGreaterThan(letters(record.rejected[0].content));
    }
    expect(models.size).toBeGreaterThanOrEqual(2);
    expect(out.records.every((r) => r.phase === (r.set === 'finance' ? 'finetune' : 'pretrain'))).toBe(true);
    expect(out.collections.pretrain.every((r) => r.provenance?.promptId === 'g1')).toBe(true);
    expect(out.collections.finetune.every((r) => r.provenance?.promptId === 'f1')).toBe(true);
  });

  it('reproduces the same samples from the same seed, and others from another seed or n', async () => {
    const [a, b, c] = [await runRewardPairs(input()), await runRewardPairs(input()), await runRewardPairs(input({ overrides: { seed: 6, samplesPerSetting: 1 } }))];
    expect(b.files['samples.jsonl']).toBe(a.files['samples.jsonl']);
    expect(b.files['pretrain.jsonl']).toBe(a.files['pretrain.jsonl']);
    expect(c.summary.samples).toBe(12);
    const textsOf = (o: typeof a) => new Set(o.responses.map((r) => `${r.source}:${r.text}`));
    const overlap = [...textsOf(c)].filter((t) => textsOf(a).has(t)).length;
    expect(overlap).toBeLessThan(textsOf(c).size);
  });
});
