/**
 * The run configurations of the four generators: one validated object each (defaults written
 * once, here), printed into `summary.json`. Model names are names of the gateway's registry
 * (`LlmGateway.modelNames`); a name it lacks fails before any call.
 */
import { z } from 'zod';
import { AnalysisFormatConfig, EnsembleConfig, EvolPoolConfig, SelfQaFilterConfig } from '@xyp/synthesis';

const ModelName = z.string().min(1);

/** Sampling parameters sent with every generating request (OpenAI names). */
export const SamplingConfig = z
  .object({
    temperature: z.number().min(0).max(2).default(0.7),
    top_p: z.number().gt(0).max(1).optional(),
    max_tokens: z.int().positive().default(1024),
    /** Sent as the request's `seed`: a rerun sends the same request, which the response cache answers. */
    seed: z.int().optional(),
  })
  .strict();
export type SamplingConfig = z.output<typeof SamplingConfig>;

/** What every generator shares. */
const runBase = {
  /** Inputs worked on at once (each may make several calls: the ensemble asks every model at once per input). */
  concurrency: z.int().positive().max(4096).default(32),
  /** Inputs per committed chunk (the unit of resume). Changing it makes an existing output unresumable. */
  chunkSize: z.int().positive().max(100_000).default(64),
  /** Seed of the generators' draws (Evol-Instruct operations, exemplar choice) and of the MinHash filters. */
  seed: z.int().default(0),
  sampling: SamplingConfig.prefault({}),
};

export const SelfQaRunConfig = z
  .object({
    models: z.object({ generator: ModelName }).strict(),
    /** Instructions asked for per document (at most this many are kept from the reply). */
    instructionsPerDocument: z.int().min(1).max(100).default(5),
    /** Times the instruction step is re-asked after a reply whose JSON does not parse or validate. */
    repairs: z.int().min(0).max(5).default(1),
    /**
     * Also send the list's JSON schema as `response_format` (guided decoding on vLLM, SGLang, the
     * OpenAI API). Off by default: `xyp serve` and other plain servers refuse the field with a 400;
     * the prompt asks for the JSON either way and the reply is parsed and repaired.
     */
    jsonSchema: z.boolean().default(false),
    filter: SelfQaFilterConfig.prefault({}),
    ...runBase,
  })
  .strict();
export type SelfQaRunConfig = z.output<typeof SelfQaRunConfig>;
export type SelfQaRunConfigInput = z.input<typeof SelfQaRunConfig>;

export const EvolRunConfig = z
  .object({
    /** `generator` rewrites and answers; `judge` gives the equality verdict (elimination rule 1). */
    models: z.object({ generator: ModelName, judge: ModelName }).strict(),
    /** The pool's depth, rounds, operation weights and apology length (its seed is `seed`). */
    pool: EvolPoolConfig.omit({ seed: true }).prefault({}),
    /** The equality judge's sampling: greedy and short. */
    judgeSampling: SamplingConfig.prefault({ temperature: 0, max_tokens: 16 }),
    ...runBase,
  })
  .strict();
export type EvolRunConfig = z.output<typeof EvolRunConfig>;
export type EvolRunConfigInput = z.input<typeof EvolRunConfig>;

export const AnalysisRunConfig = z
  .object({
    models: z.object({ generator: ModelName }).strict(),
    /** Exemplars of the topic's category shown per topic (`chooseExemplars`). */
    exemplarsPerTopic: z.int().min(1).max(20).default(3),
    format: AnalysisFormatConfig.prefault({}),
    ...runBase,
  })
  .strict();
export type AnalysisRunConfig = z.output<typeof AnalysisRunConfig>;
export type AnalysisRunConfigInput = z.input<typeof AnalysisRunConfig>;

export const EnsembleRunConfig = z
  .object({
    models: z
      .object({
        /** The models that answer every query, at once. */
        ensemble: z.array(ModelName).min(1).refine((names) => new Set(names).size === names.length, { error: 'an ensemble model is named twice' }),
        /** The model that fuses the survivors. */
        aggregator: ModelName,
      })
      .strict(),
    /**
     * The threshold and survivor cap of `selectSurvivors`. A quantile threshold is taken per
     * category over the scores of one chunk (the unit a streaming run holds at once).
     */
    selection: EnsembleConfig.prefault({ threshold: { quantile: 0.5 } }),
    ...runBase,
  })
  .strict();
export type EnsembleRunConfig = z.output<typeof EnsembleRunConfig>;
export type EnsembleRunConfigInput = z.input<typeof EnsembleRunConfig>;

/** `schema.parse(value)` with the failure as one line naming `what` and the field. */
export function parseRunConfig<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  throw new Error(`${what} config: ${issue?.path.length ? `${issue.path.join('.')}: ` : ''}${issue?.message ?? 'invalid'}`);
}

/** Fails, naming the role and the registry's models, when a role names a model the gateway does not have. */
export function checkModelNames(roles: Record<string, string | readonly string[]>, known: readonly string[], what: string): void {
  for (const [role, names] of Object.entries(roles)) {
    for (const name of typeof names === 'string' ? [names] : names) {
      if (!known.includes(name)) throw new Error(`${what} config: models.${role}: no model named ${name} in the registry (models: ${known.join(', ')})`);
    }
  }
}
