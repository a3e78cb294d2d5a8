/**
 * Multiple-choice scoring, lm-evaluation-harness style, in two modes.
 *
 * Prompt (both modes; FinanceIQ's official script):
 *
 *     以下是关于{subject}的单项选择题，请直接给出正确答案的选项。\n\n
 *     [exemplar\n\n]* 题目：{question}\nA. {A}\nB. {B}\nC. {C}\nD. {D}\n答案是：
 *
 * With `shots > 0` the first `shots` dev questions of the same subject come before the question,
 * each in the same format followed by its answer, separated by a blank line.
 *
 * - `loglik`: the context is the prompt; each option's **text** (e.g. `4%`, no letter) is a
 *   continuation right after `答案是：`. `acc` takes the option with the largest summed
 *   log-likelihood, `acc_norm` the largest log-likelihood divided by the option text's length in
 *   characters (code points). Ties go to the first option (numpy `argmax`). Exemplar answers are
 *   written the same way (`答案是：{option text}`), so the exemplars show what is scored.
 * - `generate`: greedy continuation of the prompt (exemplar answers are the letter); the predicted
 *   letter is `extractAnswer`'s. An answer no rule can read is wrong and counted as `unparsed`.
 */
import { OPTION_LETTERS, type McqQuestion, type OptionLetter } from './mcq-data';
import { charCount, type LogLikelihoodResult, type PolicyScorer } from './scorer';

export type McqMode = 'loglik' | 'generate';

function questionBlock(q: McqQuestion): string {
  return `题目：${q.question}\n${q.options.map((text, i) => `${OPTION_LETTERS[i]}. ${text}`).join('\n')}\n答案是：`;
}

/** The prompt of a question (without its answer), with `exemplars` answered before it. */
export function mcqPrompt(q: McqQuestion, exemplars: readonly McqQuestion[] = [], mode: McqMode = 'generate'): string {
  const header = `以下是关于${q.subject}的单项选择题，请直接给出正确答案的选项。\n\n`;
  const shots = exemplars.map((e) => questionBlock(e) + (mode === 'loglik' ? e.options[OPTION_LETTERS.indexOf(e.answer)] : e.answer));
  return header + [...shots, questionBlock(q)].join('\n\n');
}

/** Indices picked by `acc` (max Σ log p) and `acc_norm` (max Σ log p / characters); first index on ties. */
export function pickOption(scores: readonly Pick<LogLikelihoodResult, 'logLikelihood' | 'chars'>[]): { acc: number; accNorm: number } {
  let acc = 0;
  let accNorm = 0;
  const norm = (s: Pick<LogLikelihoodResult, 'logLikelihood' | 'chars'>) => s.logLikelihood / Math.max(1, s.chars);
  for (let i = 1; i < scores.length; i++) {
    if (scores[i].logLikelihood > scores[acc].logLikelihood) acc = i;
    if (norm(scores[i]) > norm(scores[accNorm])) accNorm = i;
  }
  return { acc, accNorm };
}

export type ExtractionRule = 'leading-letter' | 'pattern' | 'letter' | 'option-text';

