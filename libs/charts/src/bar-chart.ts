/**
 * A grouped bar chart: one slot per category, one bar per group inside it (groups are the
 * legend's series, e.g. model variants), optional interval whiskers (low..high) and an optional
 * horizontal reference line (e.g. chance = 0.5).
 *
 * Category labels go under their slot: on one line when they fit, wrapped onto two lines when
 * every word fits a slot, and otherwise the slots are numbered and a key ("1 = …") is printed
 * under the chart; the canvas grows taller when the key needs the room.
 */
import { Canvas, type Rgb, WHITE, textHeight, textWidth, truncateText, wrapText } from './canvas';
import {
  AXIS_COLOR,
  GAP,
  PAD,
  type PlotArea,
  TEXT_COLOR,
  TICK_LENGTH,
  drawLegend,
  drawTitle,
  drawValueAxis,
  layoutLegend,
  legendHeight,
  seriesColor,
  titleHeight,
  valueAxisWidth,
  valueToY,
} from './frame';
import { niceTicks, type Ticks } from './ticks';

export interface BarGroup {
  name: string;
  /** One value per category; a non-finite value draws no bar. */
  values: readonly number[];
  /** Interval ends per category, drawn as a whisker when both are finite. */
  low?: readonly number[];
  high?: readonly number[];
}

export interface ReferenceLine {
  value: number;
  /** Printed at the right end of the line (default: the value). */
  label?: string;
}

export interface BarChartSpec {
  title?: string;
  yLabel?: string;
  categories: readonly string[];
  groups: readonly BarGroup[];
  /** Value axis range; each end not given fits the data (and 0, the bars' base). */
  yMin?: number;
  yMax?: number;
  referenceLine?: number | ReferenceLine;
  /** Canvas size in pixels (default 800×420; the height grows to fit a category key). */
  width?: number;
  height?: number;
}

export type CategoryLabelMode = 'plain' | 'wrapped' | 'numbered';

export interface BarRect {
  category: number;
  group: number;
  /** Inclusive pixel bounds of the bar (left, top, right, bottom). */
  left: number;
  top: number;
  right: number;
  bottom: number;
}

export interface RenderedBarChart {
  canvas: Canvas;
  plot: PlotArea;
  yTicks: Ticks;
  labelMode: CategoryLabelMode;
  bars: BarRect[];
}

const WHISKER_COLOR: Rgb = [40, 40, 40];
const REFERENCE_COLOR: Rgb = [200, 30, 30];
const KEY_ROW = 10;
const MIN_PLOT_HEIGHT = 80;

