import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  type BucketManifest,
  PIECE_SIDECAR_SUFFIX,
  type PackConfigInput,
  type TokenEncoder,
  createStrategy,
  decodePieceSidecar,
  parsePackConfig,
  simulatePacking,
} from '@xyp/packing';
import { IndexedDatasetReader } from './indexed-dataset';
import { readLines } from './jsonl';
import { StreamedDocument, TokenSpill } from './long-document';
import { bucketCorpus, inProcessRunner } from './pipeline';
import type { ShardProgress } from './shard';
import { MemoryStore } from './sink';

const EOD = 0x10000;

/** One token per UTF-16 code unit (fast on tens of MB), recording how large each call was. */
function codeUnits() {
  const calls = { count: 0, longestText: 0, mostChars: 0 };
  const encoder: TokenEncoder = {
    async encodeBatch(texts, options = {}) {
      calls.count++;
      let chars = 0;
      const out = texts.map((text) => {
        calls.longestText = Math.max(calls.longestText, text.length);
        chars += text.length;
        const ids = new Int32Array(options.appendId === undefined ? text.length : text.length + 1);
        for (let i = 0; i < text.length; i++) ids[i] = text.charCodeAt(i);
        if (options.appendId !== undefined) ids[text.length] = options.appendId;
        return ids;
      });
      calls.mostChars = Math.max(calls.mostChars, chars);
      return out;
    },
  };
  return { encoder, calls };
}

const SAMPLE = resolve(__dirname, '../../../../data/sample/corpus.jsonl');
const sampleTexts = readFileSync(SAMPLE, 'utf8')
  .split('\n')
  .filter((line) => line.trim() !== '')
  .map((line) => (JSON.parse(line) as { text: string }).text);

/** Sample texts (Chinese and English) joined by blank lines up to `bytes` bytes of UTF-8. */
function bigText(bytes: number, from = 0): string {
  const parts: string[] = [];
  let size = 0;
  for (let i = from; size < bytes; i++) {
    const text = sampleTexts[i % sampleTexts.length];
    parts.push(text);
    size += Buffer.byteLength(text) + 2;
  }
  return parts.join('\n\n');
}

const CONFIG: PackConfigInput = {
  bucketLengths: [1024, 4096],
  windowLines: 4,
  windowTokens: 1 << 14,
  shardLines: 8,
  chunkChars: 4096,
  batchChars: 1 << 16,
  streamLineBytes: 1 << 20,
};

interface Line {
  json: string;
  /** The document's expected tokens, or null when the line is rejected. */
  text: string | null;
}

/**
 * A corpus around one document of ~24 MB (its `category` after the text): short documents before
 * and after it, a streamed document with its fields first, and a streamed line that is rejected
 * only at its end (no category), after its whole text was read and encoded.
 */
function corpus(): Line[] {
  const short = (i: number): Line => {
    const text = sampleTexts[i];
    return { json: JSON.stringify({ id: `s${i}`, text, category: i % 2 === 0 ? 'news' : 'professional' }), text };
  };
  const huge = bigText(24 << 20);
  const medium = bigText(3 << 20, 500);
  return [
    short(0),
    short(1),
    short(2),
    { json: JSON.stringify({ id: 'huge', text: huge, category: 'professional', lang: 'zh' }), text: huge },
    short(3),
    { json: JSON.stringify({ id: 'no-category', text: medium }), text: null },
    short(4),
    { json: JSON.stringify({ category: 'news', id: 'medium', text: medium }), text: medium },
    short(5),
    short(6),
  ];
}

function writeCorpus(lines: Line[]): string {
  const path = join(mkdtempSync(join(tmpdir(), 'xyp-long-')), 'corpus.jsonl');
  writeFileSync(path, lines.map((line) => `${line.json}\n`).join(''));
  return path;
}

async function run(input: string, config: PackConfigInput, options: { concurrency?: number; onProgress?: (progress: ShardProgress) => void } = {}) {
  const { encoder, calls } = codeUnits();
  const store = new MemoryStore();
  const result = await bucketCorpus({
    input,
    config: parsePackConfig(config),
    tokenizer: { spec: 'test', name: 'test', vocabSize: EOD + 1, eodId: EOD, dtype: 'int32' },
    out: store,
    scratch: store,
    runShard: inProcessRunner(encoder, store, options.onProgress),
    concurrency: options.concurrency,
  });
  return { store, manifest: result.manifest, calls };
}

