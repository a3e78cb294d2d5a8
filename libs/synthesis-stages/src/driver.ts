/**
 * The one driver of the four generators: input records stream in, are cut into chunks by position
 * (`chunkSize` records each), and each chunk is handed to the generator, its outcomes checked and
 * the chunk committed to the `SynthesisOutput`. Memory stays bounded whatever the input's size: at
 * most ⌈concurrency / chunkSize⌉ + 1 chunks are read ahead and in flight, and the generator's work
 * on their inputs runs in at most `concurrency` item slots at once (`ChunkContext.slot`).
 *
 * Exactly once:
 * - a chunk already committed (`output.committed()`) is skipped without a call; its header must
 *   hold the same input ids, generator and chunk size, else the run refuses (the input changed);
 * - every chunk's outcomes are checked with `summarizeAccounting` (each of its inputs exactly once,
 *   nothing else) before it is committed, and the run's accounting is the sum of its chunks'. With
 *   ids unique over the whole input (the readers turn a repeated id into a `duplicate-id` record
 *   of its own) and chunks 0…n−1 all committed, that is every input exactly once;
 * - a failure that is not one input's (an endpoint down after the gateway's retries, the reward
 *   service failing, an abort) stops the run: in-flight calls are aborted, nothing more is
 *   committed, and the error (naming the endpoint) is thrown. What was committed stays; a rerun on
 *   the same output resumes after it.
 * Item failures — a call the endpoint refused for good (a 4xx), output that would not parse — are
 * outcomes (`failed` with a reason) and the run goes on.
 */
import { setMaxListeners } from 'node:events';
import { LlmGatewayError, Semaphore, type ModelStats } from '@xyp/llm';
import { SftItem, summarizeAccounting, type SynthesisMethod } from '@xyp/synthesis';
import type { InputRecord, InvalidInput, ValidInput } from './inputs';
import { addAccounting, addStats, emptyAccounting, sortedKeys, type SynthesisOutcome } from './outcomes';
import type { ChunkHeader, SynthesisFiles, SynthesisOutput, SynthesisSummary } from './output';

export interface ChunkContext {
  index: number;
  /** Aborted when the run stops (the caller's signal, or another chunk's failure). */
  signal: AbortSignal;
  /** Runs `work` in one of the run's `concurrency` item slots. */
  slot<R>(work: () => Promise<R>): Promise<R>;
  /** The chunk's last saved in-chunk state, from a run that stopped before committing it. */
  progress: unknown;
  saveProgress(state: unknown): Promise<void>;
}

export interface ChunkResult {
  /** In input order. */
  items: SftItem[];
  /** One per valid input of the chunk. */
  outcomes: SynthesisOutcome[];
  stats: Record<string, number>;
  state?: unknown;
}

/** A generator as the driver runs it. */
export interface ChunkGenerator<T> {
  method: SynthesisMethod;
  /** The parsed configuration (into the summary). */
  config: unknown;
  concurrency: number;
  chunkSize: number;
  /** The chunk's valid inputs (invalid lines are the driver's) → items, outcomes, step counters. */
  run(inputs: ValidInput<T>[], context: ChunkContext): Promise<ChunkResult>;
}

export interface SynthesisProgress {
  /** The chunk just committed or skipped. */
  chunk: number;
  skipped: boolean;
  /** So far, over committed and skipped chunks. */
  inputs: number;
  items: number;
  kept: number;
  dropped: number;
  failed: number;
}

export interface RunOptions {
  output: SynthesisOutput;
  /** Per-model gateway figures for the summary (`() => gateway.stats()`). */
  gatewayStats?: () => Record<string, ModelStats>;
  signal?: AbortSignal;
  onProgress?: (progress: SynthesisProgress) => void;
}

export interface SynthesisRunResult {
  summary: SynthesisSummary;
  files: SynthesisFiles;
}

