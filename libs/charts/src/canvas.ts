/**
 * An RGB raster to draw charts on: rectangles, lines (Bresenham, with a thickness), and text in
 * the built-in 5×7 font (`font.ts`), horizontal or turned 90° to read bottom to top. Drawing
 * clips at the edges; coordinates are pixels, (0, 0) the top-left corner, y downwards.
 */
import { CHAR_ADVANCE, GLYPH_HEIGHT, GLYPH_WIDTH, LINE_HEIGHT, glyphColumns } from './font';
import { encodePng } from './png';

/** A colour as 8-bit red, green, blue. */
export type Rgb = readonly [number, number, number];

export const WHITE: Rgb = [255, 255, 255];
export const BLACK: Rgb = [0, 0, 0];

export interface TextOptions {
  /** Integer magnification of the font: 2 for titles. Default 1. */
  scale?: number;
  /** Turn the text 90° anticlockwise (reads bottom to top; `x, y` is then its bottom-left corner). */
  vertical?: boolean;
}

export class Canvas {
  /** `width·height·3` bytes, rows top to bottom, each pixel R, G, B. */
  readonly pixels: Uint8Array;

  constructor(
    readonly width: number,
    readonly height: number,
    background: Rgb = WHITE,
  ) {
    if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
      throw new RangeError(`Canvas: width and height must be positive integers (got ${width}×${height})`);
    }
    this.pixels = new Uint8Array(width * height * 3);
    this.fillRect(0, 0, width, height, background);
  }

  /** Paint one pixel (ignored outside the canvas; coordinates are rounded). */
  setPixel(x: number, y: number, color: Rgb): void {
    const px = Math.round(x);
    const py = Math.round(y);
    if (px < 0 || py < 0 || px >= this.width || py >= this.height) return;
    const at = (py * this.width + px) * 3;
    this.pixels[at] = color[0];
    this.pixels[at + 1] = color[1];
    this.pixels[at + 2] = color[2];
  }

  /** The colour at (x, y); throws outside the canvas. */
  getPixel(x: number, y: number): Rgb {
    if (!Number.isInteger(x) || !Number.isInteger(y) || x < 0 || y < 0 || x >= this.width || y >= this.height) {
      throw new RangeError(`Canvas.getPixel: (${x}, ${y}) is outside ${this.width}×${this.height}`);
    }
    const at = (y * this.width + x) * 3;
    return [this.pixels[at], this.pixels[at + 1], this.pixels[at + 2]];
  }

  /** Fill the rectangle [x, x + w) × [y, y + h), clipped to the canvas. */
  fillRect(x: number, y: number, w: number, h: number, color: Rgb): void {
    const x0 = Math.max(0, Math.round(x));
    const y0 = Math.max(0, Math.round(y));
    const x1 = Math.min(this.width, Math.round(x + w));
    const y1 = Math.min(this.height, Math.round(y + h));
    for (let py = y0; py < y1; py += 1) {
      for (let px = x0; px < x1; px += 1) {
        const at = (py * this.width + px) * 3;
        this.pixels[at] = color[0];
        this.pixels[at + 1] = color[1];
        this.pixels[at + 2] = color[2];
      }
    }
  }

  /** The outline of [x, x + w) × [y, y + h), one pixel wide. */
  strokeRect(x: number, y: number, w: number, h: number, color: Rgb): void {
    this.fillRect(x, y, w, 1, color);
    this.fillRect(x, y + h - 1, w, 1, color);
    this.fillRect(x, y, 1, h, color);
    this.fillRect(x + w - 1, y, 1, h, color);
  }

  /**
   * A line from (x0, y0) to (x1, y1), endpoints included (Bresenham on the rounded endpoints).
   * With `thickness` t > 1 every point becomes a t×t square centred on it. `dash` = [on, off]
   * in steps along the line's major axis.
   */
  line(x0: number, y0: number, x1: number, y1: number, color: Rgb, thickness = 1, dash?: readonly [number, number]): void {
    let x = Math.round(x0);
    let y = Math.round(y0);
    const xEnd = Math.round(x1);
    const yEnd = Math.round(y1);
    const dx = Math.abs(xEnd - x);
    const dy = -Math.abs(yEnd - y);
    const sx = x < xEnd ? 1 : -1;
    const sy = y < yEnd ? 1 : -1;
    let err = dx + dy;
    const t = Math.max(1, Math.round(thickness));
    const offset = Math.floor((t - 1) / 2);
    for (let step = 0; ; step += 1) {
      const drawn = !dash || step % (dash[0] + dash[1]) < dash[0];
      if (drawn) {
        if (t === 1) this.setPixel(x, y, color);
        else this.fillRect(x - offset, y - offset, t, t, color);
      }
      if (x === xEnd && y === yEnd) break;
      const e2 = 2 * err;
      if (e2 >= dy) {
        err += dy;
        x += sx;
      }
      if (e2 <= dx) {
        err += dx;
        y += sy;
      }
    }
  }

  /**
   * Draw `text` with its top-left corner at (x, y) (bottom-left when vertical); returns the
   * advance in pixels along the text. Characters outside printable ASCII are drawn as boxes.
   */
  text(x: number, y: number, text: string, color: Rgb, options: TextOptions = {}): number {
    const scale = Math.max(1, Math.round(options.scale ?? 1));
    const ox = Math.round(x);
    const oy = Math.round(y);
    let advance = 0;
    for (const char of text) {
      const columns = glyphColumns(char.codePointAt(0) ?? 0);
      for (let gx = 0; gx < GLYPH_WIDTH; gx += 1) {
        for (let gy = 0; gy < GLYPH_HEIGHT; gy += 1) {
          if (((columns[gx] >> gy) & 1) === 0) continue;
          const along = advance + gx * scale;
          const across = gy * scale;
          if (options.vertical) this.fillRect(ox + across, oy - along - scale + 1, scale, scale, color);
          else this.fillRect(ox + along, oy + across, scale, scale, color);
        }
      }
      advance += CHAR_ADVANCE * scale;
    }
    return advance;
  }

  /** This canvas as a PNG file. */
  toPng(): Uint8Array {
    return encodePng(this.width, this.height, this.pixels);
  }
}