/** Every document's tokens put back together from the pieces, by 1-based line; fails on a gap or an overlap. */
async function documents(store: MemoryStore, manifest: BucketManifest): Promise<Map<number, Int32Array>> {
  const pieces = new Map<number, { start: number; tokens: Int32Array }[]>();
  for (const bucket of manifest.buckets) {
    if (bucket.sequences === 0) continue;
    const reader = await IndexedDatasetReader.fromSource(store, bucket.prefix);
    const origins = decodePieceSidecar(await store.readAll(`${bucket.prefix}${PIECE_SIDECAR_SUFFIX}`));
    for (let s = 0; s < reader.sequenceCount; s++) {
      const list = pieces.get(origins[s].line) ?? pieces.set(origins[s].line, []).get(origins[s].line)!;
      list.push({ start: origins[s].start, tokens: Int32Array.from(await reader.sequence(s)) });
    }
  }
  const out = new Map<number, Int32Array>();
  for (const [line, list] of pieces) {
    list.sort((a, b) => a.start - b.start);
    const total = list.reduce((sum, piece) => sum + piece.tokens.length, 0);
    const tokens = new Int32Array(total);
    let at = 0;
    for (const piece of list) {
      if (piece.start !== at) throw new Error(`line ${line}: piece at ${piece.start}, expected ${at}`);
      tokens.set(piece.tokens, at);
      at += piece.tokens.length;
    }
    out.set(line, tokens);
  }
  return out;
}

