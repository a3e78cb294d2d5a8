/**
 * Imported human labels: JSONL `{prompt_id | promptId, chosen, rejected, margin?}` per line, where
 * `chosen` and `rejected` are each a response id (`r-…`, as `samples.jsonl` lists them) or the
 * response's exact text. A human label decides its pair before every other labeller and is always
 * confident; `margin` (default 1) is its strength. Two lines labelling the same pair both ways
 * are an error; labels that match no sampled pair are counted as unmatched.
 */
import { z } from 'zod';
import { fieldOf, inputError } from './errors';
import { parseJsonl } from './jsonl';
import type { Labeller, PairCandidate, PairLabel, Response } from './labeller';

const HumanLine = z
  .object({
    prompt_id: z.string().min(1).optional(),
    promptId: z.string().min(1).optional(),
    chosen: z.string().min(1),
    rejected: z.string().min(1),
    margin: z.number().finite().nonnegative().optional(),
  })
  .refine((l) => (l.prompt_id ?? l.promptId) !== undefined, { message: 'give prompt_id (or promptId)', path: ['prompt_id'] })
  .refine((l) => l.chosen !== l.rejected, { message: 'chosen and rejected name the same response', path: ['rejected'] });

export interface HumanLabel {
  promptId: string;
  chosen: string;
  rejected: string;
  margin: number;
  line: number;
}

export class HumanLabels implements Labeller {
  readonly name = 'human';
  private readonly byPrompt = new Map<string, HumanLabel[]>();
  private readonly used = new Set<HumanLabel>();

  constructor(
    readonly labels: readonly HumanLabel[],
    readonly file = 'human-labels.jsonl',
  ) {
    for (const label of labels) {
      const list = this.byPrompt.get(label.promptId) ?? [];
      const clash = list.find((l) => l.chosen === label.rejected && l.rejected === label.chosen);
      if (clash) throw inputError(file, label.line, 'chosen', `labels the pair of line ${clash.line} the other way round`);
      list.push(label);
      this.byPrompt.set(label.promptId, list);
    }
  }

  static parse(text: string, file = 'human-labels.jsonl'): HumanLabels {
    const labels = parseJsonl(text, file).map(({ line, value }) => {
      const parsed = HumanLine.safeParse(value);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        throw inputError(file, line, fieldOf(issue.path), issue.message);
      }
      const l = parsed.data;
      return { promptId: (l.prompt_id ?? l.promptId) as string, chosen: l.chosen, rejected: l.rejected, margin: l.margin ?? 1, line };
    });
    return new HumanLabels(labels, file);
  }

  describe(): Record<string, unknown> {
    return { file: this.file, labels: this.labels.length };
  }

  private matches({ prompt, a, b }: PairCandidate): { label: HumanLabel; chosen: 'a' | 'b' }[] {
    const names = (r: Response) => [r.id, r.text];
    return (this.byPrompt.get(prompt.id) ?? []).flatMap((label): { label: HumanLabel; chosen: 'a' | 'b' }[] => {
      if (names(a).includes(label.chosen) && names(b).includes(label.rejected)) return [{ label, chosen: 'a' }];
      if (names(b).includes(label.chosen) && names(a).includes(label.rejected)) return [{ label, chosen: 'b' }];
      return [];
    });
  }

  wants(candidate: PairCandidate): boolean {
    return this.matches(candidate).length > 0;
  }

  async label(candidate: PairCandidate): Promise<PairLabel | undefined> {
    const found = this.matches(candidate);
    if (found.length === 0) return undefined;
    for (const f of found) this.used.add(f.label);
    const lines = found.map((f) => f.label.line);
    const details = { file: this.file, lines };
    if (new Set(found.map((f) => f.chosen)).size > 1) return { labeller: this.name, confident: false, reason: 'human-conflict', details };
    return { labeller: this.name, confident: true, chosen: found[0].chosen, margin: Math.max(...found.map((f) => f.label.margin)), details };
  }

  /** Labels no candidate pair matched (so far). */
  unmatched(): HumanLabel[] {
    return this.labels.filter((l) => !this.used.has(l));
  }
}
