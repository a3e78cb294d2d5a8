/**
 * `rlhf.evaluate` (seed 四, 评估): the round's policy against the SFT model, per subdomain, on
 * held-out prompts:
 *
 * - one response per prompt from each model (greedy by default, the same seed);
 * - the pairwise verdict in both orders (policy first, then second), combined MT-Bench style by
 *   `combineOrders` of `@xyp/rlhf` (a verdict that flips is a tie; an unparsable one a skip), from
 *   the reference judge (closer to the sample's reference answer; `reference-judge.ts`) — human
 *   verdicts, where given, take precedence;
 * - win / tie / loss and the net win rate (W − L) / N per subdomain (`winTieLoss`);
 * - the mean UFRM score of each model's responses, and the policy's KL to the reference (SFT):
 *   `klSamples` responses per prompt sampled from the policy at temperature 1 (up to `klMaxTokens`
 *   tokens), Σ over each one's tokens of log π − log π_ref (k1), the mean per response (an unbiased
 *   estimate of KL(π ‖ π_ref) over responses) and per token.
 *
 * The report names the judge of every verdict.
 */
import type { TextReward } from '@xyp/contracts';
import type { LocalEngine, openPolicyScorer } from '@xyp/local-engine';
import { combineOrders, mean, winTieLoss, type PairOutcome, type WinTieLoss } from '@xyp/rlhf';
import type { RlhfPrompt } from './prompts';
import { referenceVerdict } from './reference-judge';
import type { PairJudge } from './llm-judge';

type Scorer = Awaited<ReturnType<typeof openPolicyScorer>>['scorer'];

export type HumanVerdict = 'win' | 'tie' | 'loss';

export interface EvaluateRun {
  policy: string;
  baseline: string;
  /** Scorers (log-likelihoods) of the policy and of the reference model, for the KL. */
  policyScorer: Scorer;
  referenceScorer: Scorer;
  reward: TextReward;
  prompts: readonly RlhfPrompt[];
  maxTokens: number;
  temperature: number;
  /** Responses sampled per prompt (temperature 1) for the KL, and their length. */
  klSamples: number;
  klMaxTokens: number;
  seed: number;
  /** |ΔF1| at or below this is a tie for the reference judge. */
  tieMargin: number;
  /** Annotators' verdicts by prompt id (the policy's outcome); they take precedence. */
  human?: ReadonlyMap<string, HumanVerdict>;
  /** An LLM judge (`llmPairJudge`) instead of the reference judge, named `judgeName` in the report. */
  judge?: PairJudge;
  judgeName?: string;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number, what: string) => void | Promise<void>;
}

export interface EvaluatedPair {
  id: string;
  subdomain: string;
  prompt: string;
  reference: string | null;
  policyResponse: string;
  baselineResponse: string;
  outcome: PairOutcome;
  judge: string;
  reason: string;
  policyScore: number;
  baselineScore: number;
  /** The mean over the prompt's KL samples of Σ_t log π(y_t) − log π_ref(y_t) (k1). */
  kl: number;
  /** The mean tokens of the prompt's KL samples (so that kl / klTokens is their KL per token). */
  klTokens: number;
}

export interface SubdomainEvaluation extends WinTieLoss {
  policyScore: number;
  baselineScore: number;
  /** policyScore − baselineScore. */
  scoreGain: number;
  kl: number;
  klPerToken: number;
  pairs: number;
}

export interface EvaluationOutput {
  judge: string;
  pairs: EvaluatedPair[];
  overall: SubdomainEvaluation;
  bySubdomain: Record<string, SubdomainEvaluation>;
}

const CHUNK = 16;

async function respond(engine: LocalEngine, checkpoint: string, prompts: readonly RlhfPrompt[], run: EvaluateRun): Promise<string[]> {
  const out: string[] = [];
  for (let start = 0; start < prompts.length; start += CHUNK) {
    run.signal?.throwIfAborted();
    const chunk = prompts.slice(start, start + CHUNK);
    const generated = await engine.generate({ checkpoint, prompts: chunk.map((p) => p.prompt), chat: true, n: 1, temperature: run.temperature, maxTokens: run.maxTokens, seed: run.seed + start });
    const texts = new Array<string>(chunk.length).fill('');
    for (const g of generated) texts[g.prompt] = g.text;
    out.push(...texts);
  }
  return out;
}

/**
 * Per prompt, the mean over `klSamples` responses sampled from the policy (temperature 1, top-p 1,
 * up to `klMaxTokens` tokens) of log π(y) − log π_ref(y), the responses scored as the assistant turn
 * (its end token included) by both models; and the mean tokens scored per response.
 */
