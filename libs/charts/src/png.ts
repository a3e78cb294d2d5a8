/**
 * PNG encoding with no dependency: 8-bit RGB, no interlace, filter 0 on every row, and the image
 * data as a zlib stream of *stored* (uncompressed) deflate blocks. Files are larger than a
 * compressed PNG would be, but every decoder reads them and the encoder needs no deflate.
 *
 * Byte layout (PNG, ISO/IEC 15948 / W3C PNG 2nd ed.; all integers big-endian):
 *
 *   signature   89 50 4E 47 0D 0A 1A 0A
 *   chunk       length u32 (of data) | type 4 ASCII | data | CRC-32 u32 over type + data
 *   IHDR (13)   width u32 | height u32 | bit depth 8 | colour type 2 (RGB) | compression 0 |
 *               filter 0 | interlace 0
 *   IDAT        zlib stream (RFC 1950) of the scanlines, each row = filter byte 0 + width·3 bytes
 *   IEND (0)    empty
 *
 * zlib stream: CMF 0x78 (deflate, 32K window) | FLG 0x01 (so that CMF·256 + FLG ≡ 0 mod 31, no
 * dictionary, level "fastest") | deflate blocks | Adler-32 of the uncompressed bytes, u32.
 * Stored deflate block (RFC 1951 §3.2.4): header byte BFINAL (bit 0) with BTYPE 00, then
 * LEN u16 and NLEN = ~LEN u16, both little-endian, then LEN raw bytes (LEN ≤ 65,535).
 */

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
/** The most bytes one stored deflate block carries (LEN is 16 bits). */
export const MAX_STORED_BLOCK = 65_535;

let crcTable: Uint32Array | undefined;

/** CRC-32 (ISO-HDLC: reflected polynomial 0xEDB88320, init and final xor 0xFFFFFFFF), as PNG uses. */
export function crc32(bytes: Uint8Array, start = 0, end = bytes.length): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n += 1) {
      let c = n;
      for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (let i = start; i < end; i += 1) crc = crcTable[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/**
 * Adler-32 (RFC 1950 §8.2): a = 1 + Σ bytes, b = Σ a after each byte, both mod 65,521;
 * result b·65,536 + a. Reduced every 5,552 bytes, the most that cannot overflow 2^32.
 */
export function adler32(bytes: Uint8Array): number {
  const MOD = 65_521;
  let a = 1;
  let b = 0;
  for (let i = 0; i < bytes.length; ) {
    const end = Math.min(bytes.length, i + 5552);
    for (; i < end; i += 1) {
      a += bytes[i];
      b += a;
    }
    a %= MOD;
    b %= MOD;
  }
  return ((b << 16) | a) >>> 0;
}

/** A zlib stream (RFC 1950) of stored deflate blocks holding `data` unchanged. */
export function zlibStored(data: Uint8Array): Uint8Array {
  const blocks = Math.max(1, Math.ceil(data.length / MAX_STORED_BLOCK));
  const out = new Uint8Array(2 + blocks * 5 + data.length + 4);
  out[0] = 0x78;
  out[1] = 0x01;
  let at = 2;
  for (let block = 0; block < blocks; block += 1) {
    const from = block * MAX_STORED_BLOCK;
    const len = Math.min(MAX_STORED_BLOCK, data.length - from);
    out[at] = block === blocks - 1 ? 1 : 0;
    out[at + 1] = len & 0xff;
    out[at + 2] = len >>> 8;
    out[at + 3] = ~len & 0xff;
    out[at + 4] = (~len >>> 8) & 0xff;
    out.set(data.subarray(from, from + len), at + 5);
    at += 5 + len;
  }
  writeU32(out, at, adler32(data));
  return out;
}

/**
 * A PNG of an 8-bit RGB image: `rgb` holds `width·height·3` bytes, rows top to bottom, each
 * pixel R, G, B.
 */
export function encodePng(width: number, height: number, rgb: Uint8Array): Uint8Array {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1 || width > 0x7fffffff || height > 0x7fffffff) {
    throw new RangeError(`encodePng: width and height must be positive integers (got ${width}×${height})`);
  }
  const rowBytes = width * 3;
  if (rgb.length !== rowBytes * height) {
    throw new RangeError(`encodePng: expected ${rowBytes * height} RGB bytes for ${width}×${height}, got ${rgb.length}`);
  }
  const raw = new Uint8Array((rowBytes + 1) * height);
  for (let y = 0; y < height; y += 1) {
    // raw[y·(rowBytes + 1)] stays 0: filter type None.
    raw.set(rgb.subarray(y * rowBytes, (y + 1) * rowBytes), y * (rowBytes + 1) + 1);
  }
  const header = new Uint8Array(13);
  writeU32(header, 0, width);
  writeU32(header, 4, height);
  header.set([8, 2, 0, 0, 0], 8);
  const chunks = [chunk('IHDR', header), chunk('IDAT', zlibStored(raw)), chunk('IEND', new Uint8Array(0))];
  const out = new Uint8Array(SIGNATURE.length + chunks.reduce((sum, c) => sum + c.length, 0));
  out.set(SIGNATURE, 0);
  let at = SIGNATURE.length;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  writeU32(out, 0, data.length);
  for (let i = 0; i < 4; i += 1) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  writeU32(out, 8 + data.length, crc32(out, 4, 8 + data.length));
  return out;
}

function writeU32(bytes: Uint8Array, at: number, value: number): void {
  bytes[at] = (value >>> 24) & 0xff;
  bytes[at + 1] = (value >>> 16) & 0xff;
  bytes[at + 2] = (value >>> 8) & 0xff;
  bytes[at + 3] = value & 0xff;
}
