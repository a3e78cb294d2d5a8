import type { Labeller, PairCandidate, PairLabel } from './labeller';
import { verifyAnswer, type VerifyOptions } from './verifiable';

/**
 * Labels a pair whose prompt carries a `reference`: the correct response is chosen over the wrong
 * one (margin 1). Both correct or both wrong is decided, not confident: the pair is dropped (a
 * judge is not asked to break it). Abstains on prompts without a reference.
 */
export class VerifiableLabeller implements Labeller {
  readonly name = 'verifiable';

  constructor(private readonly options: VerifyOptions = {}) {}

  describe(): Record<string, unknown> {
    return { relTol: this.options.relTol ?? 1e-4, absTol: this.options.absTol ?? 1e-9, answer: this.options.answer ?? 'last' };
  }

  async label({ prompt, a, b }: PairCandidate): Promise<PairLabel | undefined> {
    if (prompt.reference === undefined) return undefined;
    const va = verifyAnswer(a.text, prompt.reference, this.options);
    const vb = verifyAnswer(b.text, prompt.reference, this.options);
    const details = { reference: prompt.reference, answers: { a: va.answer, b: vb.answer }, correct: { a: va.correct, b: vb.correct } };
    if (va.correct === vb.correct) return { labeller: this.name, confident: false, reason: va.correct ? 'verifiable-both-correct' : 'verifiable-both-wrong', details };
    return { labeller: this.name, confident: true, chosen: va.correct ? 'a' : 'b', margin: 1, details };
  }
}
