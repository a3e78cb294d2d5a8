/**
 * What the line and bar charts share: the palette, the title, the legend (under the title,
 * wrapping onto more rows when needed) and the value axis (ticks, labels, grid lines, a vertical
 * axis label).
 */
import { BLACK, Canvas, type Rgb, textHeight, textWidth, truncateText } from './canvas';
import { formatTick, type Ticks } from './ticks';

/** Series colours (Tableau 10): distinct in hue and readable on white. */
export const PALETTE: readonly Rgb[] = [
  [31, 119, 180],
  [255, 127, 14],
  [44, 160, 44],
  [214, 39, 40],
  [148, 103, 189],
  [140, 86, 75],
  [227, 119, 194],
  [127, 127, 127],
  [188, 189, 34],
  [23, 190, 207],
];

/** The colour of series `index`: the palette, then the palette darkened for the next ten, and so on. */
export function seriesColor(index: number): Rgb {
  const base = PALETTE[index % PALETTE.length];
  const round = Math.floor(index / PALETTE.length);
  const factor = round === 0 ? 1 : 1 / (1 + 0.45 * round);
  return [Math.round(base[0] * factor), Math.round(base[1] * factor), Math.round(base[2] * factor)];
}

export const AXIS_COLOR: Rgb = BLACK;
export const GRID_COLOR: Rgb = [225, 225, 225];
export const TEXT_COLOR: Rgb = [30, 30, 30];
/** Outer padding and the usual gap between elements, in pixels. */
export const PAD = 10;
export const GAP = 6;
export const TICK_LENGTH = 4;
const SWATCH = 10;
const LEGEND_ROW = 14;
const LEGEND_SPACING = 14;

/**
 * The plot area, inclusive pixel bounds: the value axis maps `ticks.max` to `top` and
 * `ticks.min` to `bottom`. The axes are drawn just outside it (x = left − 1, y = bottom + 1).
 */
export interface PlotArea {
  left: number;
  top: number;
  right: number;
  bottom: number;
}

/** The pixel row of value `v` on the value axis (not clipped). */
export function valueToY(plot: PlotArea, ticks: Ticks, v: number): number {
  return plot.bottom - ((v - ticks.min) / (ticks.max - ticks.min)) * (plot.bottom - plot.top);
}

/** Height the title takes (drawn at scale 2), gap below included; 0 for no title. */
export function titleHeight(title: string | undefined): number {
  return title ? textHeight(2) + GAP : 0;
}

export function drawTitle(canvas: Canvas, title: string | undefined, top: number): void {
  if (!title) return;
  const text = truncateText(title, canvas.width - 2 * PAD, 2);
  canvas.text(Math.max(PAD, Math.round((canvas.width - textWidth(text, 2)) / 2)), top, text, TEXT_COLOR, { scale: 2 });
}

interface LegendEntry {
  name: string;
  color: Rgb;
  x: number;
}

/** Legend entries placed left to right, wrapping into rows no wider than `maxWidth`. */
export function layoutLegend(names: readonly string[], colors: readonly Rgb[], maxWidth: number): LegendEntry[][] {
  const rows: LegendEntry[][] = [];
  let row: LegendEntry[] = [];
  let x = 0;
  names.forEach((name, i) => {
    const label = truncateText(name, maxWidth - SWATCH - 4);
    const width = SWATCH + 4 + textWidth(label);
    if (row.length > 0 && x + width > maxWidth) {
      rows.push(row);
      row = [];
      x = 0;
    }
    row.push({ name: label, color: colors[i], x });
    x += width + LEGEND_SPACING;
  });
  if (row.length > 0) rows.push(row);
  return rows;
}

export function legendHeight(rows: LegendEntry[][]): number {
  return rows.length === 0 ? 0 : rows.length * LEGEND_ROW + GAP;
}

/** Draw the legend rows, each centred on the canvas, starting at pixel row `top`. */
export function drawLegend(canvas: Canvas, rows: LegendEntry[][], top: number): void {
  rows.forEach((row, r) => {
    const last = row[row.length - 1];
    const rowWidth = last.x + SWATCH + 4 + textWidth(last.name);
    const left = Math.max(PAD, Math.round((canvas.width - rowWidth) / 2));
    const y = top + r * LEGEND_ROW;
    for (const entry of row) {
      canvas.fillRect(left + entry.x, y, SWATCH, SWATCH - 2, entry.color);
      canvas.text(left + entry.x + SWATCH + 4, y, entry.name, TEXT_COLOR);
    }
  });
}

/** Width the value axis needs left of the plot: axis label, tick labels, ticks. */
export function valueAxisWidth(ticks: Ticks, axisLabel: string | undefined): number {
  const labels = Math.max(0, ...ticks.values.map((v) => textWidth(formatTick(v, ticks.decimals))));
  return (axisLabel ? textHeight() + GAP : 0) + labels + GAP + TICK_LENGTH;
}

/**
 * The value axis: grid lines across the plot, the axis line, ticks with their labels, and the
 * axis label turned to read bottom to top, centred on the plot.
 */
export function drawValueAxis(canvas: Canvas, plot: PlotArea, ticks: Ticks, axisLabel: string | undefined): void {
  for (const v of ticks.values) {
    const y = Math.round(valueToY(plot, ticks, v));
    canvas.line(plot.left, y, plot.right, y, GRID_COLOR);
  }
  canvas.line(plot.left - 1, plot.top, plot.left - 1, plot.bottom + 1, AXIS_COLOR);
  for (const v of ticks.values) {
    const y = Math.round(valueToY(plot, ticks, v));
    canvas.line(plot.left - 1 - TICK_LENGTH, y, plot.left - 2, y, AXIS_COLOR);
    const label = formatTick(v, ticks.decimals);
    canvas.text(plot.left - 1 - TICK_LENGTH - GAP / 2 - textWidth(label), y - 3, label, TEXT_COLOR);
  }
  if (axisLabel) {
    const text = truncateText(axisLabel, plot.bottom - plot.top + 1);
    const middle = (plot.top + plot.bottom) / 2;
    canvas.text(PAD, Math.round(middle + textWidth(text) / 2), text, TEXT_COLOR, { vertical: true });
  }
}
