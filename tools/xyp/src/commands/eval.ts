import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import type { BackendOptions, CheckpointObjectStore } from '@xyp/engine';
import { openPolicyScorer } from '@xyp/local-engine';
import {
  evaluateMcq,
  mcqReport,
  perplexityByCategory,
  perplexityReport,
  readMcqData,
  readPerplexityRecords,
  type DataReject,
  type EvalReport,
  type McqMode,
  type PolicyScorer,
} from '@xyp/policy-eval';
import { exitWithError, printResult, progress } from '../cli-output';
import { intAtLeast } from '../flags';
import { configuredBackend, configuredStore } from '../engine-runtime';

/** Rejects shown in the printed result (all of them are in the written JSON report). */
const SHOWN_REJECTS = 10;

/** `.xyp/eval/<timestamp>` (ISO time with `:` and `.` as `-`), or `--out`. */
export function defaultOutDir(now = new Date()): string {
  return join('.xyp', 'eval', now.toISOString().replace(/[:.]/g, '-'));
}

export interface EvalDeps {
  /** Opens the model (default: `openPolicyScorer` on the configured store and backend). */
  open?: (model: string, batchSize: number) => Promise<{ scorer: PolicyScorer; dispose: () => void }>;
  log?: (line: string) => void;
}

function defaultOpen(model: string, batchSize: number): Promise<{ scorer: PolicyScorer; dispose: () => void }> {
  const store: CheckpointObjectStore = configuredStore();
  const backend: BackendOptions = configuredBackend();
  return openPolicyScorer(model, store, { batchSize, backend });
}

async function writeReport(out: string, name: string, report: EvalReport): Promise<{ json: string; markdown: string; png: string }> {
  await mkdir(out, { recursive: true });
  const files = { json: join(out, `${name}.json`), markdown: join(out, `${name}.md`), png: join(out, `${name}.png`) };
  await writeFile(files.json, `${report.json}\n`);
  await writeFile(files.markdown, report.markdown);
  await writeFile(files.png, report.png);
  return files;
}

const rejectSummary = (rejects: DataReject[]) => ({ count: rejects.length, first: rejects.slice(0, SHOWN_REJECTS) });

export interface McqCommandOptions {
  model: string;
  data: string;
  mode: string;
  shots: string;
  maxTokens: string;
  split?: string;
  batch: string;
  out?: string;
  json?: boolean;
}

/** `xyp eval mcq`: reads the benchmark, scores it, writes mcq.json/.md/.png and returns the printed result. */
export async function runMcqEval(o: McqCommandOptions, deps: EvalDeps = {}) {
  const log = deps.log ?? progress;
  if (o.mode !== 'loglik' && o.mode !== 'generate') throw new Error(`--mode must be loglik or generate, got ${o.mode}`);
  if (o.split !== undefined && o.split !== 'test' && o.split !== 'val') throw new Error(`--split must be test or val, got ${o.split}`);
  const mode = o.mode as McqMode;
  const shots = intAtLeast('shots', o.shots, 0);
  const maxTokens = intAtLeast('max-tokens', o.maxTokens, 1);
  const batch = intAtLeast('batch', o.batch, 1);
  const data = readMcqData(o.data, { split: o.split as 'test' | 'val' | undefined });
  log(`mcq: ${data.questions.length} questions (${data.split}) in ${new Set(data.questions.map((q) => q.subject)).size} subjects, ${data.dev.length} dev exemplars, ${data.rejects.length} rejected rows`);
  for (const r of data.rejects.slice(0, SHOWN_REJECTS)) log(`  rejected ${r.file}:${r.line}: ${r.reason}`);
  if (data.questions.length === 0) throw new Error(`${o.data}: no well-formed questions (${data.rejects.length} rows rejected)`);
  if (shots > 0 && data.dev.length === 0) log(`mcq: --shots ${shots} but ${o.data} has no dev/ exemplars: zero-shot`);
  const out = resolve(o.out ?? defaultOutDir());
  const open = deps.open ?? defaultOpen;
  const { scorer, dispose } = await open(o.model, batch);
  try {
    const started = Date.now();
    const result = await evaluateMcq(data.questions, scorer, {
      mode,
      shots,
      dev: data.dev,
      maxTokens,
      chunk: Math.max(batch, 8),
      onProgress: (done, total) => log(`mcq ${mode}: ${done}/${total} questions, ${((Date.now() - started) / 1000).toFixed(1)}s`),
    });
    const full = { ...result, split: data.split, data: o.data, dataFiles: data.files, rejects: data.rejects };
    const files = await writeReport(out, 'mcq', mcqReport(result, { json: full }));
    const { items: _items, ...summary } = result;
    return { ...summary, split: data.split, maxTokens: mode === 'generate' ? maxTokens : undefined, rejects: rejectSummary(data.rejects), dataFiles: data.files.length, out, files, markdown: mcqReport(result).markdown };
  } finally {
    dispose();
  }
}

