/**
 * Pair construction: every prompt is sampled by every source under every setting (n responses
 * each), the distinct responses are paired, each candidate pair is labelled by the first labeller
 * that does not abstain, and only confident labels become `PreferenceRecord`s.
 */
import { createHash } from 'node:crypto';
import { defaultPhaseOf, type PreferenceRecord, type PreferenceSet } from '@xyp/contracts';
import { SplitMix32, deriveSeed } from '@xyp/random';
import type { DropReason, Labeller, PairCandidate, PairLabel, Response } from './labeller';
import type { PromptSample } from './prompts';
import { SkipSampleError, type ResponseSource, type SamplingSetting } from './sources';

export interface BuildPairsOptions {
  prompts: readonly PromptSample[];
  sources: readonly ResponseSource[];
  settings: readonly SamplingSetting[];
  /** Responses per (prompt, source, setting): the request's n. */
  samplesPerSetting: number;
  /** In precedence order (human labels first). */
  labellers: readonly Labeller[];
  seed: number;
  /**
   * `cross` (default): only pairs of responses from different sources or settings; `all`: also two
   * samples of the same source and setting.
   */
  pairing?: 'cross' | 'all';
  /** Candidate pairs per prompt, pairs of different sources first (human-labelled pairs always). Default 8. */
  maxPairsPerPrompt?: number;
  /** Labelling calls in flight at once. Default 4. */
  concurrency?: number;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number, unit: string, message: string) => Promise<void> | void;
}

export interface DroppedPair {
  promptId: string;
  a: string;
  b: string;
  models: [string, string];
  labeller: string | null;
  reason: DropReason;
  margin?: number;
  details?: Record<string, unknown>;
}

export interface LabellerCounts {
  labelled: number;
  kept: number;
  dropped: number;
}

export interface PairsSummary {
  prompts: number;
  /** Responses sampled (before removing empty and duplicate ones). */
  samples: number;
  emptySamples: number;
  duplicateSamples: number;
  /** Requests a source could not answer, by reason. */
  skippedRequests: Record<string, number>;
  responses: number;
  candidatePairs: number;
  kept: number;
  dropped: Partial<Record<DropReason, number>>;
  perLabeller: Record<string, LabellerCounts>;
  /** `source-a vs source-b` (sorted): candidates and kept pairs. */
  perModelPair: Record<string, { candidates: number; kept: number }>;
  perSource: Record<string, { samples: number; chosen: number; rejected: number }>;
  /** `source/setting`: responses sampled and how many of them were empty. */
  perSourceSetting: Record<string, { samples: number; empty: number }>;
  perSet: Record<PreferenceSet, number>;
  seed: number;
  samplesPerSetting: number;
  settings: SamplingSetting[];
  sources: Record<string, Record<string, unknown>>;
  labellers: Record<string, Record<string, unknown>>;
}

export interface BuildPairsOutput {
  records: PreferenceRecord[];
  responses: Response[];
  dropped: DroppedPair[];
  summary: PairsSummary;
}

const sha = (...parts: string[]): string => createHash('sha256').update(parts.join('\u0000')).digest('hex');

export function responseIdOf(promptId: string, text: string): string {
  return `r-${sha(promptId, text).slice(0, 12)}`;
}

export function modelPairKey(a: string, b: string): string {
  return [a, b].sort().join(' vs ');
}

/** Runs `work` over `items`, at most `limit` at once, results in item order. */
async function pool<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const runners = Array.from({ length: Math.min(Math.max(1, limit), items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await work(items[i]);
    }
  });
  await Promise.all(runners);
  return out;
}

