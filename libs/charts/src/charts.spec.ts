import { describe, expect, it } from 'vitest';
import { renderBarChart } from './bar-chart';
import type { Canvas, Rgb } from './canvas';
import { seriesColor, valueToY } from './frame';
import { renderLineChart } from './line-chart';

const same = (a: Rgb, b: Rgb) => a[0] === b[0] && a[1] === b[1] && a[2] === b[2];
const countColor = (canvas: Canvas, color: Rgb, x0 = 0, y0 = 0, x1 = canvas.width - 1, y1 = canvas.height - 1) => {
  let n = 0;
  for (let y = y0; y <= y1; y += 1) for (let x = x0; x <= x1; x += 1) if (same(canvas.getPixel(x, y), color)) n += 1;
  return n;
};

describe('lineChart', () => {
  it('draws each series in its own colour through its points', () => {
    const { canvas, plot, xTicks, yTicks } = renderLineChart({
      title: 'Loss',
      xLabel: 'step',
      yLabel: 'loss',
      series: [
        { name: 'train', points: [[0, 0], [10, 10]] },
        { name: 'eval', points: [[0, 10], [10, 0]] },
      ],
    });
    expect(seriesColor(0)).not.toEqual(seriesColor(1));
    expect([xTicks.min, xTicks.max, yTicks.min, yTicks.max]).toEqual([0, 10, 0, 10]);
    // (0, 0) is the bottom-left corner of the plot, (10, 10) the top-right.
    expect(same(canvas.getPixel(plot.left, plot.bottom), seriesColor(0))).toBe(true);
    expect(same(canvas.getPixel(plot.right, plot.top), seriesColor(0))).toBe(true);
    expect(same(canvas.getPixel(plot.right, plot.bottom), seriesColor(1))).toBe(true);
    // Both colours appear inside the plot and in the legend above it.
    expect(countColor(canvas, seriesColor(0), plot.left, plot.top, plot.right, plot.bottom)).toBeGreaterThan(100);
    expect(countColor(canvas, seriesColor(1), 0, 0, canvas.width - 1, plot.top - 1)).toBeGreaterThan(20);
  });

  it('skips a NaN point and leaves a gap in the line', () => {
    const { canvas, plot, yTicks } = renderLineChart({
      series: [{ name: 'flat', points: [[0, 1], [1, 1], [2, NaN], [3, 1], [4, 1]] }],
      yMin: 0,
      yMax: 2,
      thickness: 1,
    });
    const y = Math.round(valueToY(plot, yTicks, 1));
    const xOf = (x: number) => Math.round(plot.left + (x / 4) * (plot.right - plot.left));
    const color = seriesColor(0);
    expect(same(canvas.getPixel(xOf(0.5), y), color)).toBe(true);
    expect(same(canvas.getPixel(xOf(3.5), y), color)).toBe(true);
    expect(same(canvas.getPixel(xOf(2), y), color)).toBe(false);
    expect(same(canvas.getPixel(xOf(1.5), y), color)).toBe(false);
  });

  it('draws a lone point as a dot and survives a series with no finite point', () => {
    const { canvas, plot } = renderLineChart({
      series: [
        { name: 'dot', points: [[0, 0], [1, NaN], [2, 2]] },
        { name: 'empty', points: [[NaN, NaN]] },
      ],
    });
    expect(same(canvas.getPixel(plot.left, plot.bottom), seriesColor(0))).toBe(true);
    expect(countColor(canvas, seriesColor(0), plot.left, plot.top, plot.right, plot.bottom)).toBeLessThanOrEqual(2 * 9);
    expect(() => renderLineChart({ series: [] })).not.toThrow();
  });
});

