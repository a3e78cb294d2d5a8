import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LocalDirectoryStore } from '@xyp/storage';
import { runSynthesis, type ChunkGenerator, type InputRecord } from '@xyp/synthesis-stages';
import { storeBackedOutput, type PartsMarker } from './store-output';

const dirs: string[] = [];
const fresh = (): string => {
  const dir = mkdtempSync(join(tmpdir(), 'xyp-store-output-'));
  dirs.push(dir);
  return dir;
};
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** Ten queries; the generator answers each with one item, and fails the run at the input named `stopAt`. */
const inputs = (): AsyncIterable<InputRecord<{ query: string }>> =>
  (async function* () {
    for (let i = 0; i < 10; i++) yield { kind: 'input', id: `q${i}`, category: 'finance.understanding', line: i + 1, value: { query: `问题 ${i}` } };
  })();

function generator(seen: string[], stopAt?: string): ChunkGenerator<{ query: string }> {
  return {
    method: 'ensemble',
    config: {},
    concurrency: 1,
    chunkSize: 3,
    run: async (chunk) => {
      const ids = chunk.map((input) => input.id);
      if (stopAt && ids.includes(stopAt)) throw new Error(`stopped at ${stopAt}`);
      seen.push(...ids);
      return {
        items: [],
        outcomes: chunk.map((input) => ({ id: input.id, category: input.category, status: 'dropped' as const, reason: 'unresolved' })),
        stats: { asked: chunk.length },
      };
    },
  };
}

describe('the store-backed synthesis output', () => {
  it('puts each committed chunk into the store and keeps its key on the job, so a retry in a fresh folder skips those inputs', async () => {
    const store = new LocalDirectoryStore(fresh());
    let marker: unknown;
    const job = { runId: 'run-synth', store, get resumeCheckpoint() { return marker; }, keepCheckpoint: async (m: unknown) => void (marker = m) };
    const first: string[] = [];
    // The first attempt fails in chunk 2 (q6..q8); chunks 0 and 1 (and 3, which the driver may have
    // started meanwhile) are committed.
    await expect(runSynthesis(generator(first, 'q7'), inputs(), { output: await storeBackedOutput(job, 'synthesis.ensemble', fresh()) })).rejects.toThrow(/stopped at q7/);
    const parts = Object.keys((marker as PartsMarker).parts).sort();
    expect(parts.slice(0, 2)).toEqual(['chunk-000000.jsonl', 'chunk-000001.jsonl']);
    expect(parts).not.toContain('chunk-000002.jsonl');
    for (const key of Object.values((marker as PartsMarker).parts)) expect(await store.statObject(key)).not.toBeNull();
    const committed = parts.flatMap((name) => {
      const k = Number(/chunk-(\d+)/.exec(name)?.[1]);
      return [3 * k, 3 * k + 1, 3 * k + 2].filter((i) => i < 10).map((i) => `q${i}`);
    });
    // The retry runs elsewhere: a new folder, only the marker and the store carried over. It asks
    // exactly the inputs of the chunks not committed.
    const second: string[] = [];
    const run = await runSynthesis(generator(second), inputs(), { output: await storeBackedOutput(job, 'synthesis.ensemble', fresh()) });
    const all = Array.from({ length: 10 }, (_, i) => `q${i}`);
    expect(second.sort()).toEqual(all.filter((id) => !committed.includes(id)).sort());
    expect(second).toContain('q7');
    expect(second).not.toContain('q0');
    expect(run.summary.inputs).toBe(10);
    expect(run.summary.accounting.dropped).toBe(10);
    expect(Object.keys((marker as PartsMarker).parts)).toHaveLength(4);
  });
});