function shuffle<T>(items: T[], seed: number): T[] {
  const rng = new SplitMix32(seed);
  for (let i = items.length - 1; i > 0; i--) {
    const j = rng.nextInt(i + 1);
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

/** The candidate pairs of one prompt's responses (a before b by response id). */
export function candidatePairs(
  prompt: PromptSample,
  responses: readonly Response[],
  options: { pairing: 'cross' | 'all'; max: number; seed: number; wanted: (c: PairCandidate) => boolean },
): PairCandidate[] {
  const sorted = [...responses].sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
  const wanted: PairCandidate[] = [];
  const tiers: PairCandidate[][] = [[], [], []];
  for (let i = 0; i < sorted.length; i++) {
    for (let j = i + 1; j < sorted.length; j++) {
      const c = { prompt, a: sorted[i], b: sorted[j] };
      const tier = c.a.source !== c.b.source ? 0 : c.a.setting.name !== c.b.setting.name ? 1 : 2;
      if (options.wanted(c)) wanted.push(c);
      else if (tier < 2 || options.pairing === 'all') tiers[tier].push(c);
    }
  }
  const rest = tiers.flatMap((tier, t) => shuffle(tier, deriveSeed(options.seed, 'pairs', prompt.id, t)));
  return [...wanted, ...rest.slice(0, Math.max(0, options.max - wanted.length))];
}

function provenanceOf(r: Response): Record<string, unknown> {
  return {
    responseId: r.id,
    source: r.source,
    setting: { name: r.setting.name, temperature: r.setting.temperature, topP: r.setting.topP, maxTokens: r.setting.maxTokens },
    seed: r.seed,
    index: r.index,
    ...(r.finishReason ? { finishReason: r.finishReason } : {}),
    ...(r.alsoFrom.length > 0 ? { alsoFrom: r.alsoFrom } : {}),
  };
}

export async function buildPreferencePairs(options: BuildPairsOptions): Promise<BuildPairsOutput> {
  const { prompts, sources, settings, labellers, seed, signal } = options;
  const n = options.samplesPerSetting;
  if (sources.length === 0) throw new Error('no response sources');
  if (settings.length === 0) throw new Error('no sampling settings');
  if (labellers.length === 0) throw new Error('no labellers');
  const ids = new Set<string>();
  for (const s of sources) {
    if (ids.has(s.id)) throw new Error(`two response sources are named ${s.id}`);
    ids.add(s.id);
  }
  const names = new Set<string>();
  for (const s of settings) {
    if (names.has(s.name)) throw new Error(`two sampling settings are named ${s.name}`);
    names.add(s.name);
  }
  const summary: PairsSummary = {
    prompts: prompts.length,
    samples: 0,
    emptySamples: 0,
    duplicateSamples: 0,
    skippedRequests: {},
    responses: 0,
    candidatePairs: 0,
    kept: 0,
    dropped: {},
    perLabeller: Object.fromEntries(labellers.map((l) => [l.name, { labelled: 0, kept: 0, dropped: 0 }])),
    perModelPair: {},
    perSource: Object.fromEntries(sources.map((s) => [s.id, { samples: 0, chosen: 0, rejected: 0 }])),
    perSourceSetting: Object.fromEntries(sources.flatMap((s) => settings.map((t) => [`${s.id}/${t.name}`, { samples: 0, empty: 0 }]))),
    perSet: { finance: 0, general: 0 },
    seed,
    samplesPerSetting: n,
    settings: [...settings],
    sources: {},
    labellers: Object.fromEntries(labellers.map((l) => [l.name, l.describe()])),
  };
  const records: PreferenceRecord[] = [];
  const allResponses: Response[] = [];
  const dropped: DroppedPair[] = [];
  const wanted = (c: PairCandidate) => labellers.some((l) => l.wants?.(c) ?? false);

  for (let p = 0; p < prompts.length; p++) {
    signal?.throwIfAborted();
    const prompt = prompts[p];
    const byText = new Map<string, Response>();
    for (const source of sources) {
      for (const setting of settings) {
        const requestSeed = deriveSeed(seed, 'sample', prompt.id, source.id, setting.name);
        let texts;
        try {
          texts = await source.sample({ prompt: prompt.prompt, setting, n, seed: requestSeed, signal });
        } catch (error) {
          if (!(error instanceof SkipSampleError)) throw error;
          const reason = `${source.id}: ${error.reason}`;
          summary.skippedRequests[reason] = (summary.skippedRequests[reason] ?? 0) + 1;
          continue;
        }
        summary.samples += texts.length;
        summary.perSource[source.id].samples += texts.length;
        const combo = summary.perSourceSetting[`${source.id}/${setting.name}`];
        combo.samples += texts.length;
        texts.forEach((t, index) => {
          if (t.text.trim() === '') {
            summary.emptySamples += 1;
            combo.empty += 1;
            return;
          }
          const seen = byText.get(t.text);
          if (seen) {
            summary.duplicateSamples += 1;
            if (!seen.alsoFrom.some((o) => o.source === source.id && o.setting === setting.name) && !(seen.source === source.id && seen.setting.name === setting.name)) {
              seen.alsoFrom.push({ source: source.id, setting: setting.name });
            }
            return;
          }
          byText.set(t.text, {
            id: responseIdOf(prompt.id, t.text),
            promptId: prompt.id,
            text: t.text,
            source: source.id,
            setting,
            seed: requestSeed,
            index,
            ...(t.finishReason ? { finishReason: t.finishReason } : {}),
            alsoFrom: [],
          });
        });
      }
    }
    const responses = [...byText.values()];
    allResponses.push(...responses);
    summary.responses += responses.length;
    const candidates = candidatePairs(prompt, responses, { pairing: options.pairing ?? 'cross', max: options.maxPairsPerPrompt ?? 8, seed, wanted });
    summary.candidatePairs += candidates.length;

    const labels = await pool(candidates, options.concurrency ?? 4, async (c): Promise<PairLabel | undefined> => {
      for (const labeller of labellers) {
        signal?.throwIfAborted();
        const label = await labeller.label(c, signal);
        if (label) return label;
      }
      return undefined;
    });

    candidates.forEach((c, i) => {
      const label = labels[i];
      const key = modelPairKey(c.a.source, c.b.source);
      const pair = (summary.perModelPair[key] ??= { candidates: 0, kept: 0 });
      pair.candidates += 1;
      if (label) summary.perLabeller[label.labeller].labelled += 1;
      if (!label || !label.confident) {
        const reason = label ? label.reason : 'unlabelled';
        summary.dropped[reason] = (summary.dropped[reason] ?? 0) + 1;
        if (label) summary.perLabeller[label.labeller].dropped += 1;
        dropped.push({
          promptId: prompt.id,
          a: c.a.id,
          b: c.b.id,
          models: [c.a.source, c.b.source],
          labeller: label?.labeller ?? null,
          reason,
          ...(label?.margin !== undefined ? { margin: label.margin } : {}),
          ...(label ? { details: label.details } : {}),
        });
        return;
      }
      const [chosen, rejected] = label.chosen === 'a' ? [c.a, c.b] : [c.b, c.a];
      summary.kept += 1;
      pair.kept += 1;
      summary.perLabeller[label.labeller].kept += 1;
      summary.perSet[prompt.set] += 1;
      summary.perSource[chosen.source].chosen += 1;
      summary.perSource[rejected.source].rejected += 1;
      const labeller = summary.labellers[label.labeller];
      records.push({
        id: sha(prompt.prompt, chosen.text, rejected.text).slice(0, 24),
        prompt: [{ role: 'user', content: prompt.prompt }],
        chosen: [{ role: 'assistant', content: chosen.text }],
        rejected: [{ role: 'assistant', content: rejected.text }],
        set: prompt.set,
        category: prompt.category,
        phase: defaultPhaseOf(prompt.set),
        margin: label.margin,
        provenance: {
          promptId: prompt.id,
          input: prompt.source,
          models: [chosen.source, rejected.source],
          settings: [chosen.setting.name, rejected.setting.name],
          chosen: provenanceOf(chosen),
          rejected: provenanceOf(rejected),
          labeller: label.labeller,
          ...(label.labeller === 'judge' ? { judgePromptVersion: labeller.promptVersion, judgeModel: labeller.model } : {}),
          label: label.details,
          seed,
        },
      });
    });
    await options.onProgress?.(p + 1, prompts.length, 'prompts', `${prompt.id}: ${responses.length} responses, ${candidates.length} pairs, ${summary.kept} kept so far`);
  }
  summary.sources = Object.fromEntries(sources.map((s) => [s.id, s.describe()]));
  return { records, responses: allResponses, dropped, summary };
}