export interface PplCommandOptions {
  model: string;
  data: string;
  batch: string;
  out?: string;
  json?: boolean;
}

/** `xyp eval ppl`: perplexity per category of a corpus or SFT JSONL; writes ppl.json/.md/.png. */
export async function runPplEval(o: PplCommandOptions, deps: EvalDeps = {}) {
  const log = deps.log ?? progress;
  const batch = intAtLeast('batch', o.batch, 1);
  const { records, rejects, lines } = readPerplexityRecords(o.data);
  log(`ppl: ${records.length} of ${lines} lines to score, ${rejects.length} rejected`);
  for (const r of rejects.slice(0, SHOWN_REJECTS)) log(`  rejected ${r.file}:${r.line}: ${r.reason}`);
  if (records.length === 0) throw new Error(`${o.data}: no records to score (${rejects.length} lines rejected)`);
  const out = resolve(o.out ?? defaultOutDir());
  const open = deps.open ?? defaultOpen;
  const { scorer, dispose } = await open(o.model, batch);
  try {
    const started = Date.now();
    const result = await perplexityByCategory(records, scorer, {
      chunk: Math.max(batch, 8),
      onProgress: (done, total) => log(`ppl: ${done}/${total} documents, ${((Date.now() - started) / 1000).toFixed(1)}s`),
    });
    const report = perplexityReport(result, { json: { ...result, data: o.data, lines, rejects } });
    const files = await writeReport(out, 'ppl', report);
    return { ...result, lines, rejects: rejectSummary(rejects), out, files, markdown: report.markdown };
  } finally {
    dispose();
  }
}

/**
 * `xyp eval ppl` and `xyp eval mcq`: policy evaluation of an LM checkpoint on the local engine
 * (`@xyp/policy-eval` semantics: lm-evaluation-harness loglik/acc_norm, FinanceIQ prompts).
 */
export function registerEval(program: Command): void {
  const evaluate = program.command('eval').description('Evaluate a language-model checkpoint: perplexity per category, multiple-choice benchmarks (FinanceIQ, C-Eval, CMMLU)');
  evaluate
    .command('ppl')
    .description('Perplexity per category of a corpus JSONL ({text, category}: every token) or SFT JSONL ({messages, category}: assistant tokens)')
    .requiredOption('--model <checkpoint>', 'LM checkpoint: an ID in the store (<runId>/<stage>) or a checkpoint directory')
    .requiredOption('--data <file>', 'JSONL file')
    .option('--batch <n>', 'sequences per forward pass', '16')
    .option('--out <dir>', 'where ppl.json/.md/.png go (default: .xyp/eval/<timestamp>)')
    .option('--json', 'print one JSON object')
    .action(async (o: PplCommandOptions) => {
      try {
        const result = await runPplEval(o);
        const { markdown, ...json } = result;
        printResult(json, Boolean(o.json), () => [markdown, `rejected lines: ${result.rejects.count}`, `reports: ${result.files.json}, ${result.files.markdown}, ${result.files.png}`].join('\n'));
      } catch (error) {
        exitWithError(error);
      }
    });
  evaluate
    .command('mcq')
    .description('Multiple-choice accuracy per subject (FinanceIQ/CMMLU/C-Eval CSV or JSONL; a file, a directory, or test/ + dev/ folders)')
    .requiredOption('--model <checkpoint>', 'LM checkpoint: an ID in the store (<runId>/<stage>) or a checkpoint directory')
    .requiredOption('--data <path>', 'a .csv/.jsonl file, a directory of them (one subject per file), or a directory with test/ (and dev/, val/)')
    .option('--mode <mode>', 'loglik (acc and acc_norm over option texts) or generate (greedy answer, letter extracted)', 'loglik')
    .option('--shots <n>', 'few-shot exemplars per question from dev/ of the same subject', '0')
    .option('--max-tokens <n>', 'generate: tokens (bytes) per answer', '16')
    .option('--split <split>', 'test or val (default: test, or val where there is no test/)')
    .option('--batch <n>', 'sequences per forward pass', '16')
    .option('--out <dir>', 'where mcq.json/.md/.png go (default: .xyp/eval/<timestamp>)')
    .option('--json', 'print one JSON object')
    .action(async (o: McqCommandOptions) => {
      try {
        const result = await runMcqEval(o);
        const { markdown, ...json } = result;
        printResult(json, Boolean(o.json), () => [markdown, `rejected rows: ${result.rejects.count}`, `reports: ${result.files.json}, ${result.files.markdown}, ${result.files.png}`].join('\n'));
      } catch (error) {
        exitWithError(error);
      }
    });
}
