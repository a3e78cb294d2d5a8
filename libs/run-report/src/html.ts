import { formatBytes, formatScalar, figuresOf, type Figure } from './figures';
import { instanceTitle, timeRows, type ArtifactLink, type RunReport } from './report';
import { formatSeconds } from './timing';

/**
 * The run report as one self-contained HTML file: inline CSS and SVG, no script, nothing fetched,
 * so it opens from disk in any browser. Artifacts link by relative path (`link`), or show their key.
 */

const escape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function table(header: string[], rows: string[][], numeric: ReadonlySet<number> = new Set()): string {
  const head = header.map((h) => `<th>${escape(h)}</th>`).join('');
  const body = rows.map((row) => `<tr>${row.map((c, i) => `<td${numeric.has(i) ? ' class="n"' : ''}>${c}</td>`).join('')}</tr>`).join('');
  return `<table><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
}

/** A horizontal bar chart of labelled non-negative numbers, as inline SVG. */
export function barChart(title: string, rows: readonly [string, number][]): string {
  const width = 560;
  const label = 170;
  const bar = 22;
  const max = Math.max(...rows.map(([, v]) => Math.abs(v)), Number.MIN_VALUE);
  const height = rows.length * bar + 8;
  const bars = rows
    .map(([name, value], i) => {
      const y = 4 + i * bar;
      const w = Math.max(1, ((width - label - 90) * Math.abs(value)) / max);
      return (
        `<text x="${label - 6}" y="${y + 15}" text-anchor="end">${escape(name)}</text>` +
        `<rect x="${label}" y="${y + 3}" width="${w.toFixed(1)}" height="${bar - 6}" rx="2"/>` +
        `<text x="${(label + w + 6).toFixed(1)}" y="${y + 15}">${escape(formatScalar(value))}</text>`
      );
    })
    .join('');
  return `<figure><figcaption>${escape(title)}</figcaption><svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escape(title)}">${bars}</svg></figure>`;
}

function figure(f: Figure): string {
  switch (f.kind) {
    case 'scalars':
      return table(['field', 'value'], f.rows.map(([k, v]) => [escape(k), escape(formatScalar(v))]), new Set([1]));
    case 'bars':
      return barChart(f.field, f.rows);
    case 'pairs':
      return `<h4>${escape(f.field)}</h4>${table(['', 'value'], f.rows.map(([k, v]) => [escape(k), escape(formatScalar(v))]), new Set([1]))}`;
    case 'table':
      return `<h4>${escape(f.field)}</h4>${table(f.columns, f.rows.map((row) => row.map((v) => escape(formatScalar(v)))))}`;
    case 'json':
      return `<h4>${escape(f.field)}</h4><pre>${escape(JSON.stringify(f.value, null, 2))}</pre>`;
  }
}

function artifactRow(link: ArtifactLink, a: { name: string; key: string; size: number }): string[] {
  const href = link(a.key);
  return [href ? `<a href="${escape(href)}">${escape(a.name)}</a>` : escape(a.name), escape(formatBytes(a.size)), `<code>${escape(a.key)}</code>`];
}

const STYLE = `
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:64rem;padding:0 1rem;color:#1b1f24}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2.2rem;border-bottom:1px solid #d0d7de;padding-bottom:.2rem}h4{margin:.8rem 0 .3rem}
table{border-collapse:collapse;margin:.4rem 0 1rem}th,td{border:1px solid #d0d7de;padding:.2rem .55rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.n{text-align:right;font-variant-numeric:tabular-nums}code{font-size:.85em;color:#57606a}
.meta{color:#57606a}.ok{color:#1a7f37}.stop{color:#9a6700}figure{margin:.4rem 0 1rem}figcaption{font-weight:600;margin-bottom:.2rem}
svg text{font:12px system-ui,sans-serif;fill:#1b1f24}svg rect{fill:#2f81f7}pre{background:#f6f8fa;padding:.6rem;overflow:auto}
nav a{margin-right:.8rem}`;

