/**
 * Where a generator's committed output goes, and how a restart finds what is already done.
 *
 * A run cuts its input into chunks by position (chunk k holds input records k·chunkSize …
 * (k+1)·chunkSize − 1) and commits a chunk once every one of its inputs has its outcome: the SFT
 * items, the outcomes, the chunk's accounting and step counters, and the generator's state (the
 * Evol-Instruct pool) in one `commitChunk` that either happens whole or not at all. A restart asks
 * `committed()` and skips every chunk found there (its inputs' ids are `doneInputIds`), so no
 * committed input is asked of a model again; with the gateway's response cache, the chunks that
 * were in flight replay from the cache too. `finish` writes the final files once every chunk is in.
 *
 * An implementation keeps five promises:
 *   1. `commitChunk` is atomic: after a crash, a chunk is committed whole or absent;
 *   2. `committed()` returns exactly the chunks committed (headers only, not their items);
 *   3. a chunk committed again (same index) replaces the first;
 *   4. `saveProgress`/`loadProgress` keep one in-chunk state per chunk index (last write wins),
 *      dropped when the chunk commits;
 *   5. `finish` writes the items and outcomes of chunks 0…n−1 in chunk order, and refuses when one
 *      is missing or a chunk ≥ n exists.
 * One run writes to one output at a time (there is no lock).
 *
 * `directoryOutput(dir)` is the local implementation:
 *
 *   dir/parts/chunk-000000.jsonl   one committed chunk: line 1 its header (`ChunkHeader`), then
 *                                  `items` SFT item lines, then `outcomes` outcome lines, then
 *                                  (when the generator has one) one line of state
 *   dir/progress/chunk-000003.json the in-chunk state of a chunk not committed yet
 *   dir/sft.jsonl, dir/outcomes.jsonl, dir/summary.json   written by `finish`
 *
 * Every file is written to a temporary name beside it, fsync'ed and renamed into place, so a crash
 * leaves a whole file or none (leftover temporaries are removed by the next `committed()`);
 * `summary.json` is renamed last, so its presence means the other two are whole.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, readdir, rename, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { ModelStats } from '@xyp/llm';
import type { AccountingSummary, SftItem, SynthesisMethod } from '@xyp/synthesis';
import { fileLines } from './inputs';
import type { SynthesisOutcome } from './outcomes';

/** One chunk as a run commits it. */
export interface SynthesisChunk {
  generator: SynthesisMethod;
  index: number;
  chunkSize: number;
  /** Every input id of the chunk, invalid lines' included, in input order. */
  inputIds: string[];
  items: SftItem[];
  /** One per input id. */
  outcomes: SynthesisOutcome[];
  /** `summarizeAccounting` of the chunk's outcomes. */
  accounting: AccountingSummary;
  /** The generator's step counters for the chunk (flat, summed over chunks). */
  stats: Record<string, number>;
  /** The generator's state at the end of the chunk (the final Evol-Instruct pool), if it has one. */
  state?: unknown;
}

const Counts = z.record(z.string(), z.number());
const Accounting = z.object({
  inputs: z.number(),
  kept: z.number(),
  dropped: z.number(),
  failed: z.number(),
  byCategory: z.record(z.string(), z.object({ inputs: z.number(), kept: z.number(), dropped: z.number(), failed: z.number() })),
  droppedByReason: Counts,
  failedByReason: Counts,
});

/** What `committed()` returns of a chunk: all but its items, outcomes and state. */
export const ChunkHeader = z.object({
  format: z.literal('synthesis-chunk@1'),
  generator: z.string(),
  index: z.number().int().nonnegative(),
  chunkSize: z.number().int().positive(),
  inputIds: z.array(z.string()),
  accounting: Accounting,
  stats: Counts,
  items: z.number().int().nonnegative(),
  outcomes: z.number().int().nonnegative(),
  hasState: z.boolean(),
});
export type ChunkHeader = z.infer<typeof ChunkHeader>;

export interface CommittedOutput {
  chunks: Map<number, ChunkHeader>;
  /** The input ids of every committed chunk. */
  doneInputIds: Set<string>;
}

