import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { bufferByteSource, fileByteSource, isGzipSource, type ByteSource } from './byte-source';
import { planInput, readLines } from './jsonl';
import { MemoryStore } from './sink';

async function bytesOf(chunks: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const all: Buffer[] = [];
  for await (const chunk of chunks) all.push(Buffer.from(chunk));
  return Buffer.concat(all);
}

/** Counts what is read through a source. */
function counted(source: ByteSource): { source: ByteSource; reads: { start: number; end?: number; bytes: number }[] } {
  const reads: { start: number; end?: number; bytes: number }[] = [];
  return {
    reads,
    source: {
      name: source.name,
      size: () => source.size(),
      async *read(start, end) {
        const read = { start, end, bytes: 0 };
        reads.push(read);
        for await (const chunk of source.read(start, end)) {
          read.bytes += chunk.length;
          yield chunk;
        }
      },
    },
  };
}

const lines = Array.from({ length: 25 }, (_, i) => JSON.stringify({ id: `d${i}`, text: 'x'.repeat(1 + ((i * 37) % 50)), category: 'news' }));

describe('byte sources', () => {
  it('read exactly [start, end) of a file, and refuse ranges outside it naming the path', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'xyp-bytes-')), 'f.bin');
    writeFileSync(path, '0123456789');
    const file = fileByteSource(path);
    expect(await file.size()).toBe(10);
    expect((await bytesOf(file.read(2, 5))).toString()).toBe('234');
    expect((await bytesOf(file.read(7))).toString()).toBe('789');
    expect((await bytesOf(file.read(10, 10))).toString()).toBe('');
    await expect(bytesOf(file.read(4, 11))).rejects.toThrow(`${path}: byte range [4, 11) is past the end of the file (10 bytes)`);
    await expect(bytesOf(file.read(5, 4))).rejects.toThrow(`${path}: invalid byte range [5, 4)`);
    expect(await isGzipSource(file)).toBe(false);
    expect(await isGzipSource(bufferByteSource(gzipSync('x')))).toBe(true);
  });

  it('plan plain input into contiguous byte ranges; each shard reads only its range and gets exactly its lines', async () => {
    const input = Buffer.from(lines.join('\n')); // the last line has no `\n`
    const plan = await planInput(bufferByteSource(input), 10);
    expect(plan.shards.map((s) => [s.startLine, s.endLine])).toEqual([[0, 10], [10, 20], [20, 25]]);
    expect(plan.shards[0].startByte).toBe(0);
    for (let i = 1; i < plan.shards.length; i++) expect(plan.shards[i].startByte).toBe(plan.shards[i - 1].endByte);
    expect(plan.shards.at(-1)!.endByte).toBe(input.length);
    for (const shard of plan.shards) {
      const { source, reads } = counted(bufferByteSource(input));
      const got = [];
      for await (const line of readLines(source, { ...shard, maxLineBytes: 1 << 20, gzip: false })) got.push([line.line, Buffer.from(line.bytes!).toString()]);
      expect(got).toEqual(lines.slice(shard.startLine, shard.endLine).map((text, k) => [shard.startLine + k, text]));
      expect(reads).toEqual([{ start: shard.startByte, end: shard.endByte, bytes: shard.endByte! - shard.startByte! }]);
    }
  });

  it('split gzip input while planning into one gzip object per shard holding exactly its lines', async () => {
    const plain = Buffer.from(`${lines.slice(0, 20).join('\n')}\n`); // ends exactly at a shard boundary
    const sink = new MemoryStore();
    const plan = await planInput(bufferByteSource(gzipSync(plain)), 10, { splitGzip: { sink, scratchPrefix: '.shards' } });
    expect(plan).toMatchObject({ gzip: true, lines: 20 });
    expect([...sink.objects.keys()]).toEqual(['.shards/00000/input.jsonl.gz', '.shards/00001/input.jsonl.gz']);
    for (const shard of plan.shards) {
      const object = sink.objects.get(shard.object!)!;
      expect([shard.startByte, shard.endByte]).toEqual([0, object.length]);
      expect(gunzipSync(object).toString()).toBe(`${lines.slice(shard.startLine, shard.endLine).join('\n')}\n`);
      const got = [];
      for await (const line of readLines(bufferByteSource(object), { ...shard, maxLineBytes: 1 << 20, gzip: true })) got.push(line.line);
      expect(got).toEqual(Array.from({ length: 10 }, (_, k) => shard.startLine + k));
    }
    // Without a split target a gzip shard has no byte range: its reader inflates from the start.
    const unsplit = await planInput(bufferByteSource(gzipSync(plain)), 10);
    expect(unsplit.shards.map((s) => [s.startByte, s.endByte, s.object])).toEqual([[null, null, null], [null, null, null]]);
  });
});