/** The run report as HTML (see the module comment). */
export function renderHtml(report: RunReport, link: ArtifactLink): string {
  const anchor = (id: string) => `i-${id.replace(/[^a-z0-9-]/g, '-')}`;
  const parts: string[] = [];
  parts.push(`<h1>Run ${escape(report.runId)}</h1>`);
  parts.push(
    table(
      ['', ''],
      [
        ['spec', escape(report.spec.name || '(unnamed)')],
        ...(report.spec.description ? [['description', escape(report.spec.description)]] : []),
        ['created', escape(report.createdAt)],
        ['closed', escape(report.closedAt)],
        ...(report.wallSeconds !== undefined ? [['wall time', formatSeconds(report.wallSeconds)]] : []),
        ['stage instances', String(report.instances.length)],
        ['inputs', escape(report.inputs.map((i) => i.name).join(', '))],
        ...Object.entries(report.models).map(([name, model]) => [`model ${escape(name)}`, escape(model.source)]),
      ],
    ),
  );
  parts.push(`<nav>${report.instances.map((i) => `<a href="#${anchor(i.id)}">${escape(i.id)}</a>`).join('')}</nav>`);
  parts.push('<h2>Plan</h2>', table(['instance', 'needs', 'status'], report.instances.map((i) => [`<a href="#${anchor(i.id)}">${escape(i.id)}</a>`, escape(i.needs.join(', ') || '—'), escape(i.status)])));
  const times = timeRows(report);
  if (times.length > 0) {
    parts.push('<h2 id="time">Time per stage</h2>', '<p class="meta">Own time from the first start to the end (retries included); wait is queued to started. Branches run in parallel, so shares can add up to more than 100%.</p>');
    parts.push(
      table(
        ['instance', 'started', 'wait', 'time', 'share of wall', 'attempts'],
        times.map((t) => [`<a href="#${anchor(t.id)}">${escape(t.id)}</a>`, escape(t.startedAt.slice(11, 19)), formatSeconds(t.waitSeconds), formatSeconds(t.runSeconds), t.share === undefined ? '—' : `${(100 * t.share).toFixed(1)}%`, String(t.attempts)]),
        new Set([2, 3, 4, 5]),
      ),
    );
    const timed = times.filter((t): t is typeof t & { runSeconds: number } => t.runSeconds !== undefined);
    if (timed.length > 0) parts.push(barChart('seconds per stage instance', timed.map((t) => [t.id, t.runSeconds])));
  }
  for (const loop of report.loops) {
    parts.push(`<h2>Loop ${escape(loop.name)}</h2>`);
    parts.push(`<p>${loop.rounds} round(s) of at most ${loop.maxRounds}. ${loop.stopped ? `<span class="stop">Ended: ${escape(loop.stopReason)}</span>` : 'Not ended.'}</p>`);
    parts.push(table(['round', 'decider', 'decision', 'reason'], loop.decisions.map((d) => [String(d.round), escape(d.decider), d.continue ? '<span class="ok">continue</span>' : '<span class="stop">stop</span>', escape(d.reason)])));
    const moves = loop.decisions
      .map((d) => [d.decider, report.instances.find((i) => i.id === d.decider)?.result.maxWeightChange] as const)
      .filter((row): row is readonly [string, number] => typeof row[1] === 'number');
    if (moves.length > 0) parts.push(barChart('largest weight change per round', moves.map(([id, v]) => [id, v])));
  }
  for (const instance of report.instances) {
    parts.push(`<h2 id="${anchor(instance.id)}">${escape(instanceTitle(instance.id))}</h2>`);
    const where = [`stage <code>${escape(instance.stage)}</code>`, ...(instance.loop ? [`round ${instance.round} of loop ${escape(instance.loop)}`] : []), `after ${escape(instance.needs.join(', ') || 'nothing')}`];
    parts.push(`<p class="meta">${where.join(' · ')} · ${escape(instance.committedAt ? `committed ${instance.committedAt}` : instance.status)}</p>`);
    for (const f of figuresOf(instance.result)) parts.push(figure(f));
    if (instance.artifacts.length > 0) parts.push('<h4>artifacts</h4>', table(['name', 'size', 'key'], instance.artifacts.map((a) => artifactRow(link, a)), new Set([1])));
  }
  parts.push('<h2>Inputs</h2>', table(['name', 'size', 'key'], report.artifacts.filter((a) => a.stage === 'input').map((a) => artifactRow(link, a)), new Set([1])));
  return `<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>Run ${escape(report.runId)}</title><style>${STYLE}</style></head><body>\n${parts.join('\n')}\n</body></html>\n`;
}