const PATTERNS = [
  /答案(?:应该|应|是|为|选)*\s*[:：]?\s*[(（]?([ABCD])(?![A-Za-z])/,
  /选(?:择|项)?\s*[(（]?([ABCD])(?![A-Za-z])/,
  /(?<![A-Za-z])([ABCD])\s*(?:是|为)?(?:正确|对的)/,
  /answer(?:\s+is)?\s*[:：]?\s*\(?([ABCD])(?![A-Za-z])/i,
];

/**
 * The option a generated answer names, tried in order:
 * 1. `leading-letter`: the answer (after spaces and an opening bracket) starts with A-D not followed
 *    by another ASCII letter (`C`, `C. 4%`, `(B)`);
 * 2. `pattern`: `答案是：C`, `答案为C`, `选C`, `选项C`, `C正确`, `answer is C`;
 * 3. `letter`: the first A-D standing alone (no ASCII letter either side);
 * 4. `option-text`: exactly one option's text occurs in the answer.
 * Otherwise `undefined` (unparsed).
 */
export function extractAnswer(response: string, options: readonly string[] = []): { letter: OptionLetter; rule: ExtractionRule } | undefined {
  const text = response.trim();
  const leading = /^[\s(（[【]*([ABCD])(?![A-Za-z])/.exec(text);
  if (leading) return { letter: leading[1] as OptionLetter, rule: 'leading-letter' };
  for (const pattern of PATTERNS) {
    const m = pattern.exec(text);
    if (m) return { letter: m[1] as OptionLetter, rule: 'pattern' };
  }
  const alone = /(?<![A-Za-z])([ABCD])(?![A-Za-z])/.exec(text);
  if (alone) return { letter: alone[1] as OptionLetter, rule: 'letter' };
  const found = options.map((o, i) => (o.trim() !== '' && text.includes(o.trim()) ? i : -1)).filter((i) => i >= 0);
  if (found.length === 1) return { letter: OPTION_LETTERS[found[0]], rule: 'option-text' };
  return undefined;
}

export interface McqItem {
  id: string;
  subject: string;
  file: string;
  line: number;
  answer: OptionLetter;
  /** acc's pick (loglik) or the extracted letter (generate; null when unparsed). */
  predicted: OptionLetter | null;
  correct: boolean;
  /** loglik: acc_norm's pick and whether it is right. */
  predictedNorm?: OptionLetter;
  correctNorm?: boolean;
  /** loglik: Σ log p per option, and the option texts' characters. */
  logLikelihoods?: number[];
  chars?: number[];
  /** generate: the raw answer and the rule that read it. */
  response?: string;
  rule?: ExtractionRule | null;
}

export interface McqSubjectResult {
  subject: string;
  questions: number;
  correct: number;
  acc: number;
  /** loglik only. */
  correctNorm?: number;
  accNorm?: number;
  /** 1 / options. */
  chance: number;
  /** Few-shot exemplars used for this subject's questions (fewer than asked when dev has fewer). */
  shots: number;
  /** generate only: answers no rule could read (counted wrong). */
  unparsed?: number;
}

export interface McqAverage {
  acc: number;
  accNorm?: number;
}

export interface McqResult {
  model: string;
  mode: McqMode;
  shots: number;
  questions: number;
  subjects: McqSubjectResult[];
  /** Mean of the subjects' accuracies. */
  macro: McqAverage;
  /** Correct answers over all questions. */
  micro: McqAverage;
  unparsed?: number;
  /** Continuations cut to fit the context (loglik) — their scores cover their last tokens only. */
  truncated?: number;
  items: McqItem[];
}

export interface McqOptions {
  mode: McqMode;
  shots?: number;
  /** Exemplars for few-shot prompts (`McqData.dev`), matched by subject. */
  dev?: readonly McqQuestion[];
  /** generate: tokens per answer (default 16). */
  maxTokens?: number;
  /** Questions per scorer call (default 32), the progress granularity. */
  chunk?: number;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void | Promise<void>;
}

/** Scores every question with the scorer and aggregates per subject, macro and micro. */
export async function evaluateMcq(questions: readonly McqQuestion[], scorer: PolicyScorer, options: McqOptions): Promise<McqResult> {
  const shots = Math.max(0, Math.floor(options.shots ?? 0));
  const bySubject = new Map<string, McqQuestion[]>();
  for (const d of options.dev ?? []) bySubject.set(d.subject, [...(bySubject.get(d.subject) ?? []), d]);
  const exemplarsOf = (q: McqQuestion) => (shots === 0 ? [] : (bySubject.get(q.subject) ?? []).filter((d) => d.id !== q.id || d.file !== q.file).slice(0, shots));
  const chunk = Math.max(1, options.chunk ?? 32);
  const items: McqItem[] = [];
  let truncated = 0;
  for (let start = 0; start < questions.length; start += chunk) {
    options.signal?.throwIfAborted();
    const part = questions.slice(start, start + chunk);
    const prompts = part.map((q) => mcqPrompt(q, exemplarsOf(q), options.mode));
    if (options.mode === 'loglik') {
      const requests = part.flatMap((q, k) => q.options.map((text) => ({ context: prompts[k], continuation: text })));
      const scores = await scorer.logLikelihood(requests, { signal: options.signal });
      let at = 0;
      part.forEach((q) => {
        const own = scores.slice(at, at + q.options.length);
        at += q.options.length;
        truncated += own.filter((s) => s.truncated).length;
        const pick = pickOption(own.map((s, i) => ({ logLikelihood: s.logLikelihood, chars: charCount(q.options[i]) })));
        const predicted = OPTION_LETTERS[pick.acc];
        const predictedNorm = OPTION_LETTERS[pick.accNorm];
        items.push({
          id: q.id,
          subject: q.subject,
          file: q.file,
          line: q.line,
          answer: q.answer,
          predicted,
          correct: predicted === q.answer,
          predictedNorm,
          correctNorm: predictedNorm === q.answer,
          logLikelihoods: own.map((s) => s.logLikelihood),
          chars: q.options.map(charCount),
        });
      });
    } else {
      const responses = await scorer.generate(prompts, { maxTokens: options.maxTokens ?? 16, stop: ['\n\n'], signal: options.signal });
      part.forEach((q, k) => {
        const read = extractAnswer(responses[k], q.options);
        items.push({
          id: q.id,
          subject: q.subject,
          file: q.file,
          line: q.line,
          answer: q.answer,
          predicted: read?.letter ?? null,
          correct: read?.letter === q.answer,
          response: responses[k],
          rule: read?.rule ?? null,
        });
      });
    }
    await options.onProgress?.(Math.min(questions.length, start + chunk), questions.length);
  }
  return aggregateMcq(items, { model: scorer.name, mode: options.mode, shots, questions, exemplarsOf, truncated });
}

function aggregateMcq(
  items: McqItem[],
  at: { model: string; mode: McqMode; shots: number; questions: readonly McqQuestion[]; exemplarsOf: (q: McqQuestion) => McqQuestion[]; truncated: number },
): McqResult {
  const loglik = at.mode === 'loglik';
  const subjects: McqSubjectResult[] = [];
  const order = [...new Set(items.map((i) => i.subject))];
  for (const subject of order) {
    const own = items.filter((i) => i.subject === subject);
    const first = at.questions.find((q) => q.subject === subject);
    const correct = own.filter((i) => i.correct).length;
    const r: McqSubjectResult = {
      subject,
      questions: own.length,
      correct,
      acc: correct / own.length,
      chance: 1 / (first?.options.length ?? OPTION_LETTERS.length),
      shots: first ? at.exemplarsOf(first).length : 0,
    };
    if (loglik) {
      r.correctNorm = own.filter((i) => i.correctNorm).length;
      r.accNorm = r.correctNorm / own.length;
    } else r.unparsed = own.filter((i) => i.predicted === null).length;
    subjects.push(r);
  }
  const mean = (xs: number[]) => (xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length);
  const total = items.length;
  const macro: McqAverage = { acc: mean(subjects.map((s) => s.acc)) };
  const micro: McqAverage = { acc: total === 0 ? 0 : items.filter((i) => i.correct).length / total };
  if (loglik) {
    macro.accNorm = mean(subjects.map((s) => s.accNorm ?? 0));
    micro.accNorm = total === 0 ? 0 : items.filter((i) => i.correctNorm).length / total;
  }
  const result: McqResult = { model: at.model, mode: at.mode, shots: at.shots, questions: total, subjects, macro, micro, items };
  if (loglik) result.truncated = at.truncated;
  else result.unparsed = items.filter((i) => i.predicted === null).length;
  return result;
}
