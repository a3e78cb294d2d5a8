import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { IndexedDatasetReader, IndexedDatasetWriter, concatIndexedDatasets, parseIndex } from './indexed-dataset';
import { DirectoryStore, MemoryStore, type ArtifactSink } from './sink';

async function write(store: ArtifactSink, prefix: string, dtype: 'int32' | 'uint16', documents: number[][][], chunkTokens?: number) {
  const writer = await IndexedDatasetWriter.create(store, prefix, dtype, { chunkTokens });
  for (const document of documents) {
    for (const sequence of document) writer.addSequence(Int32Array.from(sequence));
    writer.endDocument();
  }
  return writer.close();
}

describe('Megatron indexed dataset', () => {
  it('writes the .idx byte layout of megatron/core/datasets/indexed_dataset.py', async () => {
    const store = new MemoryStore();
    await write(store, 'ds', 'int32', [[[1, 2, 3], [4, 5]], [[6]]]);
    const idx = await store.readAll('ds.idx');
    const view = new DataView(idx.buffer, idx.byteOffset, idx.byteLength);
    expect(Buffer.from(idx.subarray(0, 9)).toString('latin1')).toBe('MMIDIDX\x00\x00');
    expect(view.getBigUint64(9, true)).toBe(1n);
    expect(view.getUint8(17)).toBe(4);
    expect(view.getBigUint64(18, true)).toBe(3n);
    // document_indices = [0, 2, 3]: number of documents + 1 entries, the last equal to the sequence count.
    expect(view.getBigUint64(26, true)).toBe(3n);
    expect([0, 1, 2].map((i) => view.getInt32(34 + 4 * i, true))).toEqual([3, 2, 1]);
    expect([0, 1, 2].map((i) => view.getBigInt64(46 + 8 * i, true))).toEqual([0n, 12n, 20n]);
    expect([0, 1, 2].map((i) => view.getBigInt64(70 + 8 * i, true))).toEqual([0n, 2n, 3n]);
    expect(idx.byteLength).toBe(94);
    const bin = await store.readAll('ds.bin');
    expect(Array.from(new Int32Array(Uint8Array.from(bin).buffer))).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('stores uint16 tokens with dtype code 8 and 2-byte pointers', async () => {
    const store = new MemoryStore();
    await write(store, 'small', 'uint16', [[[65_000, 1], [2]]]);
    const index = parseIndex(await store.readAll('small.idx'));
    expect(index.dtype).toBe('uint16');
    expect(Array.from(index.sequencePointers)).toEqual([0n, 4n]);
    expect((await store.readAll('small.bin')).byteLength).toBe(6);
    const reader = await IndexedDatasetReader.fromSource(store, 'small');
    expect((await reader.document(0)).map((s) => Array.from(s))).toEqual([[65_000, 1], [2]]);
  });

  it('round-trips documents and their sequence boundaries through files, across output chunk boundaries', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xyp-idx-'));
    const documents = [[[1, 2, 3, 4, 5, 6, 7], [8, 9]], [[10]], [[11, 12, 13, 14, 15, 16, 17, 18, 19]]];
    await write(new DirectoryStore(dir), 'round', 'int32', documents, 4);
    const reader = await IndexedDatasetReader.openFiles(join(dir, 'round'));
    expect(reader.sequenceCount).toBe(4);
    expect(reader.documentCount).toBe(3);
    expect(reader.documentRange(0)).toEqual({ start: 0, end: 2 });
    for (let d = 0; d < documents.length; d++) expect((await reader.document(d)).map((s) => Array.from(s))).toEqual(documents[d]);
    await reader.close();
  });

  it('concatenates datasets into the same bytes as writing all documents to one', async () => {
    const store = new MemoryStore();
    const a = [[[1, 2], [3]], [[4]]];
    const b = [[[5, 6, 7]]];
    await write(store, 'a', 'int32', a);
    await write(store, 'b', 'int32', b);
    await write(store, 'empty', 'int32', []);
    await write(store, 'whole', 'int32', [...a, ...b]);
    const merged = await concatIndexedDatasets(store, ['a', 'empty', 'b'], store, 'merged', 'int32');
    expect(merged).toMatchObject({ sequences: 4, documents: 3, tokens: 7 });
    expect(await store.readAll('merged.idx')).toEqual(await store.readAll('whole.idx'));
    expect(await store.readAll('merged.bin')).toEqual(await store.readAll('whole.bin'));
  });

  it('refuses a file that is not an MMIDIDX index and sequences left outside a document', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xyp-idx-'));
    writeFileSync(join(dir, 'bad.idx'), 'not an index at all, really not one');
    expect(() => parseIndex(new Uint8Array(Buffer.from('not an index at all, really not one')))).toThrow('MMIDIDX');
    const writer = await IndexedDatasetWriter.create(new MemoryStore(), 'open', 'int32');
    writer.addSequence(Int32Array.of(1));
    await expect(writer.close()).rejects.toThrow('after the last endDocument');
  });
});
