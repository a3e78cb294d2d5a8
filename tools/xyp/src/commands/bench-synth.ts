import type { Command } from 'commander';
import { benchGateway, startFakeOpenAi, type GatewayBenchReport } from '@xyp/llm';
import { benchSynthesisStreaming, type SynthesisStreamingBenchReport } from '@xyp/synthesis-stages';
import { exitWithError, printResult, progress } from '../cli-output';
import { positiveInt as int, positiveNumber as num } from '../flags';

interface Options {
  latencyMs: string;
  rounds: string;
  overheadCalls: string;
  streamItems: string;
  json?: boolean;
}

/**
 * The report of `xyp bench synth`: the gateway's figures, and under `streaming` the synthesis driver's
 * run of `streamItems` queued ensemble queries from and to files (peak RSS, lost items); `peakRssMb`
 * and `lostItems` at the top level sum up both parts.
 */
export type SynthBenchReport = GatewayBenchReport & { streaming?: SynthesisStreamingBenchReport & { baselineRssMb: number }; peakRssMb?: number };

function human(r: SynthBenchReport): string {
  const rows = Object.values(r.levels).map((l) => `  concurrency ${String(l.concurrency).padStart(3)}: ${l.callsPerSecond} calls/s of an ideal ${l.idealCallsPerSecond} → efficiency ${l.efficiency} (${l.requests} calls, mean ${l.meanLatencyMs} ms)`);
  const o = r.overhead;
  return [
    `LLM gateway against the fault server (${r.latencyMs} ms per request, ${r.rounds} rounds per level), target efficiency ≥ 0.95 at 64`,
    ...rows,
    `overhead per call: ${r.overheadMsPerCall} ms against a raw fetch (gateway ${o.gatewayMeanMs} ms, fetch ${o.rawFetchMeanMs} ms, node:http ${o.rawNodeHttpMeanMs} ms; ${o.calls} calls each, zero latency)`,
    `requests ${r.requests}, lost items ${r.lostItems}`,
    ...(r.streaming
      ? [
          `streaming: ${r.streaming.items} queued ensemble queries through the synthesis driver in ${r.streaming.seconds} s (${r.streaming.itemsPerSecond} items/s, ${r.streaming.httpCalls} calls), peak RSS ${r.streaming.peakRssMb} MB (${r.streaming.baselineRssMb} MB before), lost items ${r.streaming.lostItems}`,
        ]
      : []),
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
    .option('--stream-items <n>', 'queued ensemble queries streamed through the synthesis driver for the peak memory (0: skip)', '100000')
    .option('--json', 'print one JSON object')
    .action(async (o: Options) => {
      try {
        const report: SynthBenchReport = {
          ...(await benchGateway({ latencyMs: num('latency-ms', o.latencyMs), rounds: int('rounds', o.rounds), overheadCalls: int('overhead-calls', o.overheadCalls), onProgress: progress })),
        };
        const streamItems = Number(o.streamItems);
        if (!Number.isInteger(streamItems) || streamItems < 0) throw new Error(`--stream-items must be a whole number, got ${o.streamItems}`);
        if (streamItems > 0) {
          const baselineRssMb = Math.round(process.memoryUsage().rss / 2 ** 20);
          // The server keeps no request log: only the driver's memory is measured.
          const server = await startFakeOpenAi({ latencyMs: 1, log: false });
          try {
            progress(`streaming ${streamItems} queued ensemble queries through the synthesis driver (1 ms server)`);
            const streaming = await benchSynthesisStreaming({ url: server.url, items: streamItems, onProgress: progress });
            report.streaming = { ...streaming, baselineRssMb };
            report.peakRssMb = streaming.peakRssMb;
            report.lostItems += streaming.lostItems;
          } finally {
            await server.close();
          }
        }
        printResult(report, o.json === true, human);
        process.exit(0);
      } catch (error) {
        exitWithError(error);
      }
    });
}