describe('barChart', () => {
  const spec = {
    title: 'Alignment',
    yLabel: 'rate',
    categories: ['high', 'zero', 'half', 'missing'],
    groups: [
      { name: 'UFRM', values: [1, 0, 0.5, NaN], low: [0.9, 0, 0.4, NaN], high: [1, 0.1, 0.6, NaN] },
      { name: 'ablation', values: [0.25, 0.25, 0.25, 0.25] },
    ],
    yMin: 0,
    yMax: 1,
    referenceLine: { value: 0.5, label: 'chance' },
  };

  it('a bar of value 1 with yMax 1 reaches the top row of the plot; a bar of 0 draws nothing', () => {
    const { canvas, plot, bars } = renderBarChart(spec);
    const color = seriesColor(0);
    const high = bars.find((b) => b.category === 0 && b.group === 0)!;
    expect(high.top).toBe(plot.top);
    expect(same(canvas.getPixel(high.left + 1, plot.top), color)).toBe(true);
    expect(same(canvas.getPixel(high.left + 1, plot.bottom), color)).toBe(true);
    expect(same(canvas.getPixel(high.left + 1, plot.top - 1), color)).toBe(false);
    expect(bars.some((b) => b.category === 1 && b.group === 0)).toBe(false);
    const slot = (plot.right - plot.left + 1) / 4;
    const zeroColumn = Math.round(plot.left + slot + 2);
    expect(countColor(canvas, color, Math.round(plot.left + slot), plot.top, Math.round(plot.left + 2 * slot) - 1, plot.bottom)).toBe(0);
    expect(same(canvas.getPixel(zeroColumn, plot.top), color)).toBe(false);
  });

  it('a bar of 0.5 ends halfway up; a NaN value draws no bar', () => {
    const { plot, bars } = renderBarChart(spec);
    const half = bars.find((b) => b.category === 2 && b.group === 0)!;
    expect(half.top).toBe(Math.round((plot.top + plot.bottom) / 2));
    expect(half.bottom).toBe(plot.bottom);
    expect(bars.some((b) => b.category === 3 && b.group === 0)).toBe(false);
    expect(bars.filter((b) => b.group === 1)).toHaveLength(4);
  });

  it('draws whiskers from low to high and the dashed reference line', () => {
    const { canvas, plot, bars } = renderBarChart(spec);
    const whisker: Rgb = [40, 40, 40];
    const half = bars.find((b) => b.category === 2 && b.group === 0)!;
    const centre = Math.round((half.left + half.right) / 2);
    const yOf = (v: number) => Math.round(plot.bottom - v * (plot.bottom - plot.top));
    expect(same(canvas.getPixel(centre, yOf(0.6)), whisker)).toBe(true);
    expect(same(canvas.getPixel(centre, yOf(0.4)), whisker)).toBe(true);
    expect(same(canvas.getPixel(centre, yOf(0.7)), whisker)).toBe(false);
    const reference: Rgb = [200, 30, 30];
    const onLine = countColor(canvas, reference, plot.left, yOf(0.5), plot.right, yOf(0.5));
    expect(onLine).toBeGreaterThan((plot.right - plot.left) * 0.4);
    expect(onLine).toBeLessThan(plot.right - plot.left);
  });

  it('prints short labels as they are, wraps longer ones, numbers many with a key under the chart', () => {
    expect(renderBarChart(spec).labelMode).toBe('plain');
    const wrapped = renderBarChart({ ...spec, width: 400, categories: ['finance calculation', 'event analysis', 'code', 'safety'] });
    expect(wrapped.labelMode).toBe('wrapped');
    const many = Array.from({ length: 19 }, (_, i) => `subcategory number ${i + 1}`);
    const numbered = renderBarChart({ categories: many, groups: [{ name: 'a', values: many.map(() => 0.7) }], yMax: 1, height: 150 });
    expect(numbered.labelMode).toBe('numbered');
    // The key and a plot of 80 pixels need more than 150 pixels: the canvas grew.
    expect(numbered.canvas.height).toBeGreaterThan(150);
    expect(numbered.plot.bottom - numbered.plot.top).toBeGreaterThanOrEqual(80);
  });

  it('fits the axis to the data when no range is given, negative values included', () => {
    const { yTicks, plot, bars } = renderBarChart({ categories: ['a', 'b'], groups: [{ name: 'g', values: [-2, 7] }] });
    expect([yTicks.min, yTicks.max]).toEqual([-2, 8]);
    const negative = bars.find((b) => b.category === 0)!;
    expect(negative.bottom).toBe(plot.bottom);
  });

  it('refuses values that do not match the categories', () => {
    expect(() => renderBarChart({ categories: ['a', 'b'], groups: [{ name: 'g', values: [1] }] })).toThrow(/1 values for 2 categories/);
    expect(() => renderBarChart({ categories: [], groups: [] })).toThrow(/no categories/);
  });
});
