/**
 * The models the gateway may call, as a person writes them (YAML, or JSON, which YAML reads too):
 *
 * ```yaml
 * models:
 *   - name: judge                        # what callers ask for
 *     baseUrl: http://vllm:8000/v1       # any OpenAI-compatible server (vLLM, SGLang, Ollama, xyp serve, a hosted API)
 *     model: Qwen/Qwen2.5-7B-Instruct    # the model id sent to it
 *     apiKeyEnv: JUDGE_API_KEY           # or apiKeyFile: /var/run/secrets/judge-key (never both)
 *     maxConcurrency: 32
 *     requestsPerMinute: 600
 *     tokensPerMinute: 400000
 *     timeoutMs: 60000
 *     fallback: judge-hosted             # by name; must exist, no cycles
 *     pricePer1M: { input: 0.15, output: 0.6 }   # USD per million tokens, for cost
 *     cooldown: { minCalls: 5, windowMs: 60000, cooldownMs: 30000 }
 * ```
 *
 * A bad config fails with a ZodError whose issues name the model and the field
 * (`model 'judge', field maxConcurrency: …`, path `['models', 'judge', 'maxConcurrency']`).
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

const NAME = /^[A-Za-z0-9][A-Za-z0-9._:/-]*$/;

export const CooldownConfig = z
  .object({
    /** Fewest calls in the window before the failure share is judged. */
    minCalls: z.int().positive().default(5),
    /** The rolling window the failure share is counted over. */
    windowMs: z.int().positive().default(60_000),
    /** How long an endpoint that failed more than half its calls is paused. */
    cooldownMs: z.int().positive().default(30_000),
  })
  .strict();

export const ModelConfig = z
  .object({
    name: z.string().regex(NAME, 'a name of letters, digits and . _ : / -'),
    baseUrl: z.url({ protocol: /^https?$/ }),
    model: z.string().min(1),
    /** The environment variable holding the API key. */
    apiKeyEnv: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name').optional(),
    /** A mounted file holding the API key (surrounding whitespace is dropped). */
    apiKeyFile: z.string().min(1).optional(),
    maxConcurrency: z.int().positive().default(16),
    /** No limit when absent. */
    requestsPerMinute: z.number().positive().optional(),
    /** No limit when absent. */
    tokensPerMinute: z.number().positive().optional(),
    /** Per attempt, headers and body. */
    timeoutMs: z.int().positive().default(60_000),
    fallback: z.string().min(1).optional(),
    /** USD per million tokens. */
    pricePer1M: z.object({ input: z.number().nonnegative(), output: z.number().nonnegative() }).strict().optional(),
    cooldown: CooldownConfig.default({ minCalls: 5, windowMs: 60_000, cooldownMs: 30_000 }),
  })
  .strict()
  .refine((m) => !(m.apiKeyEnv && m.apiKeyFile), { message: 'set apiKeyEnv or apiKeyFile, not both', path: ['apiKeyFile'] });

export type ModelConfig = z.infer<typeof ModelConfig>;
export type ModelConfigInput = z.input<typeof ModelConfig>;

export const ModelRegistryConfig = z
  .object({ models: z.array(ModelConfig).min(1) })
  .strict()
  .superRefine(({ models }, ctx) => {
    const byName = new Map<string, ModelConfig>();
    models.forEach((m, i) => {
      if (byName.has(m.name)) ctx.addIssue({ code: 'custom', message: `a second model named ${m.name}`, path: ['models', i, 'name'] });
      byName.set(m.name, m);
    });
    models.forEach((m, i) => {
      if (m.fallback === undefined) return;
      if (!byName.has(m.fallback)) {
        ctx.addIssue({ code: 'custom', message: `no model named ${m.fallback} (models: ${[...byName.keys()].join(', ')})`, path: ['models', i, 'fallback'] });
        return;
      }
      const chain = [m.name];
      for (let next = byName.get(m.fallback); next; next = next.fallback === undefined ? undefined : byName.get(next.fallback)) {
        if (chain.includes(next.name)) {
          ctx.addIssue({ code: 'custom', message: `fallback cycle ${[...chain, next.name].join(' → ')}`, path: ['models', i, 'fallback'] });
          return;
        }
        chain.push(next.name);
      }
    });
  });

export type ModelRegistryConfig = z.infer<typeof ModelRegistryConfig>;

/**
 * The registry from a parsed object; throws a ZodError whose issues say which model (by name, by
 * position when it has none) and which field.
 */
export function parseModelRegistry(input: unknown): ModelRegistryConfig {
  const parsed = ModelRegistryConfig.safeParse(input);
  if (parsed.success) return parsed.data;
  const rawModels = (input as { models?: unknown } | null)?.models;
  const nameAt = (i: number): string => {
    const name = Array.isArray(rawModels) ? (rawModels[i] as { name?: unknown } | null)?.name : undefined;
    return typeof name === 'string' && name !== '' ? name : `#${i}`;
  };
  const issues = parsed.error.issues.map((issue) => {
    const [head, index, ...field] = issue.path;
    if (head !== 'models' || typeof index !== 'number') return issue;
    const model = nameAt(index);
    const where = field.length ? `model '${model}', field ${field.join('.')}` : `model '${model}'`;
    return { ...issue, path: ['models', model, ...field], message: `${where}: ${issue.message}` };
  });
  throw new z.ZodError(issues);
}

/** The registry from a YAML or JSON file; a file that is not YAML is named in the error. */
export function loadModelRegistry(path: string): ModelRegistryConfig {
  const text = readFileSync(path, 'utf8');
  let value: unknown;
  try {
    value = parseYaml(text);
  } catch (error) {
    throw new Error(`${path}: not valid YAML or JSON: ${(error instanceof Error ? error.message : String(error)).split('\n')[0]}`, { cause: error });
  }
  return parseModelRegistry(value);
}

/**
 * The model's API key: from `apiKeyEnv` or `apiKeyFile`, undefined when it has neither (a local
 * server without auth). A missing variable or file fails naming the model and the variable or path
 * — never the value.
 */
export function resolveApiKey(model: ModelConfig, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (model.apiKeyEnv !== undefined) {
    const key = env[model.apiKeyEnv];
    if (!key) throw new Error(`model ${model.name}: environment variable ${model.apiKeyEnv} (apiKeyEnv) is not set`);
    return key;
  }
  if (model.apiKeyFile !== undefined) {
    let key: string;
    try {
      key = readFileSync(model.apiKeyFile, 'utf8').trim();
    } catch (error) {
      throw new Error(`model ${model.name}: cannot read apiKeyFile ${model.apiKeyFile} (${(error as NodeJS.ErrnoException).code ?? 'error'})`, { cause: error });
    }
    if (!key) throw new Error(`model ${model.name}: apiKeyFile ${model.apiKeyFile} is empty`);
    return key;
  }
  return undefined;
}
