/**
 * A horizontal stacked bar chart: one bar per category (top to bottom, labels on the left), each
 * bar the segments of the series stacked left to right (e.g. good / same / bad), the legend under
 * the title. With `normalize` every bar is scaled to 100% of its own total and the axis reads
 * 0%..100%; `valueLabels` prints each segment's value (or percentage) inside it when it fits.
 *
 * Values must be finite and ≥ 0 (a stack of negative parts has no meaning); a bar whose total is
 * 0 draws no segment.
 */
import { Canvas, type Rgb, textHeight, textWidth, truncateText } from './canvas';
import { AXIS_COLOR, GAP, GRID_COLOR, PAD, type PlotArea, TEXT_COLOR, TICK_LENGTH, drawLegend, drawTitle, layoutLegend, legendHeight, seriesColor, titleHeight } from './frame';
import { formatTick, niceTicks, type Ticks } from './ticks';

export interface StackSegment {
  name: string;
  /** One value per category, finite and ≥ 0. */
  values: readonly number[];
  /** Default: the palette colour of the segment's index. */
  color?: Rgb;
}

export interface StackedBarChartSpec {
  title?: string;
  xLabel?: string;
  categories: readonly string[];
  segments: readonly StackSegment[];
  /** Scale each bar to 100% of its total (default false). */
  normalize?: boolean;
  /** Print values inside the segments where they fit (default true). */
  valueLabels?: boolean;
  /** Decimals of the value labels (default 1; percentages with normalize). */
  decimals?: number;
  /** Canvas width in pixels (default 800); height default: 24 px per bar plus the frame. */
  width?: number;
  height?: number;
}

export interface SegmentRect {
  category: number;
  segment: number;
  /** The value drawn (a fraction of 1 with normalize). */
  value: number;
  left: number;
  top: number;
  right: number;
  bottom: number;
}

export interface RenderedStackedBarChart {
  canvas: Canvas;
  plot: PlotArea;
  xTicks: Ticks;
  segments: SegmentRect[];
}

const LABEL_ON_DARK: Rgb = [255, 255, 255];
const ROW = 24;