/** A run that stopped: names the generator, the chunk, how much was committed, and the cause. */
export class SynthesisRunError extends Error {
  constructor(
    message: string,
    readonly chunk: number,
    override readonly cause: unknown,
  ) {
    super(message, { cause });
    this.name = 'SynthesisRunError';
  }
}

/** The outcome of an input line the reader found invalid. */
export function invalidOutcome(record: InvalidInput): SynthesisOutcome {
  return { id: record.id, category: record.category, status: 'failed', reason: record.reason, detail: record.detail, line: record.line };
}

/**
 * A failure that is the item's own: the endpoint refused this request for good (a 4xx other than
 * 408/409/429: a bad or too long request, a content filter). Anything else — retries exhausted,
 * a connection refused, an abort — is the run's and is rethrown by the callers.
 */
export function itemFailureDetail(error: unknown): string | undefined {
  return error instanceof LlmGatewayError && error.permanent ? error.message : undefined;
}

function sameIds(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((id, i) => id === b[i]);
}

function checkCommitted(header: ChunkHeader, method: SynthesisMethod, chunkSize: number, ids: readonly string[]): void {
  const where = `committed chunk ${header.index}`;
  if (header.generator !== method) throw new Error(`${where} was made by ${header.generator}, not ${method}: use a fresh output`);
  if (header.chunkSize !== chunkSize) throw new Error(`${where} has chunk size ${header.chunkSize}, this run ${chunkSize}: rerun with the same chunk size or a fresh output`);
  if (!sameIds(header.inputIds, ids)) throw new Error(`${where} holds other inputs than the input's chunk ${header.index} does now (the input changed since): use a fresh output`);
}

