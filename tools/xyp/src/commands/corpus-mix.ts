import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { decideMixture, type CategoryChange, type MixtureDecision } from '@xyp/mixture';
import { exitWithError, printResult, progress } from '../cli-output';

interface MixOptions {
  losses: string;
  weights: string;
  config?: string;
  sft?: boolean;
  json?: boolean;
}

function readText(file: string, flag: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    const reason = error instanceof Error && 'code' in error ? String(error.code) : String(error);
    throw new Error(`cannot read ${flag} ${file}: ${reason}`, { cause: error });
  }
}

function num(value: number | null, digits: number, signed = false): string {
  if (value === null) return '-';
  return `${signed && value >= 0 ? '+' : ''}${value.toFixed(digits)}`;
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, col) => Math.max(...rows.map((r) => r[col].length)));
  return rows.map((r) => r.map((cell, col) => (col === 0 ? cell.padEnd(widths[col]) : cell.padStart(widths[col]))).join('  ')).join('\n');
}

function human(decision: MixtureDecision): string {
  const header = ['category', 'status', 'L_ref', 'L_now', 'trend', 'signal', 'old', 'new', 'change'];
  const rows = decision.changes.map((c: CategoryChange) => [
    c.category,
    c.status,
    num(c.lossReference, 4),
    num(c.lossNow, 4),
    c.trend === null ? '-' : `${num((Math.exp(c.trend) - 1) * 100, 1, true)}%`,
    num(c.signal, 3, true),
    num(c.oldWeight, 4),
    num(c.newWeight, 4),
    num(c.delta, 4, true),
  ]);
  const unit = decision.mode === 'sft-epoch' ? 'epochs' : 'steps';
  const lines = [
    `${decision.mode === 'sft-epoch' ? 'SFT ratios' : 'CPT mixture'} from ${unit} ${decision.stage.fromStep}–${decision.stage.toStep} (${decision.stage.lines} loss lines)`,
    '',
    table([header, ...rows]),
    '',
    ...decision.changes.map((c) => `${c.category}: ${c.reason}${c.flags.length > 0 ? ` [${c.flags.join(', ')}]` : ''}`),
  ];
  if (decision.notes.length > 0) lines.push('', ...decision.notes.map((n) => `note: ${n}`));
  return lines.join('\n');
}

/**
 * `xyp corpus mix`: the dynamic data-mixture controller (XuanYuan3, 动态数据训练策略) over
 * files. Reads a JSONL per-category loss report and the current weights, prints the next
 * stage's weights (or, with --sft, the next epoch's SFT ratios) and why each one moved.
 */
export function registerCorpusMix(parent: Command): void {
  parent
    .command('mix')
    .description('Next data-mixture weights from per-category losses: share moves from easy (fast-converging) to hard categories')
    .requiredOption('--losses <file>', 'JSONL loss report, one {"step","category","loss","tokens"?} per line')
    .requiredOption('--weights <file>', 'current weights as JSON {"category": weight} (or a previous --json output)')
    .option('--config <file>', 'controller config as JSON (learningRate, smoothing, minShare, maxShare, maxStep, ...)')
    .option('--sft', 'treat steps as SFT epochs and return next-epoch ratios')
    .option('--json', 'print {weights, changes, stage, notes, config} as JSON')
    .action((options: MixOptions) => {
      try {
        const decision = decideMixture({
          losses: { text: readText(options.losses, '--losses'), source: options.losses },
          weights: { text: readText(options.weights, '--weights'), source: options.weights },
          config: options.config === undefined ? undefined : { text: readText(options.config, '--config'), source: options.config },
          sft: options.sft === true,
        });
        progress(`read ${decision.stage.lines} loss lines over ${decision.changes.length} categories from ${options.losses}`);
        const { mode, weights: next, changes, stage, notes, config: resolved } = decision;
        printResult({ weights: next, changes, mode, stage, notes, config: resolved }, options.json === true, () => human(decision));
      } catch (error) {
        exitWithError(error);
      }
    });
}