/** The run's summary, as `summary.json` holds it. */
export interface SynthesisSummary {
  generator: SynthesisMethod;
  /** Input records (lines), every one accounted for in `accounting`. */
  inputs: number;
  /** SFT items written. */
  items: number;
  accounting: AccountingSummary;
  /** The generator's step counters (instructions asked, candidates scored, evolutions failed by reason, …). */
  stats: Record<string, number>;
  chunks: { chunkSize: number; total: number; committedBefore: number; processed: number };
  /** This process's gateway calls per model: tokens, cost, latency, cache hits (`LlmGateway.stats()`; a resumed run counts only its own). */
  gateway: Record<string, ModelStats>;
  /** The parsed run configuration. */
  config: unknown;
}

export interface SynthesisFiles {
  sft: string;
  outcomes: string;
  summary: string;
}

export interface SynthesisOutput {
  /** The chunks committed so far (a fresh output: none). */
  committed(): Promise<CommittedOutput>;
  /** Commits one chunk, atomically. */
  commitChunk(chunk: SynthesisChunk): Promise<void>;
  /** Keeps the in-chunk state of chunk `index` (the Evol-Instruct pool after a round). */
  saveProgress(index: number, state: unknown): Promise<void>;
  /** The last state `saveProgress` kept for chunk `index`, if it was not committed since. */
  loadProgress(index: number): Promise<unknown>;
  /** Writes the final files from chunks 0…chunks−1 and the summary. */
  finish(summary: SynthesisSummary, chunks: number): Promise<SynthesisFiles>;
}

/** The lines of a committed chunk (header, items, outcomes, state), each JSON. */
export function chunkLines(chunk: SynthesisChunk): string[] {
  const header: ChunkHeader = {
    format: 'synthesis-chunk@1',
    generator: chunk.generator,
    index: chunk.index,
    chunkSize: chunk.chunkSize,
    inputIds: chunk.inputIds,
    accounting: chunk.accounting,
    stats: chunk.stats,
    items: chunk.items.length,
    outcomes: chunk.outcomes.length,
    hasState: chunk.state !== undefined,
  };
  return [JSON.stringify(header), ...chunk.items.map((i) => JSON.stringify(i)), ...chunk.outcomes.map((o) => JSON.stringify(o)), ...(chunk.state !== undefined ? [JSON.stringify(chunk.state)] : [])];
}

const PART = /^chunk-(\d{6,})\.jsonl$/;
const partName = (index: number) => `chunk-${String(index).padStart(6, '0')}.jsonl`;
const progressName = (index: number) => `chunk-${String(index).padStart(6, '0')}.json`;

/**
 * A file written under a temporary name and renamed into place by `commit` (after an fsync), or
 * removed by `abort`. Writes are buffered (1 MiB).
 */
export class AtomicFile {
  private buffered: string[] = [];
  private size = 0;
  private constructor(
    readonly path: string,
    private readonly temp: string,
    private readonly handle: FileHandle,
  ) {}

  static async open(path: string): Promise<AtomicFile> {
    const temp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
    return new AtomicFile(path, temp, await open(temp, 'w'));
  }

  async write(text: string): Promise<void> {
    this.buffered.push(text);
    this.size += text.length;
    if (this.size >= 1 << 20) await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.buffered.length === 0) return;
    const text = this.buffered.join('');
    this.buffered = [];
    this.size = 0;
    await this.handle.write(text);
  }

  async commit(): Promise<void> {
    try {
      await this.flush();
      await this.handle.sync();
    } finally {
      await this.handle.close();
    }
    await rename(this.temp, this.path);
  }

  async abort(): Promise<void> {
    await this.handle.close().catch(() => undefined);
    await rm(this.temp, { force: true });
  }
}

/** Writes `text` to `path` atomically (temp, fsync, rename). */
export async function writeFileAtomic(path: string, text: string): Promise<void> {
  const file = await AtomicFile.open(path);
  try {
    await file.write(text);
  } catch (error) {
    await file.abort();
    throw error;
  }
  await file.commit();
}