/** The chart drawn on a canvas, with its plot area, axis and bar rectangles (for composing or testing). */
export function renderBarChart(spec: BarChartSpec): RenderedBarChart {
  const width = spec.width ?? 800;
  const requestedHeight = spec.height ?? 420;
  const categories = spec.categories;
  if (categories.length === 0) throw new RangeError('barChart: no categories');
  spec.groups.forEach((group) => {
    for (const [field, values] of [['values', group.values], ['low', group.low], ['high', group.high]] as const) {
      if (values && values.length !== categories.length) {
        throw new RangeError(`barChart: group "${group.name}" has ${values.length} ${field} for ${categories.length} categories`);
      }
    }
  });
  const reference = typeof spec.referenceLine === 'number' ? { value: spec.referenceLine } : spec.referenceLine;

  const data = spec.groups.flatMap((g) => [...g.values, ...(g.low ?? []), ...(g.high ?? [])]).filter(Number.isFinite);
  if (reference && Number.isFinite(reference.value)) data.push(reference.value);
  const lo = Math.min(0, ...data);
  const hi = Math.max(0, ...data);
  const fitted = niceTicks(lo, hi === lo ? lo + 1 : hi, 6);
  const yTicks = spec.yMin === undefined && spec.yMax === undefined ? fitted : niceTicks(spec.yMin ?? fitted.min, spec.yMax ?? fitted.max, 6, true);

  const colors = spec.groups.map((_, i) => seriesColor(i));
  const legend = layoutLegend(
    spec.groups.map((g) => g.name),
    colors,
    width - 2 * PAD,
  );
  const top = PAD + titleHeight(spec.title) + legendHeight(legend) + GAP;
  const left = PAD + valueAxisWidth(yTicks, spec.yLabel) + 1;
  const right = width - PAD - 1;
  if (right - left < 20) throw new RangeError(`barChart: width ${width} leaves no room for the plot; make the chart wider`);
  const slot = (right - left + 1) / categories.length;

  const labels = categoryLabels(categories, slot);
  const key = labels.mode === 'numbered' ? layoutKey(categories, width - 2 * PAD) : undefined;
  const below = TICK_LENGTH + GAP / 2 + labels.lines * textHeight() + (key ? GAP + key.rows * KEY_ROW : 0) + PAD;
  const height = Math.max(requestedHeight, top + MIN_PLOT_HEIGHT + below + 2);
  const plot: PlotArea = { left, top, right, bottom: height - below - 2 };

  const canvas = new Canvas(width, height);
  drawTitle(canvas, spec.title, PAD);
  drawLegend(canvas, legend, PAD + titleHeight(spec.title));
  drawValueAxis(canvas, plot, yTicks, spec.yLabel);
  canvas.line(plot.left - 1, plot.bottom + 1, plot.right, plot.bottom + 1, AXIS_COLOR);

  const clampValue = (v: number) => Math.min(yTicks.max, Math.max(yTicks.min, v));
  const yOf = (v: number) => Math.round(valueToY(plot, yTicks, clampValue(v)));
  const base = clampValue(0);
  const groupCount = Math.max(1, spec.groups.length);
  const barWidth = Math.max(1, Math.floor((slot * 0.8) / groupCount));
  const bars: BarRect[] = [];
  categories.forEach((_, c) => {
    const slotLeft = plot.left + c * slot;
    const groupLeft = Math.round(slotLeft + (slot - barWidth * groupCount) / 2);
    spec.groups.forEach((group, g) => {
      const v = group.values[c];
      const barLeft = groupLeft + g * barWidth;
      const barRight = barLeft + Math.max(1, barWidth - (barWidth >= 4 ? 1 : 0)) - 1;
      if (Number.isFinite(v) && clampValue(v) !== base) {
        let barTop = yOf(Math.max(v, base));
        let barBottom = yOf(Math.min(v, base));
        // The base row belongs to the bar that grows away from it: up for positive values.
        if (v > base) barBottom = Math.min(barBottom, plot.bottom);
        if (barTop > barBottom) [barTop, barBottom] = [barBottom, barTop];
        canvas.fillRect(barLeft, barTop, barRight - barLeft + 1, barBottom - barTop + 1, colors[g]);
        bars.push({ category: c, group: g, left: barLeft, top: barTop, right: barRight, bottom: barBottom });
      }
      const low = group.low?.[c];
      const high = group.high?.[c];
      if (low !== undefined && high !== undefined && Number.isFinite(low) && Number.isFinite(high)) {
        const centre = Math.round((barLeft + barRight) / 2);
        const cap = Math.max(1, Math.min(8, Math.floor((barRight - barLeft + 1) / 2)));
        const yLow = yOf(Math.min(low, high));
        const yHigh = yOf(Math.max(low, high));
        canvas.line(centre, yLow, centre, yHigh, WHISKER_COLOR);
        canvas.line(centre - Math.floor(cap / 2), yLow, centre + Math.floor(cap / 2), yLow, WHISKER_COLOR);
        canvas.line(centre - Math.floor(cap / 2), yHigh, centre + Math.floor(cap / 2), yHigh, WHISKER_COLOR);
      }
    });
    const labelTop = plot.bottom + 2 + TICK_LENGTH + GAP / 2;
    labels.text[c].forEach((line, k) => {
      canvas.text(Math.round(slotLeft + (slot - textWidth(line)) / 2 + 1), labelTop + k * textHeight(), line, TEXT_COLOR);
    });
    if (c > 0) canvas.line(Math.round(slotLeft), plot.bottom + 2, Math.round(slotLeft), plot.bottom + 1 + TICK_LENGTH, AXIS_COLOR);
  });

  if (reference && Number.isFinite(reference.value) && reference.value >= yTicks.min && reference.value <= yTicks.max) {
    const y = yOf(reference.value);
    canvas.line(plot.left, y, plot.right, y, REFERENCE_COLOR, 1, [6, 4]);
    const label = reference.label ?? String(reference.value);
    const labelLeft = plot.right - textWidth(label);
    canvas.fillRect(labelLeft - 1, y - textHeight() - 1, textWidth(label) + 1, textHeight(), WHITE);
    canvas.text(labelLeft, y - textHeight(), label, REFERENCE_COLOR);
  }

  if (key) {
    const keyTop = plot.bottom + 2 + TICK_LENGTH + GAP / 2 + labels.lines * textHeight() + GAP;
    key.entries.forEach((entry, i) => {
      const column = Math.floor(i / key.rows);
      const row = i % key.rows;
      canvas.text(PAD + column * key.columnWidth, keyTop + row * KEY_ROW, entry, TEXT_COLOR);
    });
  }
  return { canvas, plot, yTicks, labelMode: labels.mode, bars };
}

/** A grouped bar chart as a PNG file. */
export function barChart(spec: BarChartSpec): Uint8Array {
  return renderBarChart(spec).canvas.toPng();
}

/** How to print the category labels in slots `slot` pixels wide. */
function categoryLabels(categories: readonly string[], slot: number): { mode: CategoryLabelMode; lines: number; text: string[][] } {
  // Keep at least one blank character between neighbouring labels.
  const maxChars = Math.floor((slot - textWidth(' ')) / textWidth(' '));
  if (categories.every((c) => [...c].length <= maxChars)) return { mode: 'plain', lines: 1, text: categories.map((c) => [c]) };
  if (maxChars >= 4) {
    const wrapped = categories.map((c) => wrapText(c, maxChars));
    const wordsFit = categories.every((c) => c.split(/\s+/).every((word) => [...word].length <= maxChars));
    if (wordsFit && wrapped.every((lines) => lines.length <= 2)) {
      return { mode: 'wrapped', lines: Math.max(...wrapped.map((l) => l.length)), text: wrapped };
    }
  }
  return { mode: 'numbered', lines: 1, text: categories.map((_, i) => [truncateText(String(i + 1), slot)]) };
}

/** The key "1 = …" in columns (numbered down each column), as many columns as fit `maxWidth`. */
function layoutKey(categories: readonly string[], maxWidth: number): { entries: string[]; rows: number; columnWidth: number } {
  const full = categories.map((c, i) => `${i + 1} = ${c}`);
  const columnWidth = Math.min(maxWidth, Math.max(...full.map((e) => textWidth(e))) + 2 * textWidth(' '));
  const columns = Math.max(1, Math.floor(maxWidth / columnWidth));
  const rows = Math.ceil(categories.length / columns);
  return { entries: full.map((e) => truncateText(e, columnWidth - textWidth(' '))), rows, columnWidth };
}
