import type { Command } from 'commander';
import { benchGateway, type GatewayBenchReport } from '@xyp/llm';
import { exitWithError, printResult, progress } from '../cli-output';
import { positiveInt as int, positiveNumber as num } from '../flags';

interface Options {
  latencyMs: string;
  rounds: string;
  overheadCalls: string;
  json?: boolean;
}

/** The report of `xyp bench synth`: the gateway's figures (other synthesis figures join it here). */
export type SynthBenchReport = GatewayBenchReport;

function human(r: SynthBenchReport): string {
  const rows = Object.values(r.levels).map((l) => `  concurrency ${String(l.concurrency).padStart(3)}: ${l.callsPerSecond} calls/s of an ideal ${l.idealCallsPerSecond} → efficiency ${l.efficiency} (${l.requests} calls, mean ${l.meanLatencyMs} ms)`);
  const o = r.overhead;
  return [
    `LLM gateway against the fault server (${r.latencyMs} ms per request, ${r.rounds} rounds per level), target efficiency ≥ 0.95 at 64`,
    ...rows,
    `overhead per call: ${r.overheadMsPerCall} ms against a raw fetch (gateway ${o.gatewayMeanMs} ms, fetch ${o.rawFetchMeanMs} ms, node:http ${o.rawNodeHttpMeanMs} ms; ${o.calls} calls each, zero latency)`,
    `requests ${r.requests}, lost items ${r.lostItems}`,
  ].join('\n');
}

/** `xyp bench synth`: the LLM gateway's throughput at concurrency 1/8/64/256 and its overhead per call. */
export function registerBenchSynth(bench: Command): void {
  bench
    .command('synth')
    .description("The LLM gateway's throughput at concurrency 1, 8, 64 and 256 against a local OpenAI-compatible server with a fixed latency, as a fraction of concurrency ÷ latency, and its overhead per call against a raw fetch")
    .option('--latency-ms <ms>', 'the server latency per request', '200')
    .option('--rounds <n>', 'timed calls per worker at each level', '8')
    .option('--overhead-calls <n>', 'calls of each kind for the overhead', '1000')
    .option('--json', 'print one JSON object')
    .action(async (o: Options) => {
      try {
        const report: SynthBenchReport = {
          ...(await benchGateway({ latencyMs: num('latency-ms', o.latencyMs), rounds: int('rounds', o.rounds), overheadCalls: int('overhead-calls', o.overheadCalls), onProgress: progress })),
        };
        printResult(report, o.json === true, human);
        process.exit(0);
      } catch (error) {
        exitWithError(error);
      }
    });
}