/** Typed arrays compared as bytes (a deep equality of millions of elements would not finish). */
function same(a: Int32Array | undefined, b: Int32Array): boolean {
  return a !== undefined && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

function expectedTokens(text: string): Int32Array {
  const ids = new Int32Array(text.length + 1);
  for (let i = 0; i < text.length; i++) ids[i] = text.charCodeAt(i);
  ids[text.length] = EOD;
  return ids;
}

describe('a corpus with a document of tens of MB', () => {
  const lines = corpus();
  const input = writeCorpus(lines);
  const hugeLine = 4;

  it('packs every token exactly once, reports progress within the document, and never gives the tokenizer more than a chunk', async () => {
    const progress: ShardProgress[] = [];
    const { store, manifest, calls } = await run(input, CONFIG, { onProgress: (event) => progress.push(event) });
    expect(manifest.input).toMatchObject({ documentsIn: lines.length, kept: lines.length - 1, rejected: 1, rejectsByReason: { 'missing-field': 1 } });
    const byLine = await documents(store, manifest);
    lines.forEach((line, i) => {
      if (line.text === null) expect(byLine.has(i + 1)).toBe(false);
      else expect(same(byLine.get(i + 1), expectedTokens(line.text)), `line ${i + 1}`).toBe(true);
    });
    expect(manifest.totals.tokens).toBe(lines.reduce((sum, line) => sum + (line.text === null ? 0 : line.text.length + 1), 0));
    // Memory: the tokenizer never sees more than a chunk at a time, nor more than a batch per call.
    expect(calls.longestText).toBeLessThanOrEqual(4096);
    expect(calls.mostChars).toBeLessThanOrEqual((1 << 16) + 4096);
    // Progress arrives while the huge line is read, growing, before the line is counted.
    const within = progress.filter((event) => event.document?.line === hugeLine);
    expect(within.length).toBeGreaterThan(50);
    for (let i = 1; i < within.length; i++) expect(within[i].document!.tokens).toBeGreaterThan(within[i - 1].document!.tokens);
    expect(within[within.length - 1].document!.bytes).toBeGreaterThan(20 << 20);
    // (The line is counted once read; the last calls finish after that.) All before the line is packed.
    expect(within.every((event) => event.lines === hugeLine - 1 || event.lines === hugeLine)).toBe(true);
    const packed = progress.findIndex((event) => event.document === undefined && event.lines >= hugeLine);
    expect(progress.indexOf(within[within.length - 1])).toBeLessThan(packed);
  });

  it('writes the same bytes whether long lines are streamed or buffered, with 1 or 2 shard workers, and the metrics of simulatePacking', async () => {
    const streamed = await run(input, CONFIG, { concurrency: 2 });
    const buffered = await run(input, { ...CONFIG, streamLineBytes: 1 << 30 });
    expect([...buffered.store.objects.keys()].sort()).toEqual([...streamed.store.objects.keys()].sort());
    for (const [name, bytes] of streamed.store.objects) expect(Buffer.from(buffered.store.objects.get(name)!).equals(Buffer.from(bytes)), name).toBe(true);
    const config = parsePackConfig(CONFIG);
    const records = lines.flatMap((line, i) => (line.text === null ? [] : [{ line: i, length: line.text.length + 1, category: (JSON.parse(line.json) as { category: string }).category }]));
    const simulated = simulatePacking(records, createStrategy(config.strategy, config.bucketLengths), config);
    const { paddingRatio: _p, truncationRatio: _t, concatRatio: _c, ...totals } = streamed.manifest.totals;
    expect(totals).toEqual(simulated.total);
  });

  it('rejects a streamed line longer than maxLineBytes without keeping it', async () => {
    const { manifest } = await run(input, { ...CONFIG, maxLineBytes: 8 << 20 });
    expect(manifest.input).toMatchObject({ rejectsByReason: { 'line-too-long': 1, 'missing-field': 1 } });
  });
});

describe('StreamedDocument', () => {
  it('hands over its tokens through a spill file and gives the verdict of the whole line', async () => {
    const { encoder } = codeUnits();
    const text = bigText(300_000);
    const line = Buffer.from(JSON.stringify({ text, id: 7, category: 'news' }));
    const progress: number[] = [];
    const document = await StreamedDocument.open({ line: 0, encoder, appendId: EOD, chunkChars: 1000, batchChars: 10_000, onProgress: (p) => progress.push(p.tokens) });
    for (let at = 0; at < line.length; at += 65_536) await document.write(line.subarray(at, at + 65_536));
    const result = await document.end();
    expect(result).toMatchObject({ kind: 'document', id: '7', category: 'news', tokens: text.length + 1 });
    if (result.kind !== 'document') return;
    expect(same(await result.spill.read(0, result.tokens), expectedTokens(text))).toBe(true);
    await result.spill.close();
    expect(progress.length).toBeGreaterThan(5);
    expect(document.longestChunk).toBeLessThanOrEqual(1000);
  });

  it('turns a tokenizer failure into a tokenizer-error reject of the line', async () => {
    const failing: TokenEncoder = { encodeBatch: async () => Promise.reject(new Error('boom\nstack')) };
    const document = await StreamedDocument.open({ line: 0, encoder: failing, chunkChars: 100, batchChars: 1000 });
    await document.write(Buffer.from(JSON.stringify({ id: 'x', text: 'word '.repeat(2000), category: 'c' })));
    expect(await document.end()).toEqual({ kind: 'reject', reason: 'tokenizer-error', detail: 'boom', id: 'x' });
  });

  it('spills tokens to an unlinked temporary file', async () => {
    const spill = await TokenSpill.create();
    await spill.append(Int32Array.of(1, 2, 3));
    await spill.append(Int32Array.of(4));
    expect(Array.from(await spill.read(1, 3))).toEqual([2, 3, 4]);
    await expect(spill.read(2, 3)).rejects.toThrow('not in a spill');
    await spill.close();
  });
});

describe('readLines with a stream option', () => {
  it('hands lines over the threshold to a consumer, in pieces, and yields the others as before', async () => {
    const long = `{"text":"${'x'.repeat(5000)}"}`;
    const path = writeCorpus([{ json: '{"a":1}', text: null }, { json: long, text: null }, { json: '{"b":2}', text: null }]);
    const received: string[] = [];
    const seen: { line: number; bytes: string | null; streamed?: true }[] = [];
    const lines = readLines(path, {
      maxLineBytes: 1 << 20,
      stream: {
        lineBytes: 1000,
        open: async (line) => {
          received.push(`open ${line}`);
          return { write: async (bytes) => void received.push(Buffer.from(bytes).toString()), abort: async () => void received.push('abort') };
        },
      },
    });
    for await (const line of lines) seen.push({ line: line.line, bytes: line.bytes === null ? null : Buffer.from(line.bytes).toString(), ...(line.streamed ? { streamed: true as const } : {}) });
    expect(seen).toEqual([
      { line: 0, bytes: '{"a":1}' },
      { line: 1, bytes: null, streamed: true },
      { line: 2, bytes: '{"b":2}' },
    ]);
    expect(received[0]).toBe('open 1');
    expect(received.slice(1).join('')).toBe(long);
  });
});
