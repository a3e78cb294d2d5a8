import type { Command } from 'commander';
import { exitWithError, printResult, progress } from '../cli-output';
import { configuredBackend } from '../engine-runtime';
import { DEFAULT_REWARD_BENCH_SIZE, runRewardBench, type RewardBenchReport, type ThroughputFigures } from '../bench/reward-bench';

interface Options {
  layers: string;
  width: string;
  heads: string;
  context: string;
  seconds: string;
  callers: string;
  rounds: string;
  json?: boolean;
}

function positive(flag: string, value: string, integer = true): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) throw new Error(`--${flag} must be a positive ${integer ? 'integer' : 'number'}, got ${value}`);
  return n;
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
  return rows.map((row) => row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ')).join('\n');
}

function human(report: RewardBenchReport): string {
  const m = report.model;
  const b = report.backend;
  const f = (x: ThroughputFigures) => [String(x.pairsPerSecond), String(x.p50Ms), String(x.p99Ms)];
  const lines = [
    `reward model ${m.layers}L/${m.width}w/${m.heads}h/ctx ${m.context}, ${m.parameters} params, ${m.weights}`,
    `backend ${b.backend}, matmul ${b.matmul}, ${b.threads} thread(s); ${report.transport}`,
    `batching: ${report.batching.windowMs} ms window, at most ${report.batching.maxBatch} items; unbatched: window 0, max batch 1; ${report.secondsPerMeasurement} s per measurement`,
    '',
    'Score, one caller',
    table([
      ['batch', 'in-process pairs/s', 'batched pairs/s', 'p50 ms', 'p99 ms', 'unbatched pairs/s', 'p50 ms', 'p99 ms'],
      ...report.score.map((s) => [String(s.batch), String(s.inProcessPairsPerSecond), ...f(s.batched), ...f(s.unbatched)]),
    ]),
    '',
    `${report.concurrent.callers} concurrent callers, ${report.concurrent.itemsPerCall} item per call, ${report.concurrent.rounds} rounds per side (alternating)`,
    table([
      ['server', 'pairs/s', 'p50 ms', 'p99 ms', 'mean batch'],
      ['batched', ...f(report.concurrent.batched), String(report.concurrent.batched.meanBatch)],
      ['unbatched', ...f(report.concurrent.unbatched), String(report.concurrent.unbatched.meanBatch)],
    ]),
    `batching gain: ${report.batchingGain}x`,
  ];
  return lines.join('\n');
}

/** `xyp bench reward`: RewardService.Score throughput and latency on a real gRPC server in process, batched and unbatched side by side. */
export function registerBenchReward(parent: Command): void {
  const d = DEFAULT_REWARD_BENCH_SIZE;
  parent
    .command('reward')
    .description('RewardService.Score on a real gRPC server in this process: pairs/s at batch 1/8/64, p50/p99 under concurrent callers, and the gain of cross-caller batching (random-weight reward model)')
    .option('--layers <n>', 'reward model layers', String(d.layers))
    .option('--width <n>', 'reward model width', String(d.width))
    .option('--heads <n>', 'attention heads', String(d.heads))
    .option('--context <n>', 'context length (tokens kept per scored sequence)', String(d.context))
    .option('--seconds <s>', 'seconds per measurement', '2')
    .option('--callers <n>', 'concurrent callers', '16')
    .option('--rounds <n>', 'rounds per server of the concurrent comparison, alternating', '2')
    .option('--json', 'print one JSON object')
    .action(async (o: Options) => {
      try {
        const report = await runRewardBench({
          size: { layers: positive('layers', o.layers), width: positive('width', o.width), heads: positive('heads', o.heads), context: positive('context', o.context) },
          seconds: positive('seconds', o.seconds, false),
          callers: positive('callers', o.callers),
          rounds: positive('rounds', o.rounds),
          backend: configuredBackend(),
          onProgress: progress,
        });
        printResult(report, o.json === true, human);
        process.exit(0);
      } catch (error) {
        exitWithError(error);
      }
    });
}
