/**
 * The trainer's results on the bundled samples, as the README reports them:
 *
 *   node -r ./tools/runtime/register.js tools/scripts/trainer-results.ts [--seeds 3]
 *
 * For each seed: `xyp train cpt --sample`, then `xyp train sft --sample --init <cpt>`, then
 * `xyp eval ppl` (the SFT split's held-out conversations) and `xyp eval mcq` (data/sample/mcq) on
 * both checkpoints. Prints Markdown tables (mean ± sample std over seeds) and the raw JSON.
 * Every figure is held-out: CPT validation sequences, SFT held-out conversations, MCQ test questions.
 */
import { execFileSync } from 'node:child_process';
import { join, resolve } from 'node:path';

const ROOT = resolve(__dirname, '../..');
const seedsAt = process.argv.indexOf('--seeds');
const seeds = Array.from({ length: seedsAt > 0 ? Number(process.argv[seedsAt + 1]) : 3 }, (_, i) => i + 1);

function xyp(args: string[]): Record<string, unknown> {
  process.stderr.write(`$ xyp ${args.join(' ')}\n`);
  const out = execFileSync(process.execPath, [join(ROOT, 'tools/xyp/bin/xyp.js'), ...args, '--json'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 28 });
  return JSON.parse(out) as Record<string, unknown>;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const std = (xs: number[]) => (xs.length < 2 ? 0 : Math.sqrt(xs.reduce((a, x) => a + (x - mean(xs)) ** 2, 0) / (xs.length - 1)));
const pm = (xs: number[], digits = 3) => `${mean(xs).toFixed(digits)} ± ${std(xs).toFixed(digits)}`;

/** Spearman rank correlation (average ranks for ties). */
function spearman(x: number[], y: number[]): number {
  const rank = (v: number[]) => {
    const order = v.map((value, i) => ({ value, i })).sort((a, b) => a.value - b.value);
    const r = new Array<number>(v.length);
    for (let i = 0; i < order.length; ) {
      let j = i;
      while (j + 1 < order.length && order[j + 1].value === order[i].value) j++;
      for (let k = i; k <= j; k++) r[order[k].i] = (i + j) / 2;
      i = j + 1;
    }
    return r;
  };
  const rx = rank(x);
  const ry = rank(y);
  const mx = mean(rx);
  const my = mean(ry);
  const num = rx.reduce((a, v, i) => a + (v - mx) * (ry[i] - my), 0);
  const den = Math.sqrt(rx.reduce((a, v) => a + (v - mx) ** 2, 0) * ry.reduce((a, v) => a + (v - my) ** 2, 0));
  return den === 0 ? 0 : num / den;
}

interface Change {
  category: string;
  oldWeight: number;
  newWeight: number;
  lossReference: number | null;
  lossNow: number | null;
  flags: string[];
}
type PerCategory = Record<string, { before: number; after: number; change: number }>;

const runs = seeds.map((seed) => {
  const cpt = xyp(['train', 'cpt', '--sample', '--seed', String(seed)]);
  const sft = xyp(['train', 'sft', '--sample', '--init', String(cpt.checkpoint), '--seed', String(seed)]);
  const heldOut = join(String(sft.collections), 'held-out.jsonl');
  const evals = Object.fromEntries(
    (['cpt', 'sft'] as const).map((which) => {
      const model = String((which === 'cpt' ? cpt : sft).checkpoint);
      return [which, { ppl: xyp(['eval', 'ppl', '--model', model, '--data', heldOut]), mcq: xyp(['eval', 'mcq', '--model', model, '--data', join(ROOT, 'data/sample/mcq')]) }];
    }),
  );
  return { seed, cpt, sft, evals };
});

const cptCategories = Object.keys(runs[0].cpt.validationLoss as PerCategory).sort();
const lines: string[] = [];
lines.push(`CPT on the sample corpus (${seeds.length} seeds, validation sequences never trained on): validation loss per category (nats/token)`);
lines.push('', '| category | before | after | first-stage weight | last-stage weight |', '|---|---|---|---|---|');
for (const c of cptCategories) {
  const v = runs.map((r) => (r.cpt.validationLoss as PerCategory)[c]);
  const w = runs.map((r) => r.cpt.weights as { first: Record<string, number>; next: Record<string, number> });
  const stages = runs.map((r) => r.cpt.stages as { weights: Record<string, number> }[]);
  lines.push(`| ${c} | ${pm(v.map((x) => x.before))} | ${pm(v.map((x) => x.after))} | ${pm(w.map((x) => x.first[c]))} | ${pm(stages.map((s) => s[s.length - 1].weights[c]))} |`);
}
const improved = runs.map((r) => Object.values(r.cpt.validationLoss as PerCategory).filter((v) => v.after < v.before).length);
lines.push('', `categories whose validation loss fell: ${improved.join(', ')} of ${cptCategories.length} (per seed)`);
// At each stage boundary: does weight move toward the categories whose training loss fell slowest?
const rhos: number[] = [];
let withinBounds = true;
for (const r of runs) {
  for (const stage of r.cpt.stages as { changes: Change[] }[]) {
    const ch = stage.changes.filter((c) => c.lossNow !== null && c.lossReference !== null);
    if (ch.length < 2) continue;
    rhos.push(spearman(ch.map((c) => Math.log((c.lossNow as number) / (c.lossReference as number))), ch.map((c) => c.newWeight - c.oldWeight)));
    withinBounds &&= ch.every((c) => c.newWeight >= 0.01 - 1e-12 && c.newWeight <= 0.6 + 1e-12 && Math.abs(c.newWeight - c.oldWeight) <= 0.1 + 1e-12);
  }
}
lines.push(`Spearman ρ between a category's training-loss change over a stage (ln L_end/L_start) and its weight change at the boundary: ${pm(rhos)} over ${rhos.length} boundaries (ρ > 0: the slower the fall, the more weight)`);
lines.push(`every new weight within [minShare 0.01, maxShare 0.6] and within ±maxStep 0.1 of the old: ${withinBounds}`);

const sftCategories = Object.keys(runs[0].sft.heldOutLoss as PerCategory).sort();
lines.push('', `SFT on the sample conversations from each seed's CPT checkpoint: held-out assistant-token loss per category (nats/token)`);
lines.push('', '| category | before (CPT) | after SFT | epoch-1 ratio | epoch-3 ratio |', '|---|---|---|---|---|');
for (const c of sftCategories) {
  const v = runs.map((r) => (r.sft.heldOutLoss as PerCategory)[c]);
  const ratios = runs.map((r) => r.sft.ratios as { first: Record<string, number>; last: Record<string, number> });
  lines.push(`| ${c} | ${pm(v.map((x) => x.before))} | ${pm(v.map((x) => x.after))} | ${pm(ratios.map((x) => x.first[c]))} | ${pm(ratios.map((x) => x.last[c] ?? 0))} |`);
}
const overfit = runs.map((r) => (r.sft.epochs as { changes: Change[] }[]).reduce((n, e) => n + e.changes.filter((c) => c.flags.includes('over-fitting')).length, 0));
lines.push('', `over-fitting flags raised (category × epoch): ${overfit.join(', ')} (per seed)`);

lines.push('', 'Policy evaluation (held-out conversations of the SFT split; the 48 sample MCQ test questions, chance 25%)', '', '| checkpoint | perplexity | MCQ acc (loglik) | MCQ acc_norm |', '|---|---|---|---|');
for (const which of ['cpt', 'sft'] as const) {
  const ppl = runs.map((r) => (r.evals[which].ppl as { overall: { ppl: number } }).overall.ppl);
  const acc = runs.map((r) => (r.evals[which].mcq as { micro: { acc: number } }).micro.acc * 100);
  const norm = runs.map((r) => (r.evals[which].mcq as { micro: { accNorm: number } }).micro.accNorm * 100);
  lines.push(`| ${which} | ${pm(ppl, 2)} | ${pm(acc, 1)}% | ${pm(norm, 1)}% |`);
}
console.log(lines.join('\n'));
console.log('\n```json');
console.log(JSON.stringify(runs.map((r) => ({ seed: r.seed, cpt: r.cpt.checkpoint, sft: r.sft.checkpoint, cptSeconds: r.cpt.seconds, sftSeconds: r.sft.seconds })), null, 1));
console.log('```');
