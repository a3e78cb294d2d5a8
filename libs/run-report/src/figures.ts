/**
 * How a stage result becomes figures and tables, whatever the stage: scalars in one table, a map of
 * numbers (sequences per bucket, weights per category) as a bar chart, a list of records (weight
 * changes, a ranking) as a table, anything deeper as JSON.
 */
export type Scalar = string | number | boolean | null;

export type Figure =
  | { kind: 'scalars'; rows: [string, Scalar][] }
  | { kind: 'bars'; field: string; rows: [string, number][] }
  | { kind: 'pairs'; field: string; rows: [string, Scalar][] }
  | { kind: 'table'; field: string; columns: string[]; rows: Scalar[][] }
  | { kind: 'json'; field: string; value: unknown };

const isScalar = (value: unknown): value is Scalar => value === null || ['string', 'number', 'boolean'].includes(typeof value);
const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

export function figuresOf(result: Record<string, unknown>): Figure[] {
  const scalars: [string, Scalar][] = [];
  const figures: Figure[] = [];
  for (const [field, value] of Object.entries(result)) {
    if (isScalar(value)) scalars.push([field, value]);
    else if (Array.isArray(value) && value.every(isScalar)) scalars.push([field, value.join(', ')]);
    else if (isRecord(value) && Object.keys(value).length === 0) scalars.push([field, null]);
    else if (isRecord(value) && field === 'decision' && typeof value.continue === 'boolean') scalars.push([field, `${value.continue ? 'continue' : 'stop'}: ${String(value.reason ?? '')}`]);
    else if (isRecord(value) && Object.keys(value).length > 0 && Object.values(value).every((v) => typeof v === 'number')) {
      figures.push({ kind: 'bars', field, rows: Object.entries(value as Record<string, number>) });
    } else if (isRecord(value) && Object.values(value).every(isScalar)) figures.push({ kind: 'pairs', field, rows: Object.entries(value as Record<string, Scalar>) });
    else if (Array.isArray(value) && value.length > 0 && value.every((row) => isRecord(row) && Object.values(row).every(isScalar))) {
      const rows = value as Record<string, Scalar>[];
      const columns = [...new Set(rows.flatMap((row) => Object.keys(row)))];
      figures.push({ kind: 'table', field, columns, rows: rows.map((row) => columns.map((c) => row[c] ?? null)) });
    } else if (isRecord(value) && Object.values(value).every((v) => isRecord(v) && Object.values(v).every(isScalar))) {
      // A map of records (documents and characters per category): one row per key.
      const entries = Object.entries(value as Record<string, Record<string, Scalar>>);
      const columns = [...new Set(entries.flatMap(([, row]) => Object.keys(row)))];
      figures.push({ kind: 'table', field, columns: ['', ...columns], rows: entries.map(([key, row]) => [key, ...columns.map((c) => row[c] ?? null)]) });
    } else figures.push({ kind: 'json', field, value });
  }
  return scalars.length > 0 ? [{ kind: 'scalars', rows: scalars }, ...figures] : figures;
}

/** A number as a person reads it in a report: integers grouped, ratios to 4 significant digits. */
export function formatScalar(value: Scalar): string {
  if (value === null) return '—';
  if (typeof value === 'number') {
    if (Number.isInteger(value)) return value.toLocaleString('en-US');
    return Math.abs(value) < 1 ? value.toPrecision(4) : value.toFixed(4);
  }
  return String(value);
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}