export async function sampledKl(engine: LocalEngine, prompts: readonly RlhfPrompt[], run: Pick<EvaluateRun, 'policy' | 'policyScorer' | 'referenceScorer' | 'klSamples' | 'klMaxTokens' | 'seed' | 'signal'>): Promise<{ kl: number; tokens: number }[]> {
  const out: { kl: number; tokens: number }[] = [];
  for (let start = 0; start < prompts.length; start += CHUNK) {
    run.signal?.throwIfAborted();
    const chunk = prompts.slice(start, start + CHUNK);
    const generated = await engine.generate({ checkpoint: run.policy, prompts: chunk.map((p) => p.prompt), chat: true, n: run.klSamples, temperature: 1, topP: 1, maxTokens: run.klMaxTokens, seed: run.seed + 7919 + start });
    const conversations = generated.map((g) => [
      { role: 'user' as const, content: chunk[g.prompt].prompt },
      { role: 'assistant' as const, content: g.text },
    ]);
    const llPolicy = await run.policyScorer.conversationLogLikelihood(conversations, { signal: run.signal });
    const llReference = await run.referenceScorer.conversationLogLikelihood(conversations, { signal: run.signal });
    const sums = chunk.map(() => ({ kl: 0, tokens: 0, n: 0 }));
    generated.forEach((g, j) => {
      const s = sums[g.prompt];
      s.kl += llPolicy[j].logLikelihood - llReference[j].logLikelihood;
      s.tokens += llPolicy[j].tokens;
      s.n += 1;
    });
    out.push(...sums.map((s) => ({ kl: s.n > 0 ? s.kl / s.n : 0, tokens: s.n > 0 ? s.tokens / s.n : 0 })));
  }
  return out;
}

export async function runEvaluation(engine: LocalEngine, run: EvaluateRun): Promise<EvaluationOutput> {
  const prompts = run.prompts;
  if (prompts.length === 0) throw new Error('rlhf.evaluate: prompts: no held-out prompt to evaluate on');
  const policy = await respond(engine, run.policy, prompts, run);
  await run.onProgress?.(1, 4, 'policy responses');
  const baseline = await respond(engine, run.baseline, prompts, run);
  await run.onProgress?.(2, 4, 'baseline responses');
  const items = (texts: string[]) => prompts.map((p, i) => ({ prompt: p.prompt, response: texts[i], category: p.subdomain }));
  const policyScores = await run.reward(items(policy), { signal: run.signal });
  const baselineScores = await run.reward(items(baseline), { signal: run.signal });
  await run.onProgress?.(3, 4, 'UFRM scores');
  const kl = await sampledKl(engine, prompts, run);
  await run.onProgress?.(4, 4, 'KL');
  const llm = run.judge
    ? await Promise.all(
        prompts.map(async (p, i) => {
          if (run.human?.has(p.id)) return undefined;
          const ab = await (run.judge as PairJudge)(p.prompt, policy[i], baseline[i], run.signal);
          const ba = await (run.judge as PairJudge)(p.prompt, baseline[i], policy[i], run.signal);
          return { ab, ba };
        }),
      )
    : undefined;
  const llmName = run.judgeName ?? 'llm';
  const pairs: EvaluatedPair[] = prompts.map((p, i) => {
    const human = run.human?.get(p.id);
    const judged = llm?.[i];
    let outcome: PairOutcome;
    let judge: string;
    let reason: string;
    if (human) {
      outcome = human;
      judge = 'human';
      reason = `human verdict: ${human}`;
    } else if (judged) {
      const combined = combineOrders(judged.ab.verdict, judged.ba.verdict);
      outcome = combined.outcome;
      judge = llmName;
      reason = `${combined.reason}; ab: ${judged.ab.reason}; ba: ${judged.ba.reason}`;
    } else if (p.reference === undefined) {
      outcome = 'skip';
      judge = 'none';
      reason = 'skip: no reference answer for the reference judge, and no human verdict';
    } else {
      const combined = combineOrders(referenceVerdict(policy[i], baseline[i], p.reference, run.tieMargin), referenceVerdict(baseline[i], policy[i], p.reference, run.tieMargin));
      outcome = combined.outcome;
      judge = 'reference-f1';
      reason = combined.reason;
    }
    return {
      id: p.id,
      subdomain: p.subdomain,
      prompt: p.prompt,
      reference: p.reference ?? null,
      policyResponse: policy[i],
      baselineResponse: baseline[i],
      outcome,
      judge,
      reason,
      policyScore: policyScores[i],
      baselineScore: baselineScores[i],
      kl: kl[i].kl,
      klTokens: kl[i].tokens,
    };
  });
  const tally = winTieLoss(pairs.map((p) => ({ subdomain: p.subdomain, outcome: p.outcome })));
  const summarize = (own: EvaluatedPair[], wtl: WinTieLoss): SubdomainEvaluation => {
    const tokens = own.reduce((a, p) => a + p.klTokens, 0);
    const policyScore = mean(own.map((p) => p.policyScore));
    const baselineScore = mean(own.map((p) => p.baselineScore));
    return { ...wtl, policyScore, baselineScore, scoreGain: policyScore - baselineScore, kl: mean(own.map((p) => p.kl)), klPerToken: tokens > 0 ? own.reduce((a, p) => a + p.kl, 0) / tokens : 0, pairs: own.length };
  };
  const bySubdomain = Object.fromEntries(Object.entries(tally.bySubdomain).map(([s, wtl]) => [s, summarize(pairs.filter((p) => p.subdomain === s), wtl)]));
  const base = run.judge ? llmName : 'reference-f1';
  return { judge: run.human && run.human.size > 0 ? `human where given, else ${base}` : base, pairs, overall: summarize(pairs, tally.overall), bySubdomain };
}