/** Runs `generator` over `inputs` (module comment) and finishes the output. */
export async function runSynthesis<T>(generator: ChunkGenerator<T>, inputs: AsyncIterable<InputRecord<T>>, options: RunOptions): Promise<SynthesisRunResult> {
  const { output, signal } = options;
  const { method, chunkSize } = generator;
  signal?.throwIfAborted();
  const committed = await output.committed();
  const controller = new AbortController();
  // Every call in flight listens on the run's signal: as many listeners as the concurrency allows.
  setMaxListeners(0, controller.signal);
  const onAbort = () => controller.abort(signal?.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  const slots = new Semaphore(generator.concurrency);
  const maxChunksInFlight = Math.ceil(generator.concurrency / chunkSize) + 1;
  const inFlight = new Set<Promise<void>>();
  const accounting = emptyAccounting();
  const stats: Record<string, number> = {};
  let items = 0;
  let chunks = 0;
  let committedBefore = 0;
  let failure: { chunk: number; error: unknown } | undefined;

  const report = (chunk: number, skipped: boolean) =>
    options.onProgress?.({ chunk, skipped, inputs: accounting.inputs, items, kept: accounting.kept, dropped: accounting.dropped, failed: accounting.failed });

  const context = (index: number, progress: unknown): ChunkContext => ({
    index,
    signal: controller.signal,
    progress,
    saveProgress: (state) => output.saveProgress(index, state),
    async slot(work) {
      const release = await slots.acquire(controller.signal);
      try {
        return await work();
      } finally {
        release();
      }
    },
  });

  async function processChunk(index: number, records: InputRecord<T>[]): Promise<void> {
    const ids = records.map((r) => r.id);
    const valid = records.filter((r): r is ValidInput<T> => r.kind === 'input');
    const progress = await output.loadProgress(index);
    const result = valid.length > 0 ? await generator.run(valid, context(index, progress)) : { items: [], outcomes: [], stats: {} };
    const byId = new Map(result.outcomes.map((o) => [o.id, o] as const));
    const all = [...result.outcomes, ...records.filter((r): r is InvalidInput => r.kind === 'invalid').map(invalidOutcome)];
    // Throws AccountingError naming an input without an outcome, with two, or an unknown id.
    const chunkAccounting = summarizeAccounting(ids, all);
    const outcomes = records.map((r) => (r.kind === 'invalid' ? invalidOutcome(r) : (byId.get(r.id) as SynthesisOutcome)));
    const itemIds = new Set<string>();
    const checked = result.items.map((item) => {
      const parsed = SftItem.safeParse(item);
      if (!parsed.success) throw new Error(`${method}: item ${item.id} is no valid SftItem (${parsed.error.issues[0]?.path.join('.')}: ${parsed.error.issues[0]?.message})`);
      if (itemIds.has(item.id)) throw new Error(`${method}: item id ${item.id} made twice`);
      itemIds.add(item.id);
      return parsed.data;
    });
    controller.signal.throwIfAborted();
    await output.commitChunk({ generator: method, index, chunkSize, inputIds: ids, items: checked, outcomes, accounting: chunkAccounting, stats: result.stats, ...(result.state !== undefined ? { state: result.state } : {}) });
    addAccounting(accounting, chunkAccounting);
    addStats(stats, result.stats);
    items += checked.length;
    report(index, false);
  }

  async function launch(index: number, records: InputRecord<T>[]): Promise<void> {
    chunks = index + 1;
    const header = committed.chunks.get(index);
    if (header) {
      checkCommitted(header, method, chunkSize, records.map((r) => r.id));
      addAccounting(accounting, header.accounting);
      addStats(stats, header.stats);
      items += header.items;
      committedBefore++;
      report(index, true);
      return;
    }
    while (inFlight.size >= maxChunksInFlight) await Promise.race(inFlight);
    if (failure) return;
    const task: Promise<void> = processChunk(index, records)
      .catch((error: unknown) => {
        if (!failure) {
          failure = { chunk: index, error };
          controller.abort(error);
        }
      })
      .finally(() => inFlight.delete(task));
    inFlight.add(task);
  }

  try {
    let index = 0;
    let records: InputRecord<T>[] = [];
    for await (const record of inputs) {
      if (failure || controller.signal.aborted) break;
      records.push(record);
      if (records.length === chunkSize) {
        await launch(index++, records);
        records = [];
      }
    }
    if (records.length > 0 && !failure && !controller.signal.aborted) await launch(index++, records);
    await Promise.all(inFlight);
    if (!failure && controller.signal.aborted) failure = { chunk: index, error: controller.signal.reason };
    if (failure) throw failure;
    const extra = [...committed.chunks.keys()].filter((i) => i >= chunks);
    if (extra.length > 0) throw new Error(`the output has committed chunk(s) ${extra.slice(0, 10).join(', ')} but the input has only ${chunks} chunk(s) (the input changed since): use a fresh output`);
    const summary: SynthesisSummary = {
      generator: method,
      inputs: accounting.inputs,
      items,
      accounting: { ...accounting, byCategory: sortedKeys(accounting.byCategory), droppedByReason: sortedKeys(accounting.droppedByReason), failedByReason: sortedKeys(accounting.failedByReason) },
      stats: sortedKeys(stats),
      chunks: { chunkSize, total: chunks, committedBefore, processed: chunks - committedBefore },
      gateway: options.gatewayStats?.() ?? {},
      config: generator.config,
    };
    const files = await output.finish(summary, chunks);
    return { summary, files };
  } catch (thrown) {
    const stopped = thrown === failure && failure ? failure : { chunk: -1, error: thrown };
    if (signal?.aborted && stopped.error === signal.reason) throw signal.reason;
    const cause = stopped.error;
    const message = cause instanceof Error ? cause.message : String(cause);
    const done = accounting.inputs;
    throw new SynthesisRunError(
      stopped.chunk >= 0 ? `${method} stopped in chunk ${stopped.chunk} (${done} input(s) committed; a rerun on the same output resumes after them): ${message}` : `${method}: ${message}`,
      stopped.chunk,
      cause,
    );
  } finally {
    signal?.removeEventListener('abort', onAbort);
    controller.abort(new Error('run ended'));
  }
}