async function firstLine(path: string): Promise<string | undefined> {
  for await (const line of fileLines(path)) return line;
  return undefined;
}

async function removeTemporaries(dir: string): Promise<void> {
  for (const name of await readdir(dir)) if (name.endsWith('.tmp')) await rm(join(dir, name), { force: true });
}

/** The local `SynthesisOutput`: numbered part files under `dir/parts` (see the module comment). */
export function directoryOutput(dir: string): SynthesisOutput {
  const parts = join(dir, 'parts');
  const progress = join(dir, 'progress');
  const ready = (async () => {
    await mkdir(parts, { recursive: true });
    await mkdir(progress, { recursive: true });
  })();

  async function headers(): Promise<Map<number, ChunkHeader>> {
    await ready;
    await removeTemporaries(parts);
    await removeTemporaries(progress);
    const chunks = new Map<number, ChunkHeader>();
    for (const name of (await readdir(parts)).sort()) {
      const match = PART.exec(name);
      if (!match) continue;
      const path = join(parts, name);
      const line = await firstLine(path);
      let header: ChunkHeader;
      try {
        header = ChunkHeader.parse(JSON.parse(line ?? ''));
      } catch (error) {
        throw new Error(`${path}: not a committed synthesis chunk (${error instanceof Error ? error.message.split('\n')[0] : String(error)})`, { cause: error });
      }
      if (header.index !== Number(match[1])) throw new Error(`${path}: its header says chunk ${header.index}`);
      chunks.set(header.index, header);
    }
    return chunks;
  }

  return {
    async committed() {
      const chunks = await headers();
      const doneInputIds = new Set<string>();
      for (const header of chunks.values()) for (const id of header.inputIds) doneInputIds.add(id);
      return { chunks, doneInputIds };
    },

    async commitChunk(chunk) {
      await ready;
      await writeFileAtomic(join(parts, partName(chunk.index)), chunkLines(chunk).join('\n') + '\n');
      await rm(join(progress, progressName(chunk.index)), { force: true });
    },

    async saveProgress(index, state) {
      await ready;
      await writeFileAtomic(join(progress, progressName(index)), JSON.stringify(state));
    },

    async loadProgress(index) {
      await ready;
      try {
        return JSON.parse(await readFile(join(progress, progressName(index)), 'utf8')) as unknown;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw error;
      }
    },

    async finish(summary, count) {
      const chunks = await headers();
      const missing = Array.from({ length: count }, (_, i) => i).filter((i) => !chunks.has(i));
      if (missing.length > 0) throw new Error(`${parts}: chunk(s) ${missing.slice(0, 10).join(', ')} not committed; nothing finished`);
      const extra = [...chunks.keys()].filter((i) => i >= count);
      if (extra.length > 0) throw new Error(`${parts}: chunk(s) ${extra.slice(0, 10).join(', ')} beyond the input's ${count} chunk(s) (the input is not the one they were made from; use a fresh output directory)`);
      const files: SynthesisFiles = { sft: join(dir, 'sft.jsonl'), outcomes: join(dir, 'outcomes.jsonl'), summary: join(dir, 'summary.json') };
      const sft = await AtomicFile.open(files.sft);
      const outcomes = await AtomicFile.open(files.outcomes);
      try {
        for (let index = 0; index < count; index++) {
          const header = chunks.get(index) as ChunkHeader;
          const path = join(parts, partName(index));
          let at = 0;
          for await (const line of fileLines(path)) {
            if (at > 0 && at <= header.items) await sft.write(`${line}\n`);
            else if (at > header.items && at <= header.items + header.outcomes) await outcomes.write(`${line}\n`);
            at++;
          }
          const expected = 1 + header.items + header.outcomes + (header.hasState ? 1 : 0);
          if (at !== expected) throw new Error(`${path}: ${at} line(s), its header promises ${expected}`);
        }
      } catch (error) {
        await sft.abort();
        await outcomes.abort();
        throw error;
      }
      await sft.commit();
      await outcomes.commit();
      await writeFileAtomic(files.summary, `${JSON.stringify(summary, null, 2)}\n`);
      return files;
    },
  };
}
