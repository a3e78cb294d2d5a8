/**
 * Reports of an evaluation: the JSON result, a Markdown table and a PNG bar chart. The chart's
 * font is ASCII only, so a category whose name is not printable ASCII (Chinese subjects) is drawn
 * as `S1`, `S2`, … and the Markdown table names the label of each row.
 */
import { barChart } from '@xyp/charts';
import type { McqResult } from './mcq';
import type { PerplexityResult } from './perplexity';

export interface EvalReport {
  json: string;
  markdown: string;
  png: Uint8Array;
}

/** Chart labels: the name itself when it is printable ASCII, else `<prefix><n>`. */
export function chartLabels(names: readonly string[], prefix: string): string[] {
  return names.map((name, i) => (/^[\x20-\x7e]+$/.test(name) ? name : `${prefix}${i + 1}`));
}

const pct = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? '—' : `${(100 * x).toFixed(1)}%`);
const cell = (s: string) => s.replace(/\|/g, '\\|');

export function mcqReport(result: McqResult, options: { json?: object } = {}): EvalReport {
  const loglik = result.mode === 'loglik';
  const labels = chartLabels(
    result.subjects.map((s) => s.subject),
    'S',
  );
  const header = loglik ? '| subject | chart | questions | correct | acc | acc_norm | chance |' : '| subject | chart | questions | correct | acc | unparsed | chance |';
  const rows = result.subjects.map((s, i) =>
    loglik
      ? `| ${cell(s.subject)} | ${labels[i]} | ${s.questions} | ${s.correct} | ${pct(s.acc)} | ${pct(s.accNorm)} | ${pct(s.chance)} |`
      : `| ${cell(s.subject)} | ${labels[i]} | ${s.questions} | ${s.correct} | ${pct(s.acc)} | ${s.unparsed ?? 0} | ${pct(s.chance)} |`,
  );
  const correct = result.items.filter((i) => i.correct).length;
  const markdown = [
    `# Multiple-choice evaluation: ${result.model}`,
    '',
    `Mode \`${result.mode}\`, ${result.shots}-shot, ${result.questions} questions in ${result.subjects.length} subjects.`,
    '',
    header,
    '|---|---|---:|---:|---:|---:|---:|',
    ...rows,
    loglik
      ? `| **macro average** | | ${result.questions} | | ${pct(result.macro.acc)} | ${pct(result.macro.accNorm)} | |`
      : `| **macro average** | | ${result.questions} | | ${pct(result.macro.acc)} | | |`,
    loglik
      ? `| **micro average** | | ${result.questions} | ${correct} | ${pct(result.micro.acc)} | ${pct(result.micro.accNorm)} | |`
      : `| **micro average** | | ${result.questions} | ${correct} | ${pct(result.micro.acc)} | ${result.unparsed ?? 0} | |`,
    '',
    loglik
      ? 'acc: the option text with the largest Σ log p after `答案是：`; acc_norm: the largest Σ log p per character.'
      : 'acc: the option letter read from the greedy answer; an unparsed answer counts as wrong.',
    '',
  ].join('\n');
  const png = barChart({
    title: `${result.mode} ${result.shots}-shot accuracy: ${result.model}`.slice(0, 120),
    yLabel: 'accuracy',
    categories: [...labels, 'macro'],
    groups: loglik
      ? [
          { name: 'acc', values: [...result.subjects.map((s) => s.acc), result.macro.acc] },
          { name: 'acc_norm', values: [...result.subjects.map((s) => s.accNorm ?? Number.NaN), result.macro.accNorm ?? Number.NaN] },
        ]
      : [{ name: 'acc', values: [...result.subjects.map((s) => s.acc), result.macro.acc] }],
    yMin: 0,
    yMax: 1,
    referenceLine: { value: result.subjects[0]?.chance ?? 0.25, label: 'chance' },
  });
  return { json: JSON.stringify(options.json ?? result, null, 2), markdown, png };
}

export function perplexityReport(result: PerplexityResult, options: { json?: object } = {}): EvalReport {
  const labels = chartLabels(
    result.categories.map((c) => c.category),
    'C',
  );
  const fmt = (x: number, digits: number) => (Number.isFinite(x) ? x.toFixed(digits) : '—');
  const markdown = [
    `# Perplexity: ${result.model}`,
    '',
    '| category | chart | documents | tokens | nll (nats/token) | ppl |',
    '|---|---|---:|---:|---:|---:|',
    ...result.categories.map((c, i) => `| ${cell(c.category)} | ${labels[i]} | ${c.documents} | ${c.tokens} | ${fmt(c.nll, 4)} | ${fmt(c.ppl, 2)} |`),
    `| **overall** | | ${result.overall.documents} | ${result.overall.tokens} | ${fmt(result.overall.nll, 4)} | ${fmt(result.overall.ppl, 2)} |`,
    '',
    'nll: mean negative log-likelihood per token over the category (token-weighted); ppl = exp(nll).',
    ...(result.truncated > 0 ? ['', `${result.truncated} documents were longer than the context and scored on their last tokens only.`] : []),
    '',
  ].join('\n');
  const png = barChart({
    title: `Perplexity per category: ${result.model}`.slice(0, 120),
    yLabel: 'ppl',
    categories: [...labels, 'overall'],
    groups: [{ name: 'ppl', values: [...result.categories.map((c) => c.ppl), result.overall.ppl] }],
    yMin: 0,
  });
  return { json: JSON.stringify(options.json ?? result, null, 2), markdown, png };
}
