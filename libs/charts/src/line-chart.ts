/**
 * A line chart: numeric x and y axes with nice ticks, one coloured polyline per series, a legend
 * under the title. A point whose x or y is not finite (NaN) is skipped and breaks its line; an
 * isolated point (no finite neighbour) is drawn as a dot.
 */
import { Canvas, textHeight, textWidth, truncateText } from './canvas';
import {
  AXIS_COLOR,
  GAP,
  GRID_COLOR,
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
import { formatTick, niceTicks, type Ticks } from './ticks';

export interface LineSeries {
  name: string;
  points: readonly (readonly [number, number])[];
}

export interface LineChartSpec {
  title?: string;
  xLabel?: string;
  yLabel?: string;
  series: readonly LineSeries[];
  /** Canvas size in pixels (default 640×400). */
  width?: number;
  height?: number;
  /** Fix an end of an axis instead of fitting it to the data. */
  xMin?: number;
  xMax?: number;
  yMin?: number;
  yMax?: number;
  /** Line thickness in pixels (default 2). */
  thickness?: number;
}

export interface RenderedLineChart {
  canvas: Canvas;
  plot: PlotArea;
  xTicks: Ticks;
  yTicks: Ticks;
}

/** The chart drawn on a canvas, with its plot area and axes (for composing or testing). */
export function renderLineChart(spec: LineChartSpec): RenderedLineChart {
  const width = spec.width ?? 640;
  const height = spec.height ?? 400;
  const thickness = spec.thickness ?? 2;
  const finite = spec.series.flatMap((s) => s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)));
  const xs = finite.map(([x]) => x);
  const ys = finite.map(([, y]) => y);
  const xTicks = axisTicks(xs, spec.xMin, spec.xMax, 6);
  const yTicks = axisTicks(ys, spec.yMin, spec.yMax, 6);

  const canvas = new Canvas(width, height);
  const colors = spec.series.map((_, i) => seriesColor(i));
  const legend = layoutLegend(
    spec.series.map((s) => s.name),
    colors,
    width - 2 * PAD,
  );
  const top = PAD + titleHeight(spec.title) + legendHeight(legend) + GAP;
  const lastXLabel = formatTick(xTicks.values[xTicks.values.length - 1] ?? xTicks.max, xTicks.decimals);
  const plot: PlotArea = {
    left: PAD + valueAxisWidth(yTicks, spec.yLabel) + 1,
    top,
    right: width - PAD - Math.ceil(textWidth(lastXLabel) / 2) - 1,
    bottom: height - PAD - TICK_LENGTH - GAP / 2 - textHeight() - (spec.xLabel ? GAP + textHeight() : 0) - 2,
  };
  if (plot.right - plot.left < 20 || plot.bottom - plot.top < 20) {
    throw new RangeError(`lineChart: ${width}×${height} leaves no room for the plot; make the chart larger`);
  }

  drawTitle(canvas, spec.title, PAD);
  drawLegend(canvas, legend, PAD + titleHeight(spec.title));
  const xToPixel = (x: number) => plot.left + ((x - xTicks.min) / (xTicks.max - xTicks.min)) * (plot.right - plot.left);
  for (const v of xTicks.values) {
    const x = Math.round(xToPixel(v));
    canvas.line(x, plot.top, x, plot.bottom, GRID_COLOR);
  }
  drawValueAxis(canvas, plot, yTicks, spec.yLabel);
  canvas.line(plot.left - 1, plot.bottom + 1, plot.right, plot.bottom + 1, AXIS_COLOR);
  for (const v of xTicks.values) {
    const x = Math.round(xToPixel(v));
    canvas.line(x, plot.bottom + 2, x, plot.bottom + 1 + TICK_LENGTH, AXIS_COLOR);
    const label = formatTick(v, xTicks.decimals);
    canvas.text(Math.round(x - textWidth(label) / 2 + 1), plot.bottom + 2 + TICK_LENGTH + GAP / 2, label, TEXT_COLOR);
  }
  if (spec.xLabel) {
    const text = truncateText(spec.xLabel, plot.right - plot.left + 1);
    canvas.text(Math.round((plot.left + plot.right - textWidth(text)) / 2), height - PAD - textHeight(), text, TEXT_COLOR);
  }

  spec.series.forEach((series, i) => {
    const color = colors[i];
    const inRange = (x: number, y: number) => Number.isFinite(x) && Number.isFinite(y);
    const pixel = (x: number, y: number): [number, number] => [xToPixel(x), valueToY(plot, yTicks, y)];
    series.points.forEach(([x, y], k) => {
      if (!inRange(x, y)) return;
      const next = series.points[k + 1];
      const previous = series.points[k - 1];
      const [px, py] = pixel(x, y);
      if (next && inRange(next[0], next[1])) {
        const [nx, ny] = pixel(next[0], next[1]);
        clippedLine(canvas, plot, px, py, nx, ny, color, thickness);
      } else if (!previous || !inRange(previous[0], previous[1])) {
        if (insidePlot(plot, px, py)) canvas.fillRect(Math.round(px) - 1, Math.round(py) - 1, 3, 3, color);
      }
    });
  });
  return { canvas, plot, xTicks, yTicks };
}

/** A line chart as a PNG file. */
export function lineChart(spec: LineChartSpec): Uint8Array {
  return renderLineChart(spec).canvas.toPng();
}

function axisTicks(values: number[], fixedMin: number | undefined, fixedMax: number | undefined, target: number): Ticks {
  const lo = fixedMin ?? (values.length > 0 ? Math.min(...values) : 0);
  const hi = fixedMax ?? (values.length > 0 ? Math.max(...values) : 1);
  const fitted = niceTicks(lo, hi, target);
  if (fixedMin === undefined && fixedMax === undefined) return fitted;
  const fixed = niceTicks(fixedMin ?? fitted.min, fixedMax ?? fitted.max, target, true);
  return fixed;
}

function insidePlot(plot: PlotArea, x: number, y: number): boolean {
  return x >= plot.left - 0.5 && x <= plot.right + 0.5 && y >= plot.top - 0.5 && y <= plot.bottom + 0.5;
}

/** The part of a segment inside the plot area (Liang–Barsky clipping), drawn. */
function clippedLine(canvas: Canvas, plot: PlotArea, x0: number, y0: number, x1: number, y1: number, color: readonly [number, number, number], thickness: number): void {
  let t0 = 0;
  let t1 = 1;
  const dx = x1 - x0;
  const dy = y1 - y0;
  const edges: [number, number][] = [
    [-dx, x0 - plot.left],
    [dx, plot.right - x0],
    [-dy, y0 - plot.top],
    [dy, plot.bottom - y0],
  ];
  for (const [p, q] of edges) {
    if (p === 0) {
      if (q < 0) return;
      continue;
    }
    const r = q / p;
    if (p < 0) t0 = Math.max(t0, r);
    else t1 = Math.min(t1, r);
    if (t0 > t1) return;
  }
  canvas.line(x0 + t0 * dx, y0 + t0 * dy, x0 + t1 * dx, y0 + t1 * dy, color, thickness);
}
