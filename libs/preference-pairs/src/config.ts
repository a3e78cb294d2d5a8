/**
 * The stage's config file (JSON): where responses come from, how they are sampled, how pairs are
 * labelled. Secrets are never in it: an endpoint names the environment variable of its key
 * (`apiKeyEnv`), which the caller resolves.
 *
 *   {"sources": [{"kind": "local", "id": "xy-1b", "checkpoint": "run-a/engine.sft"},
 *                {"kind": "openai", "id": "xy-70b", "baseUrl": "http://vllm:8000", "model": "xuanyuan-70b"}],
 *    "settings": [{"temperature": 0.7, "topP": 0.9}, {"temperature": 1.0, "topP": 1}],
 *    "samplesPerSetting": 2, "seed": 7,
 *    "judge": {"baseUrl": "http://judge:8000", "model": "judge", "minMargin": 0.75, "votes": 2}}
 */
import { z } from 'zod';
import { PreferenceSet } from '@xyp/contracts';
import { fieldOf, inputError } from './errors';
import { JUDGE_PROMPTS } from './judge-prompt';
import { SamplingSetting } from './sources';

/**
 * An OpenAI-compatible endpoint: one model of the LLM gateway (`endpointModel`), whose retry loop
 * is the only one. `retries` and `backoffMs` set the gateway's attempts and backoff scale; without
 * them the gateway's defaults hold (6 attempts, 0.5 s · 2^n up to 8 s).
 */
const Endpoint = {
  baseUrl: z
    .string()
    .url()
    .refine((url) => /^https?:\/\//i.test(url), 'an http(s) URL'),
  model: z.string().min(1),
  /** Environment variable holding the API key. */
  apiKeyEnv: z.string().min(1).optional(),
  /** Per attempt. */
  timeoutMs: z.number().int().positive().default(60_000),
  /** Retries after the first attempt. Default the gateway's (5). */
  retries: z.number().int().min(0).max(10).optional(),
  /** The first backoff (the gateway's schedule scaled by backoffMs / 500). Default 500. */
  backoffMs: z.number().int().min(0).optional(),
  /** Requests in flight at once. Default the gateway's (16). */
  maxConcurrency: z.number().int().positive().optional(),
  requestsPerMinute: z.number().positive().optional(),
  tokensPerMinute: z.number().positive().optional(),
};

const Id = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'letters, digits, . _ - (it names the model in pairs)');

export const LocalSourceConfig = z.object({ kind: z.literal('local'), id: Id, checkpoint: z.string().min(1) }).strict();
export const OpenAiSourceConfig = z.object({ kind: z.literal('openai'), id: Id, ...Endpoint }).strict();
export const SourceConfig = z.discriminatedUnion('kind', [LocalSourceConfig, OpenAiSourceConfig]);
export type SourceConfig = z.output<typeof SourceConfig>;

export const JudgeConfig = z
  .object({
    ...Endpoint,
    promptVersion: z.string().refine((v) => v in JUDGE_PROMPTS, `unknown judge prompt version; known: ${Object.keys(JUDGE_PROMPTS).join(', ')}`).default('pairwise-v1'),
    votes: z.number().int().min(1).max(16).default(1),
    temperature: z.number().min(0).max(2).default(0),
    maxTokens: z.number().int().positive().optional(),
    margin: z.enum(['agreement', 'score-gap']).default('agreement'),
    minMargin: z.number().min(0).max(1).default(0.5),
  })
  .strict();
export type JudgeConfig = z.output<typeof JudgeConfig>;

export const VerifiableConfig = z
  .object({ relTol: z.number().min(0).default(1e-4), absTol: z.number().min(0).default(1e-9), answer: z.enum(['last', 'any']).default('last') })
  .strict();

export const LabellerName = z.enum(['human', 'verifiable', 'judge']);

export const PairsConfig = z
  .object({
    sources: z.array(SourceConfig).min(1),
    settings: z.array(SamplingSetting).min(1),
    samplesPerSetting: z.number().int().min(1).max(64).default(2),
    seed: z.number().int().default(0),
    pairing: z.enum(['cross', 'all']).default('cross'),
    maxPairsPerPrompt: z.number().int().positive().default(8),
    concurrency: z.number().int().positive().max(64).default(4),
    /** Precedence order; default human (with a labels file), verifiable, judge (when configured). Human labels always come first. */
    labellers: z.array(LabellerName).min(1).optional(),
    judge: JudgeConfig.optional(),
    verifiable: VerifiableConfig.default({ relTol: 1e-4, absTol: 1e-9, answer: 'last' }),
    /** The set of prompts that name none (and no subcategory). */
    defaultSet: PreferenceSet.default('general'),
  })
  .strict()
  .superRefine((c, ctx) => {
    const ids = new Map<string, number>();
    c.sources.forEach((s, i) => {
      if (ids.has(s.id)) ctx.addIssue({ code: 'custom', path: ['sources', i, 'id'], message: `${s.id} is also the id of source ${ids.get(s.id)}` });
      ids.set(s.id, i);
    });
    const names = new Map<string, number>();
    c.settings.forEach((s, i) => {
      const name = s.name ?? `t${s.temperature}-p${s.topP}`;
      if (names.has(name)) ctx.addIssue({ code: 'custom', path: ['settings', i], message: `setting ${name} is given twice (settings ${names.get(name)} and ${i})` });
      names.set(name, i);
    });
    if (c.labellers?.includes('judge') && !c.judge) ctx.addIssue({ code: 'custom', path: ['judge'], message: 'labellers include judge, but no judge endpoint is configured' });
  });
export type PairsConfigInput = z.input<typeof PairsConfig>;
export type PairsConfig = z.output<typeof PairsConfig>;

export function parsePairsConfig(text: string, file = 'reward-pairs.json'): PairsConfig {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw inputError(file, undefined, undefined, `not JSON (${error instanceof Error ? error.message : String(error)})`);
  }
  const parsed = PairsConfig.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw inputError(file, undefined, fieldOf(issue.path), issue.message);
  }
  return parsed.data;
}
