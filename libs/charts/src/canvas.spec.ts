import { describe, expect, it } from 'vitest';
import { BLACK, Canvas, type Rgb, WHITE, textWidth, truncateText, wrapText } from './canvas';
import { glyphColumns } from './font';

const RED: Rgb = [255, 0, 0];
const isRed = (c: Canvas, x: number, y: number) => c.getPixel(x, y).join() === RED.join();
const litPixels = (c: Canvas) => {
  const lit: string[] = [];
  for (let y = 0; y < c.height; y += 1) for (let x = 0; x < c.width; x += 1) if (c.getPixel(x, y).join() !== WHITE.join()) lit.push(`${x},${y}`);
  return lit;
};

describe('Canvas', () => {
  it('starts filled with the background and fills rectangles clipped to its edges', () => {
    const c = new Canvas(4, 3);
    expect(c.getPixel(3, 2)).toEqual(WHITE);
    c.fillRect(2, 1, 10, 10, RED);
    expect(litPixels(c)).toEqual(['2,1', '3,1', '2,2', '3,2']);
    expect(() => c.getPixel(4, 0)).toThrow(RangeError);
  });

  it('draws a Bresenham line with both endpoints and one pixel per column', () => {
    const c = new Canvas(10, 10);
    c.line(0, 0, 8, 4, RED);
    const lit = litPixels(c);
    expect(lit).toContain('0,0');
    expect(lit).toContain('8,4');
    expect(lit).toHaveLength(9);
    expect(lit).toContain('4,2');
  });

  it('draws a thick line as squares around each point', () => {
    const c = new Canvas(10, 10);
    c.line(2, 5, 7, 5, RED, 3);
    for (let x = 1; x <= 8; x += 1) for (const y of [4, 5, 6]) expect(isRed(c, x, y)).toBe(true);
    expect(isRed(c, 5, 3)).toBe(false);
    expect(isRed(c, 5, 7)).toBe(false);
  });

  it('leaves gaps in a dashed line', () => {
    const c = new Canvas(20, 1);
    c.line(0, 0, 19, 0, RED, 1, [3, 2]);
    expect([...Array(10).keys()].map((x) => (isRed(c, x, 0) ? 1 : 0))).toEqual([1, 1, 1, 0, 0, 1, 1, 1, 0, 0]);
  });

  it('draws a glyph bit for bit, bit 0 of each column on the top row', () => {
    const c = new Canvas(8, 9);
    expect(c.text(1, 1, 'A', BLACK)).toBe(6);
    const columns = glyphColumns('A'.codePointAt(0)!);
    for (let gx = 0; gx < 5; gx += 1) {
      for (let gy = 0; gy < 7; gy += 1) expect(c.getPixel(1 + gx, 1 + gy).join() === BLACK.join()).toBe(((columns[gx] >> gy) & 1) === 1);
    }
  });

  it('draws a character outside printable ASCII as a box', () => {
    const c = new Canvas(6, 8);
    c.text(0, 0, '金', BLACK);
    const box = new Canvas(6, 8);
    box.strokeRect(0, 0, 5, 6, BLACK);
    expect(c.pixels).toEqual(box.pixels);
    expect(glyphColumns(127)).toEqual(glyphColumns(0x91d1));
  });

  it('scales text ×2 (each font pixel a 2×2 block) and turns it for vertical text', () => {
    const small = new Canvas(12, 16);
    const big = new Canvas(12, 16);
    small.text(0, 0, 'T', RED);
    expect(big.text(0, 0, 'T', RED, { scale: 2 })).toBe(12);
    for (let y = 0; y < 16; y += 1) for (let x = 0; x < 12; x += 1) expect(isRed(big, x, y)).toBe(isRed(small, x >> 1, y >> 1));
    const turned = new Canvas(8, 6);
    turned.text(0, 5, 'T', RED, { vertical: true });
    // The top bar of "T" (its top row) becomes the left column, reading upwards.
    for (let y = 1; y <= 5; y += 1) expect(isRed(turned, 0, y)).toBe(true);
    for (let x = 0; x <= 6; x += 1) expect(isRed(turned, x, 3)).toBe(true);
  });
});

describe('text helpers', () => {
  it('measures six pixels a character at scale 1, counting code points', () => {
    expect(textWidth('abc')).toBe(18);
    expect(textWidth('abc', 2)).toBe(36);
    expect(textWidth('金融')).toBe(12);
  });

  it('truncates to the width with a final "."', () => {
    expect(truncateText('alignment', 60)).toBe('alignment');
    expect(truncateText('alignment', 30)).toBe('alig.');
    expect(truncateText('alignment', 5)).toBe('');
  });

  it('wraps on spaces and cuts words longer than a line', () => {
    expect(wrapText('finance event analysis', 10)).toEqual(['finance', 'event', 'analysis']);
    expect(wrapText('chit chat', 10)).toEqual(['chit chat']);
    expect(wrapText('abcdefghij', 4)).toEqual(['abcd', 'efgh', 'ij']);
  });
});
