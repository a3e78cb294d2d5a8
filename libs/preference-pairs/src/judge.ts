/**
 * The LLM judge: a chat model behind the LLM gateway (`gateway.chat`, the only retry loop for the
 * endpoint) asked which of two answers is better, in both
 * orders (the pair as A/B, then as B/A), `votes` replies per order. A pair is confident when each
 * order's majority picks the same response (a judge that always says "A" picks different ones)
 * and its margin reaches `minMargin`. The margin is the agreement (the share of all replies that
 * picked the winner) or the score gap (the mean of (winner's score − loser's) / 10 over all replies).
 */
import { deriveSeed } from '@xyp/random';
import { chatCompletionsUrl, type GatewayModel } from './endpoint';
import { DEFAULT_JUDGE_PROMPT, JUDGE_PROMPTS, parseVerdict, type JudgePrompt, type Verdict } from './judge-prompt';
import type { Labeller, PairCandidate, PairLabel } from './labeller';

export interface JudgeOptions {
  /** The judge model and the gateway that calls it (`endpointModel` makes a one-model one). */
  endpoint: GatewayModel;
  /** The gateway was made for this judge: `close()` closes it. Default false. */
  ownsGateway?: boolean;
  /** A key of `JUDGE_PROMPTS`. Default `pairwise-v1`. */
  promptVersion?: string;
  /** Replies per order (the request's `n`). Default 1. */
  votes?: number;
  /** Default 0. */
  temperature?: number;
  maxTokens?: number;
  margin?: 'agreement' | 'score-gap';
  /** Pairs below it are dropped. Default 0.5. */
  minMargin?: number;
  seed?: number;
}

type Side = 'a' | 'b' | 'tie';

function majority(sides: Side[]): Side {
  const a = sides.filter((s) => s === 'a').length;
  const b = sides.filter((s) => s === 'b').length;
  return a > b ? 'a' : b > a ? 'b' : 'tie';
}

export class JudgeLabeller implements Labeller {
  readonly name = 'judge';
  readonly prompt: JudgePrompt;

  constructor(private readonly options: JudgeOptions) {
    const version = options.promptVersion ?? DEFAULT_JUDGE_PROMPT;
    const prompt = JUDGE_PROMPTS[version];
    if (!prompt) throw new Error(`judge prompt version ${version} is unknown; known: ${Object.keys(JUDGE_PROMPTS).join(', ')}`);
    this.prompt = prompt;
  }

  get minMargin(): number {
    return this.options.minMargin ?? 0.5;
  }

  describe(): Record<string, unknown> {
    return {
      endpoint: chatCompletionsUrl(this.options.endpoint.baseUrl),
      model: this.options.endpoint.model,
      promptVersion: this.prompt.version,
      votes: this.options.votes ?? 1,
      temperature: this.options.temperature ?? 0,
      margin: this.options.margin ?? 'agreement',
      minMargin: this.minMargin,
    };
  }

  private async ask(question: string, first: string, second: string, seed: number, signal?: AbortSignal): Promise<{ verdicts: Verdict[] } | { error: string }> {
    const { choices } = await this.options.endpoint.gateway.chat(
      this.options.endpoint.name,
      {
        messages: this.prompt.render(question, first, second),
        temperature: this.options.temperature ?? 0,
        n: this.options.votes ?? 1,
        seed,
        ...(this.options.maxTokens ? { max_tokens: this.options.maxTokens } : {}),
      },
      { signal },
    );
    const verdicts: Verdict[] = [];
    for (const choice of choices) {
      const parsed = parseVerdict(choice.content);
      if ('error' in parsed) return { error: parsed.error };
      verdicts.push(parsed.verdict);
    }
    return { verdicts };
  }

  close(): void {
    if (this.options.ownsGateway) this.options.endpoint.gateway.close();
  }

  async label({ prompt, a, b }: PairCandidate, signal?: AbortSignal): Promise<PairLabel | undefined> {
    const seed = deriveSeed(this.options.seed ?? 0, 'judge', prompt.id, a.id, b.id);
    const [ab, ba] = await Promise.all([this.ask(prompt.prompt, a.text, b.text, seed, signal), this.ask(prompt.prompt, b.text, a.text, seed, signal)]);
    const base = { promptVersion: this.prompt.version, model: this.options.endpoint.model };
    if ('error' in ab || 'error' in ba) {
      return { labeller: this.name, confident: false, reason: 'judge-unparseable', details: { ...base, error: 'error' in ab ? ab.error : (ba as { error: string }).error } };
    }
    // Both orders in terms of the pair's own sides: in the second, "A" is b.
    const first: Side[] = ab.verdicts.map((v) => (v.winner === 'A' ? 'a' : v.winner === 'B' ? 'b' : 'tie'));
    const second: Side[] = ba.verdicts.map((v) => (v.winner === 'A' ? 'b' : v.winner === 'B' ? 'a' : 'tie'));
    const orders = { ab: ab.verdicts, ba: ba.verdicts };
    const [m1, m2] = [majority(first), majority(second)];
    const all = [...first, ...second];
    if (m1 === 'tie' && m2 === 'tie') return { labeller: this.name, confident: false, reason: 'judge-tie', details: { ...base, orders } };
    if (m1 !== m2) return { labeller: this.name, confident: false, reason: 'judge-inconsistent', details: { ...base, orders, majorities: { ab: m1, ba: m2 } } };
    const winner = m1 as 'a' | 'b';
    const agreement = all.filter((s) => s === winner).length / all.length;
    const scored = [...ab.verdicts.map((v) => ({ v, swapped: false })), ...ba.verdicts.map((v) => ({ v, swapped: true }))];
    const gaps = scored.map(({ v, swapped }) => {
      if (!v.scores) return undefined;
      const [sa, sb] = swapped ? [v.scores.B, v.scores.A] : [v.scores.A, v.scores.B];
      return ((winner === 'a' ? sa - sb : sb - sa) / 10) as number | undefined;
    });
    const scoreGap = gaps.every((g) => g !== undefined) ? (gaps as number[]).reduce((s, g) => s + g, 0) / gaps.length : undefined;
    if (this.options.margin === 'score-gap' && scoreGap === undefined) {
      return { labeller: this.name, confident: false, reason: 'judge-unparseable', details: { ...base, orders, error: 'margin is the score gap, but a reply gave no scores' } };
    }
    const margin = this.options.margin === 'score-gap' ? (scoreGap as number) : agreement;
    const details = { ...base, orders, agreement, ...(scoreGap !== undefined ? { scoreGap } : {}) };
    if (margin < this.minMargin) return { labeller: this.name, confident: false, reason: 'judge-below-margin', margin, details };
    return { labeller: this.name, confident: true, chosen: winner, margin, details };
  }
}
