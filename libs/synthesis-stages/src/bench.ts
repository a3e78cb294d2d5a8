/**
 * The streaming benchmark of the synthesis driver (`xyp bench synth`): `items` generated ensemble
 * queries, written to a temporary JSONL file, streamed through `runEnsemble` (three ensemble models
 * and an aggregator, all on the given OpenAI-compatible server — the fault server, started by the
 * caller) with an in-process reward (a hash of the answer, so about a quarter of the candidates
 * fall under the threshold), to a temporary `directoryOutput`. Reports the wall time, the peak
 * RSS (sampled every 100 ms), the items kept and the inputs without exactly one outcome in
 * `outcomes.jsonl` (`lostItems`, which must be 0). The temporary files are removed.
 */
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TextReward } from '@xyp/contracts';
import { LlmGateway } from '@xyp/llm';
import { hashString } from '@xyp/random';
import { categoriesFor } from '@xyp/synthesis';
import { runEnsemble } from './ensemble';
import { fileLines, readInputs } from './inputs';
import { directoryOutput } from './output';

export interface SynthesisStreamingBenchOptions {
  /** The OpenAI-compatible server (e.g. `startFakeOpenAi(...).url`). */
  url: string;
  /** Queries streamed. Default 100,000. */
  items?: number;
  /** The run's item concurrency, and each model's `maxConcurrency`. Default 256. */
  concurrency?: number;
  onProgress?: (line: string) => void;
}

export interface SynthesisStreamingBenchReport {
  items: number;
  kept: number;
  /** Inputs without exactly one outcome (must be 0). */
  lostItems: number;
  seconds: number;
  peakRssMb: number;
  itemsPerSecond: number;
  /** Chat calls answered over HTTP, all models. */
  httpCalls: number;
}

const MODELS = ['bench-a', 'bench-b', 'bench-c'] as const;
const AGGREGATOR = 'bench-fuse';

/** Runs the benchmark (module comment). */
export async function benchSynthesisStreaming(options: SynthesisStreamingBenchOptions): Promise<SynthesisStreamingBenchReport> {
  const items = options.items ?? 100_000;
  const concurrency = options.concurrency ?? 256;
  const dir = await mkdtemp(join(tmpdir(), 'xyp-synth-bench-'));
  const categories = categoriesFor('ensemble');
  const gateway = new LlmGateway({
    models: [...MODELS, AGGREGATOR].map((name) => ({ name, baseUrl: options.url, model: 'fake-model', maxConcurrency: concurrency, timeoutMs: 60_000 })),
    maxAttempts: 3,
  });
  const reward: TextReward = async (batch) => batch.map((item) => (hashString(item.response) % 1000) / 1000);
  let peakRss = process.memoryUsage().rss;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 100);
  sampler.unref();
  try {
    const input = join(dir, 'queries.jsonl');
    const writer = createWriteStream(input);
    for (let i = 0; i < items; i++) {
      const line = `${JSON.stringify({ id: `q${i}`, category: categories[i % categories.length].id, query: `第${i}个问题：请解释一下${categories[i % categories.length].name}中常见的风险与注意事项。` })}\n`;
      if (!writer.write(line)) await once(writer, 'drain');
    }
    writer.end();
    await once(writer, 'finish');

    const started = performance.now();
    const { summary, files } = await runEnsemble(
      readInputs('ensemble', input),
      { models: { ensemble: [...MODELS], aggregator: AGGREGATOR }, selection: { threshold: { absolute: 0.25 } }, concurrency, chunkSize: 64, sampling: { max_tokens: 64, temperature: 0.7 } },
      { gateway, reward, output: directoryOutput(join(dir, 'out')), onProgress: (p) => (p.chunk % 100 === 0 ? options.onProgress?.(`synth bench: ${p.inputs}/${items} inputs, ${p.kept} kept`) : undefined) },
    );
    const seconds = (performance.now() - started) / 1000;
    peakRss = Math.max(peakRss, process.memoryUsage().rss);

    const outcomes = new Map<string, number>();
    for await (const line of fileLines(files.outcomes)) {
      const id = (JSON.parse(line) as { id: string }).id;
      outcomes.set(id, (outcomes.get(id) ?? 0) + 1);
    }
    let lostItems = 0;
    for (let i = 0; i < items; i++) if (outcomes.get(`q${i}`) !== 1) lostItems++;
    const httpCalls = Object.values(gateway.stats()).reduce((sum, s) => sum + s.answered, 0);
    return { items, kept: summary.accounting.kept, lostItems, seconds: Math.round(seconds * 100) / 100, peakRssMb: Math.round(peakRss / 2 ** 20), itemsPerSecond: Math.round(items / seconds), httpCalls };
  } finally {
    clearInterval(sampler);
    gateway.close();
    await rm(dir, { recursive: true, force: true });
  }
}