/** Width in pixels of `text` at `scale` (the last character's spacing column included). */
export function textWidth(text: string, scale = 1): number {
  return [...text].length * CHAR_ADVANCE * scale;
}

/** Height in pixels of one text line at `scale` (the spacing row included). */
export function textHeight(scale = 1): number {
  return LINE_HEIGHT * scale;
}

/**
 * `text` cut to at most `maxWidth` pixels at `scale`, ending in "." when cut (an ASCII stand-in
 * for an ellipsis, since the font has no "…").
 */
export function truncateText(text: string, maxWidth: number, scale = 1): string {
  const chars = [...text];
  const fits = Math.floor(maxWidth / (CHAR_ADVANCE * scale));
  if (chars.length <= fits) return text;
  if (fits <= 0) return '';
  if (fits === 1) return chars[0];
  return `${chars.slice(0, fits - 1).join('').trimEnd()}.`;
}

/**
 * Greedy word wrap of `text` into lines of at most `maxChars` characters; a word longer than a
 * line is cut.
 */
export function wrapText(text: string, maxChars: number): string[] {
  const limit = Math.max(1, Math.floor(maxChars));
  const lines: string[] = [];
  let current = '';
  for (const word of text.split(/\s+/).filter((w) => w.length > 0)) {
    let rest = [...word];
    if (current.length > 0 && [...current].length + 1 + rest.length <= limit) {
      current = `${current} ${word}`;
      continue;
    }
    if (current.length > 0) lines.push(current);
    while (rest.length > limit) {
      lines.push(rest.slice(0, limit).join(''));
      rest = rest.slice(limit);
    }
    current = rest.join('');
  }
  if (current.length > 0) lines.push(current);
  return lines;
}
