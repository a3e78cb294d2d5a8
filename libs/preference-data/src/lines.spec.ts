import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { linesOf, readLines } from './lines';

async function collect(lines: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const line of lines) out.push(line);
  return out;
}

function chunked(bytes: Buffer, size: number): Readable {
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) chunks.push(bytes.subarray(i, i + size));
  return Readable.from(chunks);
}

describe('linesOf', () => {
  it('decodes UTF-8 characters split across chunks', async () => {
    const text = '{"prompt":"金融领域计算"}\n{"prompt":"😀 emoji"}\n';
    for (const size of [1, 2, 3, 5, 7]) {
      expect(await collect(linesOf(chunked(Buffer.from(text, 'utf8'), size)))).toEqual(['{"prompt":"金融领域计算"}', '{"prompt":"😀 emoji"}']);
    }
  });

  it('drops CR of CRLF and a leading BOM, and yields blank lines so numbering stays positional', async () => {
    const bytes = Buffer.from('\uFEFFa\r\n\r\nb\n\nc', 'utf8');
    expect(await collect(linesOf(chunked(bytes, 2)))).toEqual(['a', '', 'b', '', 'c']);
  });

  it('reads a line of several megabytes from small chunks', async () => {
    const long = 'x'.repeat(3_000_000);
    expect((await collect(linesOf(chunked(Buffer.from(`${long}\nend\n`), 64 * 1024)))).map((l) => l.length)).toEqual([3_000_000, 3]);
  });

  it('accepts string chunks', async () => {
    expect(await collect(linesOf(Readable.from(['a\nb', 'c\n'])))).toEqual(['a', 'bc']);
  });
});

describe('readLines', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'xyp-preference-lines-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('streams a file line by line', async () => {
    const file = join(dir, 'a.jsonl');
    await writeFile(file, '1\n2\n\n4\n');
    expect(await collect(readLines(file))).toEqual(['1', '2', '', '4']);
  });

  it('names the path and the error code of a file it cannot read', async () => {
    await expect(collect(readLines(join(dir, 'missing.jsonl')))).rejects.toThrow(/cannot read .*missing\.jsonl: ENOENT/);
  });
});
