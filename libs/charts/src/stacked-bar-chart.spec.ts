import { describe, expect, it } from 'vitest';
import type { Canvas, Rgb } from './canvas';
import { seriesColor } from './frame';
import { renderStackedBarChart, stackedBarChart } from './stacked-bar-chart';

const same = (a: Rgb, b: Rgb) => a[0] === b[0] && a[1] === b[1] && a[2] === b[2];
const countColor = (canvas: Canvas, color: Rgb, x0: number, y0: number, x1: number, y1: number) => {
  let n = 0;
  for (let y = y0; y <= y1; y += 1) for (let x = x0; x <= x1; x += 1) if (same(canvas.getPixel(x, y), color)) n += 1;
  return n;
};

describe('stackedBarChart', () => {
  it('stacks normalised segments left to right, each as wide as its share', () => {
    const { canvas, plot, segments, xTicks } = renderStackedBarChart({
      title: 'good / same / bad',
      categories: ['safety', 'code'],
      segments: [
        { name: 'good', values: [2, 1] },
        { name: 'same', values: [1, 1] },
        { name: 'bad', values: [1, 2] },
      ],
      normalize: true,
    });
    expect([xTicks.min, xTicks.max]).toEqual([0, 1]);
    const span = plot.right - plot.left;
    const safety = segments.filter((s) => s.category === 0);
    expect(safety.map((s) => s.value)).toEqual([0.5, 0.25, 0.25]);
    expect(safety[0].left).toBe(plot.left);
    expect(safety[0].right).toBe(Math.round(plot.left + 0.5 * span) - 1);
    expect(safety[1].left).toBe(safety[0].right + 1);
    expect(safety[2].right).toBe(plot.right - 1);
    // Bars in their own rows, top to bottom in category order.
    const code = segments.filter((s) => s.category === 1);
    expect(code[0].top).toBeGreaterThan(safety[0].bottom);
    expect(code.map((s) => s.value)).toEqual([0.25, 0.25, 0.5]);
    // The segment colours are painted inside their rectangles.
    const s0 = safety[0];
    expect(countColor(canvas, seriesColor(0), s0.left, s0.top, s0.right, s0.bottom)).toBeGreaterThan(((s0.right - s0.left + 1) * (s0.bottom - s0.top + 1)) / 2);
    expect(same(canvas.getPixel(code[2].right, code[2].bottom), seriesColor(2))).toBe(true);
  });

  it('skips zero segments and a zero-total bar, and draws raw values without normalize', () => {
    const { segments, xTicks } = renderStackedBarChart({
      categories: ['a', 'b'],
      segments: [
        { name: 'x', values: [3, 0] },
        { name: 'y', values: [0, 0] },
      ],
    });
    expect(segments).toHaveLength(1);
    expect(segments[0]).toMatchObject({ category: 0, segment: 0, value: 3 });
    expect(xTicks.max).toBeGreaterThanOrEqual(3);
  });

  it('refuses negative or non-finite values and mismatched lengths', () => {
    expect(() => renderStackedBarChart({ categories: ['a'], segments: [{ name: 'x', values: [-1] }] })).toThrow(/"x" value for "a" must be finite and >= 0/);
    expect(() => renderStackedBarChart({ categories: ['a'], segments: [{ name: 'x', values: [NaN] }] })).toThrow(/finite/);
    expect(() => renderStackedBarChart({ categories: ['a', 'b'], segments: [{ name: 'x', values: [1] }] })).toThrow(/1 values for 2 categories/);
    expect(() => renderStackedBarChart({ categories: [], segments: [] })).toThrow(/no categories/);
  });

  it('writes a PNG', () => {
    const png = stackedBarChart({ categories: ['a'], segments: [{ name: 'x', values: [1] }], normalize: true });
    expect([...png.slice(0, 8)]).toEqual([137, 80, 78, 71, 13, 10, 26, 10]);
  });
});