/** The pairs for annotators: CSV (RFC 4180 quoting) and JSONL, one row per prompt, with an empty `verdict` column. */
export function annotationExport(pairs: readonly EvaluatedPair[]): { csv: string; jsonl: string } {
  const q = (v: string) => `"${v.replace(/"/g, '""')}"`;
  const header = ['id', 'subdomain', 'prompt', 'reference', 'response_a_policy', 'response_b_sft', 'verdict'];
  const rows = pairs.map((p) => [p.id, p.subdomain, p.prompt, p.reference ?? '', p.policyResponse, p.baselineResponse, ''].map(q).join(','));
  const jsonl = pairs.map((p) => JSON.stringify({ id: p.id, subdomain: p.subdomain, prompt: p.prompt, reference: p.reference, policy: p.policyResponse, sft: p.baselineResponse, verdict: null })).join('\n');
  return { csv: `${header.join(',')}\n${rows.join('\n')}\n`, jsonl: `${jsonl}\n` };
}

/**
 * Annotators' verdicts, JSONL `{id, verdict}` with verdict `win` (the policy is better), `loss`,
 * `tie` (also `a`/`b`/`c`: a = policy, b = SFT). A bad line is an error naming it: a verdict is never
 * guessed.
 */
export function parseHumanVerdicts(text: string, source = 'human verdicts'): Map<string, HumanVerdict> {
  const map = new Map<string, HumanVerdict>();
  const alias: Record<string, HumanVerdict> = { win: 'win', loss: 'loss', tie: 'tie', a: 'win', b: 'loss', c: 'tie' };
  text.split(/\r?\n/).forEach((raw, i) => {
    if (raw.trim() === '') return;
    let o: { id?: unknown; verdict?: unknown };
    try {
      o = JSON.parse(raw) as typeof o;
    } catch {
      throw new Error(`${source}:${i + 1}: not valid JSON`);
    }
    if (typeof o.id !== 'string' || o.id === '') throw new Error(`${source}:${i + 1}: id: missing`);
    if (o.verdict === null || o.verdict === undefined || o.verdict === '') return;
    const v = typeof o.verdict === 'string' ? alias[o.verdict.toLowerCase()] : undefined;
    if (!v) throw new Error(`${source}:${i + 1}: verdict: must be win, loss or tie (or a, b, c), got ${JSON.stringify(o.verdict)}`);
    map.set(o.id, v);
  });
  return map;
}

const pct = (x: number | null) => (x === null || !Number.isFinite(x) ? '—' : `${(x * 100).toFixed(1)}%`);

/** The evaluation as Markdown: per subdomain win/tie/loss, net win rate, UFRM scores and KL; the judge named. */
export function evaluationMarkdown(out: EvaluationOutput, models: { policy: string; baseline: string }): string {
  const row = (name: string, e: SubdomainEvaluation) =>
    `| ${name} | ${e.pairs} | ${e.win}/${e.tie}/${e.loss}${e.skip ? ` (${e.skip} skipped)` : ''} | ${pct(e.netWinRate)} | ${e.policyScore.toFixed(4)} | ${e.baselineScore.toFixed(4)} | ${e.scoreGain >= 0 ? '+' : ''}${e.scoreGain.toFixed(4)} | ${e.kl.toFixed(3)} |`;
  return [
    `# ${models.policy} against ${models.baseline}`,
    '',
    `judge: ${out.judge} (verdicts in both orders; a verdict that flips is a tie)`,
    '',
    '| subdomain | prompts | win/tie/loss | net win rate | UFRM policy | UFRM SFT | UFRM gain | KL (nats/response) |',
    '|---|---|---|---|---|---|---|---|',
    ...Object.entries(out.bySubdomain).map(([s, e]) => row(s, e)),
    row('**all**', out.overall),
    '',
  ].join('\n');
}
