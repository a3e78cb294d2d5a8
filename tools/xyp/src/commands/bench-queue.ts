import type { Command } from 'commander';
import { PlatformEnv, loadConfig } from '@xyp/config';
import { exitWithError, printResult, progress } from '../cli-output';
import { positiveInt } from '../flags';
import { benchQueue, type QueueBenchReport } from '../bench/queue';

interface Options {
  jobs: string;
  concurrency: string;
  repetitions: string;
  storeDir?: string;
  json?: boolean;
}

function human(r: QueueBenchReport): string {
  const n = (x: number) => Math.round(x).toLocaleString('en-US');
  const side = (label: string, s: QueueBenchReport['raw']) =>
    `${label} ${n(s.median).padStart(8)} jobs/s median (min ${n(s.min)}, max ${n(s.max)}; rounds ${s.rounds.map(n).join(', ')})`;
  const commands = (c: Record<string, number>) => Object.entries(c).map(([command, calls]) => `${command} ${calls}`).join(', ');
  return [
    `${r.jobs} no-op jobs per round, concurrency ${r.concurrency}, ${r.repetitions} rounds each side (interleaved), Redis ${r.redis.version} at ${r.redis.host}:${r.redis.port}, ${r.machine.cpus} CPUs, ${r.machine.node}`,
    side('raw BullMQ (addBulk + Worker, no-op)     ', r.raw),
    side('StageWorker (corpus.inspect, no-op work) ', r.project),
    `ratio ${r.ratio.toFixed(3)} (each round against the raw one before it: median ${r.pairRatios.median}, ${r.pairRatios.min}–${r.pairRatios.max}); target ≥ ${r.target}: ${r.met ? 'met' : 'MISSED'}`,
    `Redis commands per job (in BullMQ's scripts included; server-wide, so other clients add to them):`,
    `  raw     ${commands(r.redisCommandsPerJob.raw)}`,
    `  project ${commands(r.redisCommandsPerJob.project)}`,
    `manifests in ${r.store.dir}${r.store.tmpfs ? ' (tmpfs)' : ''}`,
    'where a project job spends its time (one extra round, calls timed; they overlap across jobs in flight):',
    ...Object.entries(r.breakdown).map(([name, c]) => `  ${name.padEnd(32)} ${String(c.callsPerJob).padStart(5)} per job, ${c.meanMs.toFixed(3)} ms each`),
  ].join('\n');
}

/** `xyp bench queue`: no-op stage jobs/s through the worker base beside raw BullMQ on the same Redis. */
export function registerBenchQueue(bench: Command): void {
  bench
    .command('queue')
    .description(
      "No-op stage jobs per second through the project's worker base (StageWorker: payload validation, deterministic ids, run events, manifest) beside raw BullMQ (addBulk + a no-op Worker), same Redis (XYP_REDIS_URL), job count and concurrency, rounds interleaved; median, min/max and the ratio",
    )
    .option('--jobs <n>', 'jobs per round, each side', '5000')
    .option('--concurrency <n>', "the BullMQ Worker's concurrency, each side", '8')
    .option('--repetitions <n>', 'timed rounds of each side', '5')
    .option('--store-dir <dir>', 'where the project side commits its manifests (default: a temporary directory on /dev/shm when there is one)')
    .option('--json', 'print one JSON object')
    .action(async (o: Options) => {
      try {
        const env = loadConfig(PlatformEnv);
        const report = await benchQueue({
          redisUrl: env.XYP_REDIS_URL,
          jobs: positiveInt('jobs', o.jobs),
          concurrency: positiveInt('concurrency', o.concurrency),
          repetitions: positiveInt('repetitions', o.repetitions),
          ...(o.storeDir ? { storeDir: o.storeDir } : {}),
          progress,
        });
        printResult(report, o.json === true, human);
        process.exit(0);
      } catch (error) {
        exitWithError(error);
      }
    });
}
