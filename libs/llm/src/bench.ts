/**
 * The gateway's throughput and overhead against the fault server (`xyp bench synth`), client and
 * server in this one process:
 *
 * - efficiency at concurrency c: calls/s through the gateway ÷ the ideal c ÷ latency, the server
 *   answering every request after a fixed latency. The model's `maxConcurrency` is c; c workers
 *   call back to back, worker i starting i/c of a latency after the first (arrivals spread as in a
 *   running pipeline, not c calls in lockstep); each makes one warm-up call (connections open),
 *   then `rounds` timed calls; calls/s is the sum of the workers' rates (calls ÷ their own span).
 *   Before the first level, 200 calls to the zero-latency server warm the code paths;
 * - overhead per call: mean time of a gateway call − mean time of a raw `fetch` (Node's built-in)
 *   of the same request, side by side in alternating blocks at concurrency 1 on a second,
 *   zero-latency server; also against a raw request over the gateway's own transport
 *   (`nodeHttpFetch`), which isolates what the openai client and the gateway add;
 * - lost items: calls issued − correct answers received (each answer is checked against the
 *   server's deterministic reply); must be 0.
 */
import { fakeReply, startFakeOpenAi } from './fault-server';
import { LlmGateway } from './gateway';
import { nodeHttpFetch } from './http-transport';

export interface GatewayBenchOptions {
  /** The server's latency per request. Default 200 ms. */
  latencyMs?: number;
  /** Concurrency levels. Default 1, 8, 64, 256. */
  levels?: number[];
  /** Timed calls per worker (rounds × c calls per level). Default 8. */
  rounds?: number;
  /** Calls of each kind (gateway, raw fetch, raw node:http) for the overhead. Default 1,000. */
  overheadCalls?: number;
  onProgress?: (line: string) => void;
}

export interface GatewayBenchLevel {
  concurrency: number;
  /** Timed calls. */
  requests: number;
  seconds: number;
  callsPerSecond: number;
  idealCallsPerSecond: number;
  efficiency: number;
  /** c ÷ calls/s (Little's law). */
  meanLatencyMs: number;
}

export interface GatewayBenchOverhead {
  calls: number;
  gatewayMeanMs: number;
  rawFetchMeanMs: number;
  rawNodeHttpMeanMs: number;
  /** Gateway − raw node:http: the openai client plus the gateway on the same transport. */
  overheadMsPerCallVsNodeHttp: number;
}

export interface GatewayBenchReport {
  latencyMs: number;
  rounds: number;
  /** Calls issued in all (warm-ups and the overhead's included). */
  requests: number;
  /** Calls issued − correct answers received. */
  lostItems: number;
  /** By concurrency: calls/s ÷ (concurrency ÷ latency). */
  efficiency: Record<string, number>;
  levels: Record<string, GatewayBenchLevel>;
  /** Mean gateway call − mean raw fetch, ms, zero-latency server, concurrency 1. */
  overheadMsPerCall: number;
  overhead: GatewayBenchOverhead;
}

const round = (x: number, digits = 3) => Number(x.toFixed(digits));
const WARM_UP_CALLS = 200;

/**
 * `concurrency` workers, each making `calls` calls back to back, worker w starting w/c of
 * `spreadMs` after the first; resolves with the sum of the workers' rates (calls/s over each one's span).
 */
async function staggeredWorkers(concurrency: number, calls: number, spreadMs: number, job: () => Promise<void>): Promise<number> {
  const rates = await Promise.all(
    Array.from({ length: concurrency }, async (_, w) => {
      if (w > 0) await new Promise((r) => setTimeout(r, (spreadMs * w) / concurrency));
      const started = performance.now();
      for (let i = 0; i < calls; i++) await job();
      return calls / ((performance.now() - started) / 1000);
    }),
  );
  return rates.reduce((a, b) => a + b, 0);
}

