import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { TextRewardItem } from '@xyp/contracts';
import { parseCheckpointRef } from '@xyp/engine';
import { checkScoreItems, loadRewardModel } from '@xyp/reward-serving';
import { ReportedError, exitWithError, printResult, progress } from '../cli-output';
import { configuredBackend, configuredStore } from '../engine-runtime';

interface Options {
  model: string;
  input: string;
  batch: string;
  json?: boolean;
}

/** One input line: a response to score, or a preference pair (both scored, margin = chosen − rejected). */
export type RewardInputLine = { line: number; kind: 'response'; item: TextRewardItem } | { line: number; kind: 'pair'; chosen: TextRewardItem; rejected: TextRewardItem };

export type RewardScoreEntry = { line: number; score: number } | { line: number; chosen: number; rejected: number; margin: number };

export interface RewardScoreReport {
  model: string;
  /** Input lines scored. */
  items: number;
  /** One entry per input line, in order. */
  scores: RewardScoreEntry[];
  /** Over the pair lines: the fraction with chosen > rejected and the mean margin (TRL's `accuracy`, `margin`). */
  pairs?: { count: number; accuracy: number; meanMargin: number };
}

const isText = (value: unknown): value is string => typeof value === 'string';

/**
 * The lines of a JSONL input of `{prompt, response, category?}` or `{prompt, chosen, rejected,
 * category?}` objects (blank lines skipped), each checked as `RewardService.Score` checks an item.
 * Every bad line is named by its number (from 1) in `errors`.
 */
export function parseRewardInput(text: string): { lines: RewardInputLine[]; errors: string[] } {
  const lines: RewardInputLine[] = [];
  const errors: string[] = [];
  text.split('\n').forEach((raw, index) => {
    const line = index + 1;
    if (raw.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (error) {
      errors.push(`line ${line}: not JSON (${error instanceof Error ? error.message : String(error)})`);
      return;
    }
    const record = (typeof value === 'object' && value !== null && !Array.isArray(value) ? value : {}) as Record<string, unknown>;
    const { prompt, response, chosen, rejected, category } = record;
    if (!isText(prompt) || (category !== undefined && !isText(category))) {
      errors.push(`line ${line}: needs a string "prompt" (and "category", if given, a string)`);
      return;
    }
    const cat = isText(category) && category !== '' ? category : undefined;
    try {
      if (isText(response) && chosen === undefined && rejected === undefined) {
        const [item] = checkScoreItems([{ prompt, response, category: cat }], {}, () => `line ${line}`);
        lines.push({ line, kind: 'response', item });
      } else if (isText(chosen) && isText(rejected) && response === undefined) {
        const [a, b] = checkScoreItems(
          [
            { prompt, response: chosen, category: cat },
            { prompt, response: rejected, category: cat },
          ],
          {},
          (i) => `line ${line} (${i === 0 ? 'chosen' : 'rejected'})`,
        );
        lines.push({ line, kind: 'pair', chosen: a, rejected: b });
      } else {
        errors.push(`line ${line}: needs a string "response" ({prompt, response}), or strings "chosen" and "rejected" ({prompt, chosen, rejected}): one of the two forms`);
      }
    } catch (error) {
      errors.push(error instanceof Error ? error.message : String(error));
    }
  });
  return { lines, errors };
}

/** The report of scored lines: `scores` holds the texts' scores in line order (a pair's chosen, then rejected). */
export function rewardScoreReport(model: string, lines: RewardInputLine[], scores: number[]): RewardScoreReport {
  let next = 0;
  const entries: RewardScoreEntry[] = lines.map((l) => {
    if (l.kind === 'response') return { line: l.line, score: scores[next++] };
    const chosen = scores[next++];
    const rejected = scores[next++];
    return { line: l.line, chosen, rejected, margin: chosen - rejected };
  });
  const pairs = entries.filter((e): e is Extract<RewardScoreEntry, { margin: number }> => 'margin' in e);
  const report: RewardScoreReport = { model, items: lines.length, scores: entries };
  if (pairs.length > 0) {
    report.pairs = {
      count: pairs.length,
      accuracy: pairs.filter((p) => p.chosen > p.rejected).length / pairs.length,
      meanMargin: pairs.reduce((a, p) => a + p.margin, 0) / pairs.length,
    };
  }
  return report;
}

function human(report: RewardScoreReport): string {
  const lines = report.scores.map((e) => ('score' in e ? `line ${e.line}: ${e.score.toFixed(6)}` : `line ${e.line}: chosen ${e.chosen.toFixed(6)}, rejected ${e.rejected.toFixed(6)}, margin ${e.margin.toFixed(6)}`));
  lines.push(`${report.items} line(s) scored with ${report.model}`);
  if (report.pairs) lines.push(`pairs: ${report.pairs.count}, accuracy ${report.pairs.accuracy.toFixed(4)}, mean margin ${report.pairs.meanMargin.toFixed(6)}`);
  return lines.join('\n');
}

function positiveInt(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${flag} must be a positive integer, got ${value}`);
  return n;
}

/** Texts scored per call of the model's scorer, so that progress is told and the event loop is served. */
const CHUNK = 256;

/** `xyp reward score`: a JSONL file scored in process by a reward-model checkpoint on the local engine. */
export function registerRewardScore(reward: Command): void {
  reward
    .command('score')
    .description('Score a JSONL of {prompt, response, category?} lines (or {prompt, chosen, rejected} pairs: both scored, with the margin) with a reward model, in process')
    .requiredOption('--model <id>', 'reward-model checkpoint: <runId>/<stage> in the store (XYP_STORE, XYP_STORE_DIR), or a checkpoint directory')
    .requiredOption('--input <file>', 'JSONL input')
    .option('--batch <n>', 'sequences per forward pass', '16')
    .option('--json', 'print one JSON object {model, items, scores, pairs?}')
    .action(async (o: Options) => {
      try {
        const batchSize = positiveInt('batch', o.batch);
        const { lines, errors } = parseRewardInput(readFileSync(o.input, 'utf8'));
        if (errors.length > 0) {
          for (const error of errors.slice(0, 20)) progress(`xyp: ${o.input}: ${error}`);
          if (errors.length > 20) progress(`xyp: ${o.input}: ... and ${errors.length - 20} more bad line(s)`);
          progress(`xyp: ${o.input}: ${errors.length} bad line(s); nothing scored`);
          throw new ReportedError(`${o.input}: ${errors.length} bad line(s)`);
        }
        if (lines.length === 0) throw new Error(`${o.input}: no lines to score`);
        const store = parseCheckpointRef(o.model).kind === 'store' ? configuredStore() : undefined;
        progress(`loading ${o.model}`);
        const served = await loadRewardModel(o.model, { store, backend: configuredBackend(), batchSize });
        try {
          const texts = lines.flatMap((l) => (l.kind === 'response' ? [l.item] : [l.chosen, l.rejected]));
          const scores: number[] = [];
          for (let start = 0; start < texts.length; start += CHUNK) {
            scores.push(...(await served.score(texts.slice(start, start + CHUNK))));
            progress(`scored ${scores.length}/${texts.length}`);
          }
          printResult(rewardScoreReport(served.id, lines, scores), o.json === true, human);
        } finally {
          served.dispose();
        }
        process.exit(0);
      } catch (error) {
        exitWithError(error);
      }
    });
}
