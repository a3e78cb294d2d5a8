/**
 * Expert-seeded analysis (seed 二, 金融分析类): analyses written by finance experts are the few-shot
 * exemplars; the model writes a new analysis for a topic (a report, an event, a business case) in
 * the same format and depth, and the output is checked against the exemplars.
 *
 * - `chooseExemplars`: k exemplars of the same category, a seeded draw without replacement
 *   (partial Fisher–Yates over the category's exemplars sorted by id, SplitMix32 seeded with
 *   deriveSeed(seed, 'analysis-exemplars', category, key)), so the choice does not depend on input
 *   order; `key` (e.g. the topic's id) varies the choice per topic.
 * - `analysisMessages`: the `ANALYSIS_FEWSHOT` prompt (exemplars as user/assistant turns).
 * - `checkAnalysisFormat`: in this order
 *     `empty`              the output is blank;
 *     `missing-headings`   a section heading every exemplar has is absent from the output (headings:
 *                          markdown `#`…`######` lines, `【…】` at a line start, `一、` numbered lines
 *                          up to their first colon; compared by text, whatever the style);
 *     `too-short`          visible length (code points other than whitespace) < `minLengthRatio`
 *                          (default 0.6) × the median visible length of the exemplars.
 */
import type { ChatTurn } from '@xyp/contracts';
import { createRng, deriveSeed } from '@xyp/random';
import { z } from 'zod';
import { SynthesisInputError, parseWith } from './errors';
import { ANALYSIS_FEWSHOT, type AnalysisExemplar } from './prompts';
import { median } from '@xyp/stats';
import { visibleLength } from './text';

export type { AnalysisExemplar } from './prompts';

/** Up to `k` exemplars of `category` (all of them when it has fewer); throws when it has none. */
export function chooseExemplars(exemplars: readonly AnalysisExemplar[], options: { category: string; k: number; seed: number; key?: string; excludeIds?: readonly string[] }): AnalysisExemplar[] {
  if (!(Number.isInteger(options.k) && options.k >= 1)) throw new SynthesisInputError(`k: must be an integer >= 1, got ${options.k}`, 'k');
  const excluded = new Set(options.excludeIds ?? []);
  const pool = exemplars.filter((e) => e.category === options.category && !excluded.has(e.id)).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  if (pool.length === 0) throw new SynthesisInputError(`exemplars: none of category ${options.category}${excluded.size > 0 ? ' after the exclusions' : ''}`, 'exemplars');
  const rng = createRng(deriveSeed(options.seed, 'analysis-exemplars', options.category, options.key ?? ''));
  const take = Math.min(options.k, pool.length);
  for (let i = 0; i < take; i++) {
    const j = i + rng.nextInt(pool.length - i);
    [pool[i], pool[j]] = [pool[j], pool[i]];
  }
  return pool.slice(0, take);
}

/** The few-shot messages for a new topic. */
export function analysisMessages(exemplars: readonly AnalysisExemplar[], topic: string, material?: string): { promptVersion: string; messages: ChatTurn[] } {
  return { promptVersion: ANALYSIS_FEWSHOT.version, messages: ANALYSIS_FEWSHOT.render({ exemplars, topic, material }) };
}

export interface Heading {
  style: 'markdown' | 'bracket' | 'numbered';
  /** Normalized text (NFKC, no emphasis marks, spaces or leading numbering `一、`/`1.`, no trailing colon/period, lower case). */
  text: string;
}

function headingText(raw: string): string {
  return raw
    .normalize('NFKC')
    .replace(/[*_`]/gu, '')
    .replace(/\s+/gu, '')
    .replace(/^(?:[一二三四五六七八九十]+[、.．]|\d+[.、)）]|[(（][一二三四五六七八九十\d]+[)）])/u, '')
    .replace(/[:：。.，,;；]+$/u, '')
    .toLowerCase();
}

const MARKDOWN_HEADING = /^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$/u;
const BRACKET_HEADING = /^\s*(?:\*\*)?【([^】]+)】/u;
const NUMBERED_HEADING = /^\s*(?:\*\*)?[一二三四五六七八九十]+[、.．]\s*([^:：\n]+)/u;

/** The section headings of a text, in order (see the module comment for the three styles). */
export function extractHeadings(text: string): Heading[] {
  const headings: Heading[] = [];
  for (const line of text.split(/\r?\n/u)) {
    const markdown = line.match(MARKDOWN_HEADING);
    const bracket = markdown ? null : line.match(BRACKET_HEADING);
    const numbered = markdown || bracket ? null : line.match(NUMBERED_HEADING);
    const [style, raw] = markdown ? (['markdown', markdown[1]] as const) : bracket ? (['bracket', bracket[1]] as const) : numbered ? (['numbered', numbered[1]] as const) : [undefined, undefined];
    if (style === undefined) continue;
    const text = headingText(raw);
    if (text.length > 0) headings.push({ style, text });
  }
  return headings;
}

export const AnalysisFormatConfig = z
  .object({
    /** The output must be at least this fraction of the exemplars' median visible length. */
    minLengthRatio: z.number().min(0).max(10).default(0.6),
  })
  .strict();
export type AnalysisFormatConfigInput = z.input<typeof AnalysisFormatConfig>;

export type AnalysisFormatReason = 'empty' | 'missing-headings' | 'too-short';

export interface AnalysisFormatCheck {
  ok: boolean;
  /** The first failed check (module comment order); absent when ok. */
  reason?: AnalysisFormatReason;
  /** Headings every exemplar has, in the first exemplar's order. */
  requiredHeadings: string[];
  missingHeadings: string[];
  length: number;
  minLength: number;
}

/** Checks an analysis against the exemplars it was written from (module comment). */
export function checkAnalysisFormat(output: string, exemplars: readonly Pick<AnalysisExemplar, 'analysis'>[], config: AnalysisFormatConfigInput = {}): AnalysisFormatCheck {
  const settings = parseWith(AnalysisFormatConfig, config, 'analysis');
  if (exemplars.length === 0) throw new SynthesisInputError('exemplars: need at least one to check against', 'exemplars');
  const perExemplar = exemplars.map((e) => extractHeadings(e.analysis).map((h) => h.text));
  const required = [...new Set(perExemplar[0])].filter((h) => perExemplar.every((hs) => hs.includes(h)));
  const present = new Set(extractHeadings(output).map((h) => h.text));
  const missingHeadings = required.filter((h) => !present.has(h));
  const length = visibleLength(output);
  const minLength = settings.minLengthRatio * median(exemplars.map((e) => visibleLength(e.analysis)));
  const reason: AnalysisFormatReason | undefined = length === 0 ? 'empty' : missingHeadings.length > 0 ? 'missing-headings' : length < minLength ? 'too-short' : undefined;
  return { ok: reason === undefined, ...(reason ? { reason } : {}), requiredHeadings: required, missingHeadings, length, minLength };
}