export async function benchGateway(options: GatewayBenchOptions = {}): Promise<GatewayBenchReport> {
  const latencyMs = options.latencyMs ?? 200;
  const levels = options.levels ?? [1, 8, 64, 256];
  const rounds = options.rounds ?? 8;
  const overheadCalls = options.overheadCalls ?? 1000;
  const progress = options.onProgress ?? (() => undefined);
  let issued = 0;
  let answered = 0;
  let serial = 0;

  const slow = await startFakeOpenAi({ latencyMs, log: false });
  const fast = await startFakeOpenAi({ latencyMs: 0, log: false });
  const rawTransport = nodeHttpFetch();
  const gateway = new LlmGateway({
    models: [
      ...levels.map((c) => ({ name: `bench-c${c}`, baseUrl: slow.baseUrl, model: 'fake-model', maxConcurrency: c, timeoutMs: 30_000 })),
      { name: 'bench-overhead', baseUrl: fast.baseUrl, model: 'fake-model', maxConcurrency: 1, timeoutMs: 30_000 },
    ],
  });
  try {
    const viaGateway = (model: string) => async (): Promise<void> => {
      const prompt = `bench item ${serial++}`;
      issued++;
      const result = await gateway.chat(model, { messages: [{ role: 'user', content: prompt }], max_tokens: 16 });
      if (result.content === fakeReply(prompt)) answered++;
    };
    const raw = (send: typeof fetch) => async (): Promise<void> => {
      const prompt = `bench item ${serial++}`;
      issued++;
      const response = await send(`${fast.baseUrl}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: 'Bearer no-key' },
        body: JSON.stringify({ model: 'fake-model', messages: [{ role: 'user', content: prompt }], max_tokens: 16 }),
      });
      const body = (await response.json()) as { choices: { message: { content: string } }[] };
      if (body.choices[0].message.content === fakeReply(prompt)) answered++;
    };

    // Warm the code paths (JIT) before anything is timed.
    for (let i = 0; i < WARM_UP_CALLS; i++) await viaGateway('bench-overhead')();
    const byLevel: Record<string, GatewayBenchLevel> = {};
    for (const c of levels) {
      const call = viaGateway(`bench-c${c}`);
      await staggeredWorkers(c, 1, latencyMs, call);
      const started = performance.now();
      const callsPerSecond = await staggeredWorkers(c, rounds, latencyMs, call);
      const seconds = (performance.now() - started) / 1000;
      const idealCallsPerSecond = c / (latencyMs / 1000);
      const efficiency = callsPerSecond / idealCallsPerSecond;
      byLevel[String(c)] = {
        concurrency: c,
        requests: rounds * c,
        seconds: round(seconds),
        callsPerSecond: round(callsPerSecond, 1),
        idealCallsPerSecond: round(idealCallsPerSecond, 1),
        efficiency: round(efficiency),
        meanLatencyMs: round((1000 * c) / callsPerSecond, 2),
      };
      progress(`concurrency ${c}: ${rounds * c} calls, ${callsPerSecond.toFixed(1)} calls/s of an ideal ${idealCallsPerSecond.toFixed(1)} (efficiency ${efficiency.toFixed(3)})`);
    }

    const [gatewayMeanMs, rawFetchMeanMs, rawNodeHttpMeanMs] = await sideBySide(overheadCalls, [viaGateway('bench-overhead'), raw(fetch), raw(rawTransport.fetch)]);
    const overhead: GatewayBenchOverhead = {
      calls: overheadCalls,
      gatewayMeanMs: round(gatewayMeanMs, 4),
      rawFetchMeanMs: round(rawFetchMeanMs, 4),
      rawNodeHttpMeanMs: round(rawNodeHttpMeanMs, 4),
      overheadMsPerCallVsNodeHttp: round(gatewayMeanMs - rawNodeHttpMeanMs),
    };
    progress(`per call at concurrency 1, zero-latency server: gateway ${overhead.gatewayMeanMs} ms, raw fetch ${overhead.rawFetchMeanMs} ms, raw node:http ${overhead.rawNodeHttpMeanMs} ms`);

    return {
      latencyMs,
      rounds,
      requests: issued,
      lostItems: issued - answered,
      efficiency: Object.fromEntries(Object.entries(byLevel).map(([c, l]) => [c, l.efficiency])),
      levels: byLevel,
      overheadMsPerCall: round(gatewayMeanMs - rawFetchMeanMs),
      overhead,
    };
  } finally {
    gateway.close();
    rawTransport.close();
    await Promise.all([slow.close(), fast.close()]);
  }
}

/** Mean ms per call of each kind: a warm-up block of each, then alternating blocks of 50 until `calls` of each. */
async function sideBySide(calls: number, kinds: (() => Promise<void>)[]): Promise<number[]> {
  const block = 50;
  for (const kind of kinds) for (let i = 0; i < block; i++) await kind();
  const totals = kinds.map(() => 0);
  for (let done = 0; done < calls; done += block) {
    const n = Math.min(block, calls - done);
    for (const [k, kind] of kinds.entries()) {
      const t = performance.now();
      for (let i = 0; i < n; i++) await kind();
      totals[k] += performance.now() - t;
    }
  }
  return totals.map((total) => total / calls);
}