/** The chart drawn on a canvas, with its plot area and segment rectangles (for composing or testing). */
export function renderStackedBarChart(spec: StackedBarChartSpec): RenderedStackedBarChart {
  const categories = spec.categories;
  if (categories.length === 0) throw new RangeError('stackedBarChart: no categories');
  spec.segments.forEach((s) => {
    if (s.values.length !== categories.length) throw new RangeError(`stackedBarChart: segment "${s.name}" has ${s.values.length} values for ${categories.length} categories`);
    s.values.forEach((v, i) => {
      if (!Number.isFinite(v) || v < 0) throw new RangeError(`stackedBarChart: segment "${s.name}" value for "${categories[i]}" must be finite and >= 0, got ${v}`);
    });
  });
  const normalize = spec.normalize ?? false;
  const showValues = spec.valueLabels ?? true;
  const decimals = spec.decimals ?? 1;
  const width = spec.width ?? 800;
  const totals = categories.map((_, c) => spec.segments.reduce((a, s) => a + s.values[c], 0));
  const xTicks = normalize ? niceTicks(0, 1, 6, true) : niceTicks(0, Math.max(0, ...totals) || 1, 6);

  const colors = spec.segments.map((s, i) => s.color ?? seriesColor(i));
  const legend = layoutLegend(
    spec.segments.map((s) => s.name),
    colors,
    width - 2 * PAD,
  );
  const top = PAD + titleHeight(spec.title) + legendHeight(legend) + GAP;
  const below = 2 + TICK_LENGTH + GAP / 2 + textHeight() + (spec.xLabel ? GAP + textHeight() : 0) + PAD;
  const height = spec.height ?? top + categories.length * ROW + below;
  const labelWidth = Math.min(Math.floor(width * 0.35), Math.max(...categories.map((c) => textWidth(c))));
  const tickLabel = (v: number) => (normalize ? `${formatTick(v * 100, Math.max(0, xTicks.decimals - 2))}%` : formatTick(v, xTicks.decimals));
  const plot: PlotArea = {
    left: PAD + labelWidth + GAP + 1,
    top,
    right: width - PAD - Math.ceil(textWidth(tickLabel(xTicks.max)) / 2) - 1,
    bottom: height - below,
  };
  if (plot.right - plot.left < 20 || plot.bottom - plot.top < categories.length) {
    throw new RangeError(`stackedBarChart: ${width}×${height} leaves no room for ${categories.length} bars; make the chart larger`);
  }

  const canvas = new Canvas(width, height);
  drawTitle(canvas, spec.title, PAD);
  drawLegend(canvas, legend, PAD + titleHeight(spec.title));
  const xOf = (v: number) => plot.left + ((Math.min(xTicks.max, Math.max(xTicks.min, v)) - xTicks.min) / (xTicks.max - xTicks.min)) * (plot.right - plot.left);
  for (const v of xTicks.values) {
    const x = Math.round(xOf(v));
    canvas.line(x, plot.top, x, plot.bottom, GRID_COLOR);
    canvas.line(x, plot.bottom + 2, x, plot.bottom + 1 + TICK_LENGTH, AXIS_COLOR);
    const label = tickLabel(v);
    canvas.text(Math.round(x - textWidth(label) / 2 + 1), plot.bottom + 2 + TICK_LENGTH + GAP / 2, label, TEXT_COLOR);
  }
  canvas.line(plot.left - 1, plot.top, plot.left - 1, plot.bottom + 1, AXIS_COLOR);
  canvas.line(plot.left - 1, plot.bottom + 1, plot.right, plot.bottom + 1, AXIS_COLOR);
  if (spec.xLabel) {
    const text = truncateText(spec.xLabel, plot.right - plot.left + 1);
    canvas.text(Math.round((plot.left + plot.right - textWidth(text)) / 2), height - PAD - textHeight(), text, TEXT_COLOR);
  }

  const slot = (plot.bottom - plot.top + 1) / categories.length;
  const barHeight = Math.max(1, Math.floor(slot * 0.6));
  const rects: SegmentRect[] = [];
  categories.forEach((category, c) => {
    const slotTop = plot.top + c * slot;
    const barTop = Math.round(slotTop + (slot - barHeight) / 2);
    const barBottom = barTop + barHeight - 1;
    const label = truncateText(category, labelWidth);
    canvas.text(plot.left - 1 - GAP - textWidth(label), Math.round(slotTop + (slot - textHeight()) / 2) + 1, label, TEXT_COLOR);
    const total = totals[c];
    if (total <= 0) return;
    let acc = 0;
    spec.segments.forEach((segment, s) => {
      const raw = segment.values[c];
      const value = normalize ? raw / total : raw;
      const left = Math.round(xOf(acc));
      acc += value;
      const right = Math.round(xOf(acc)) - 1;
      if (raw === 0 || right < left) return;
      canvas.fillRect(left, barTop, right - left + 1, barHeight, colors[s]);
      rects.push({ category: c, segment: s, value, left, top: barTop, right, bottom: barBottom });
      if (showValues) {
        const text = normalize ? `${(value * 100).toFixed(decimals)}%` : value.toFixed(decimals);
        if (textWidth(text) + 2 <= right - left + 1 && textHeight() <= barHeight) {
          const [r, g, b] = colors[s];
          const ink = 0.299 * r + 0.587 * g + 0.114 * b < 150 ? LABEL_ON_DARK : TEXT_COLOR;
          canvas.text(Math.round((left + right - textWidth(text)) / 2) + 1, Math.round(barTop + (barHeight - textHeight()) / 2) + 1, text, ink);
        }
      }
    });
  });
  return { canvas, plot, xTicks, segments: rects };
}

/** A horizontal stacked bar chart as a PNG file. */
export function stackedBarChart(spec: StackedBarChartSpec): Uint8Array {
  return renderStackedBarChart(spec).canvas.toPng();
}
