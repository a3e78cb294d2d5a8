import { z } from 'zod';
import { defineStagePlan, param, stageJob } from './stage-kit';

/**
 * eval: policy evaluation of a checkpoint (after cpt, after sft, and later rounds): perplexity per
 * category on held-out text or conversations (assistant tokens), and multiple-choice accuracy per
 * subject (FinanceIQ / C-Eval / CMMLU layouts) by log-likelihood (`acc`, `acc_norm`, as
 * lm-evaluation-harness) or by generation (FinanceIQ's prompt and answer extraction), with counts
 * and chance level. Writes `perplexity.{json,md,png}` and `mcq.{json,md,png}`; malformed rows are
 * reported with file and line and skipped, never counted as wrong.
 */
export const EvalPayload = stageJob({
  /** The committed manifest of the checkpoint to evaluate (cpt, sft, ...). */
  modelManifestKey: z.string().min(1),
  /** JSONL `{text, category}` or `{messages, category}` for perplexity. */
  pplKey: z.string().min(1).optional(),
  /** MCQ questions: JSONL `{subject, question, A, B, C, D, answer}` or one subject's CSV. */
  mcqKey: z.string().min(1).optional(),
  /** Name of the MCQ object's file (its extension decides CSV or JSONL; a CSV's subject is its name). */
  mcqName: z.string().min(1).default('mcq.jsonl'),
  mode: z.enum(['loglik', 'generate']).default('loglik'),
  maxTokens: z.number().int().positive().default(16),
});

export const EvalResult = z.looseObject({
  model: z.string(),
  perplexity: z
    .object({
      overall: z.object({ documents: z.number(), tokens: z.number(), nll: z.number(), ppl: z.number() }),
      categories: z.array(z.object({ category: z.string(), documents: z.number(), tokens: z.number(), nll: z.number(), ppl: z.number() })),
      rejects: z.number().int(),
    })
    .optional(),
  mcq: z
    .object({
      mode: z.string(),
      questions: z.number().int(),
      rejects: z.number().int(),
      macro: z.object({ acc: z.number(), accNorm: z.number().optional() }),
      micro: z.object({ acc: z.number(), accNorm: z.number().optional() }),
      subjects: z.array(z.object({ subject: z.string(), questions: z.number().int(), correct: z.number().int(), acc: z.number(), accNorm: z.number().optional(), chance: z.number() })),
    })
    .optional(),
});

export const evalPlan = defineStagePlan({
  description: 'policy evaluation: perplexity per category and multiple-choice accuracy per subject',
  slots: {
    model: { description: 'the checkpoint to evaluate (e.g. cpt, sft)' },
    ppl: { description: 'held-out text or conversations, JSONL {text|messages, category} (e.g. sft/held-out.jsonl)', artifact: 'held-out.jsonl', optional: true },
    mcq: { description: 'multiple-choice questions, JSONL {subject, question, A, B, C, D, answer}', defaultInput: 'mcq.jsonl', optional: true },
  },
  params: z.object({ mode: z.enum(['loglik', 'generate']), max_tokens: param.positiveInt() }).partial().strict(),
  paramPaths: { mode: 'mode', maxTokens: 'max_tokens' },
  build: ({ runId, inputs, params: p }) => {
    const pplKey = inputs.maybe('ppl');
    const mcqKey = inputs.maybe('mcq');
    return {
      runId,
      modelManifestKey: inputs.one('model'),
      ...(pplKey ? { pplKey } : {}),
      ...(mcqKey ? { mcqKey } : {}),
      ...(p.mode ? { mode: p.mode } : {}),
      ...(p.max_tokens ? { maxTokens: p.max_tokens } : {}),
    };
  },
});
