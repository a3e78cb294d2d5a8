import { crc32 as nodeCrc32, inflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { barChart, renderBarChart } from './bar-chart';
import { Canvas } from './canvas';
import { lineChart, renderLineChart } from './line-chart';
import { MAX_STORED_BLOCK, adler32, crc32, encodePng, zlibStored } from './png';

const ascii = (text: string) => new TextEncoder().encode(text);

/** CRC-32 bit by bit (no table), written from the definition: the independent reference. */
function referenceCrc32(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let k = 0; k < 8; k += 1) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/** Adler-32 reduced after every byte: the independent reference. */
function referenceAdler32(bytes: Uint8Array): number {
  let a = 1;
  let b = 0;
  for (const byte of bytes) {
    a = (a + byte) % 65521;
    b = (b + a) % 65521;
  }
  return b * 65536 + a;
}

/** Byte-for-byte equality (vitest's deep equality is slow on a megabyte of pixels). */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

interface Chunk {
  type: string;
  data: Uint8Array;
  crc: number;
  /** Type and data: the bytes the CRC covers. */
  covered: Uint8Array;
}

function readChunks(png: Uint8Array): Chunk[] {
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  const chunks: Chunk[] = [];
  for (let at = 8; at < png.length; ) {
    const length = view.getUint32(at);
    const type = String.fromCharCode(...png.subarray(at + 4, at + 8));
    chunks.push({ type, data: png.subarray(at + 8, at + 8 + length), crc: view.getUint32(at + 8 + length), covered: png.subarray(at + 4, at + 8 + length) });
    at += 12 + length;
  }
  return chunks;
}

/** Decode an 8-bit RGB, filter-0 PNG with Node's zlib; checks the structure on the way. */
function decodePng(png: Uint8Array): { width: number; height: number; rgb: Uint8Array; raw: Uint8Array } {
  expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const chunks = readChunks(png);
  expect(chunks.map((c) => c.type)).toEqual(['IHDR', 'IDAT', 'IEND']);
  for (const c of chunks) expect(c.crc).toBe(referenceCrc32(c.covered));
  const header = new DataView(chunks[0].data.buffer, chunks[0].data.byteOffset, 13);
  const width = header.getUint32(0);
  const height = header.getUint32(4);
  expect([...chunks[0].data.subarray(8)]).toEqual([8, 2, 0, 0, 0]);
  const raw = new Uint8Array(inflateSync(chunks[1].data));
  expect(raw.length).toBe((width * 3 + 1) * height);
  const rgb = new Uint8Array(width * height * 3);
  const filters = new Set<number>();
  for (let y = 0; y < height; y += 1) {
    filters.add(raw[y * (width * 3 + 1)]);
    rgb.set(raw.subarray(y * (width * 3 + 1) + 1, (y + 1) * (width * 3 + 1)), y * width * 3);
  }
  expect([...filters]).toEqual([0]);
  return { width, height, rgb, raw };
}

describe('crc32', () => {
  it('gives the known values: "IEND" → 0xAE426082, "123456789" → 0xCBF43926, "" → 0', () => {
    expect(crc32(ascii('IEND'))).toBe(0xae426082);
    expect(crc32(ascii('123456789'))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
    expect(referenceCrc32(ascii('IEND'))).toBe(0xae426082);
  });

  it('agrees with a bitwise CRC-32 and with Node zlib on every byte value', () => {
    const bytes = Uint8Array.from({ length: 1000 }, (_, i) => (i * 37 + 11) & 0xff);
    expect(crc32(bytes)).toBe(referenceCrc32(bytes));
    if (typeof nodeCrc32 === 'function') expect(crc32(bytes)).toBe(nodeCrc32(bytes));
    expect(crc32(bytes, 100, 300)).toBe(referenceCrc32(bytes.subarray(100, 300)));
  });
});

describe('adler32', () => {
  it('gives the known value: "Wikipedia" → 0x11E60398, "" → 1', () => {
    expect(adler32(ascii('Wikipedia'))).toBe(0x11e60398);
    expect(adler32(new Uint8Array(0))).toBe(1);
  });

  it('reduces correctly past 5,552 bytes of 0xFF (where the sums would overflow without it)', () => {
    const bytes = new Uint8Array(200_000).fill(0xff);
    expect(adler32(bytes)).toBe(referenceAdler32(bytes));
  });
});

describe('zlibStored', () => {
  it('splits data into stored blocks of at most 65,535 bytes, the last one final, and ends with Adler-32', () => {
    const data = Uint8Array.from({ length: 2 * MAX_STORED_BLOCK + 10 }, (_, i) => (i * 7) & 0xff);
    const stream = zlibStored(data);
    expect([stream[0], stream[1]]).toEqual([0x78, 0x01]);
    expect((stream[0] * 256 + stream[1]) % 31).toBe(0);
    const lengths: number[] = [];
    let at = 2;
    for (;;) {
      const final = stream[at] & 1;
      expect(stream[at] >> 1).toBe(0);
      const len = stream[at + 1] | (stream[at + 2] << 8);
      const nlen = stream[at + 3] | (stream[at + 4] << 8);
      expect(len ^ nlen).toBe(0xffff);
      lengths.push(len);
      at += 5 + len;
      if (final) break;
    }
    expect(lengths).toEqual([MAX_STORED_BLOCK, MAX_STORED_BLOCK, 10]);
    expect(new DataView(stream.buffer).getUint32(at)).toBe(referenceAdler32(data));
    expect(at + 4).toBe(stream.length);
    expect(sameBytes(new Uint8Array(inflateSync(stream)), data)).toBe(true);
  });

  it('writes an empty input as one empty final block', () => {
    const stream = zlibStored(new Uint8Array(0));
    expect(new Uint8Array(inflateSync(stream)).length).toBe(0);
  });
});

describe('encodePng', () => {
  it('writes the signature, IHDR (width, height, depth 8, RGB, no interlace), IDAT and IEND with valid CRCs', () => {
    const png = encodePng(3, 2, new Uint8Array(18));
    const chunks = readChunks(png);
    expect(chunks.map((c) => [c.type, c.data.length])).toEqual([
      ['IHDR', 13],
      ['IDAT', chunks[1].data.length],
      ['IEND', 0],
    ]);
    expect([...chunks[0].data]).toEqual([0, 0, 0, 3, 0, 0, 0, 2, 8, 2, 0, 0, 0]);
    expect(chunks[2].crc).toBe(0xae426082);
    for (const c of chunks) expect(c.crc).toBe(referenceCrc32(c.covered));
  });

  it('round-trips every pixel of a small canvas exactly', () => {
    const canvas = new Canvas(5, 4);
    for (let y = 0; y < 4; y += 1) for (let x = 0; x < 5; x += 1) canvas.setPixel(x, y, [x * 50, y * 60, (x * 13 + y * 71) & 0xff]);
    const decoded = decodePng(canvas.toPng());
    expect([decoded.width, decoded.height]).toEqual([5, 4]);
    expect(decoded.rgb).toEqual(canvas.pixels);
    expect([...decoded.rgb.subarray(0, 6)]).toEqual([0, 0, 0, 50, 0, 13]);
  });

  it('round-trips an image larger than one stored block', () => {
    const rgb = Uint8Array.from({ length: 200 * 150 * 3 }, (_, i) => (i * 31) & 0xff);
    const decoded = decodePng(encodePng(200, 150, rgb));
    expect(decoded.raw.length).toBeGreaterThan(MAX_STORED_BLOCK);
    expect(sameBytes(decoded.rgb, rgb)).toBe(true);
  });

  it('refuses a buffer of the wrong size and a zero dimension', () => {
    expect(() => encodePng(2, 2, new Uint8Array(11))).toThrow(/expected 12 RGB bytes/);
    expect(() => encodePng(0, 2, new Uint8Array(0))).toThrow(/positive integers/);
  });

  it('gives chart PNGs that decode to the pixels the charts drew', () => {
    const lineSpec = { title: 'Loss', xLabel: 'step', yLabel: 'loss', series: [{ name: 'train', points: [[0, 1], [1, NaN], [2, 0.5], [3, 0.25]] as [number, number][] }] };
    const line = decodePng(lineChart(lineSpec));
    expect(sameBytes(line.rgb, renderLineChart(lineSpec).canvas.pixels)).toBe(true);
    const barSpec = { title: 'Rates', categories: ['a', 'b'], groups: [{ name: 'x', values: [0.2, 0.9] }], yMin: 0, yMax: 1 };
    const bar = decodePng(barChart(barSpec));
    expect([bar.width, bar.height]).toEqual([800, 420]);
    expect(sameBytes(bar.rgb, renderBarChart(barSpec).canvas.pixels)).toBe(true);
  });
});
