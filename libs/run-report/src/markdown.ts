import { formatBytes, formatScalar, figuresOf, type Figure } from './figures';
import { instanceTitle, timeRows, type ArtifactLink, type RunReport } from './report';
import { formatSeconds } from './timing';

const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function table(header: string[], rows: string[][]): string[] {
  return [`| ${header.map(cell).join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((row) => `| ${row.map(cell).join(' | ')} |`), ''];
}

function figure(f: Figure): string[] {
  switch (f.kind) {
    case 'scalars':
      return table(['field', 'value'], f.rows.map(([k, v]) => [k, formatScalar(v)]));
    case 'bars':
    case 'pairs':
      return [`**${f.field}**`, '', ...table(['', 'value'], f.rows.map(([k, v]) => [k, formatScalar(v)]))];
    case 'table':
      return [`**${f.field}**`, '', ...table(f.columns, f.rows.map((row) => row.map(formatScalar)))];
    case 'json':
      return [`**${f.field}**`, '', '```json', JSON.stringify(f.value, null, 2), '```', ''];
  }
}

function artifactRow(link: ArtifactLink, a: { name: string; key: string; size: number }): string[] {
  const href = link(a.key);
  return [href ? `[${a.name}](${href})` : a.name, formatBytes(a.size), `\`${a.key}\``];
}

/** The run report as Markdown: a summary, the plan, the loops, then one section per stage instance. */
export function renderMarkdown(report: RunReport, link: ArtifactLink): string {
  const lines = [`# Run ${report.runId}`, ''];
  lines.push(
    ...table(
      ['', ''],
      [
        ['spec', report.spec.name || '(unnamed)'],
        ...(report.spec.description ? [['description', report.spec.description]] : []),
        ['created', report.createdAt],
        ['closed', report.closedAt],
        ...(report.wallSeconds !== undefined ? [['wall time', formatSeconds(report.wallSeconds)]] : []),
        ['stage instances', String(report.instances.length)],
        ['inputs', report.inputs.map((i) => i.name).join(', ')],
        ...Object.entries(report.models).map(([name, model]) => [`model ${name}`, model.source]),
      ],
    ),
  );
  lines.push('## Plan', '', ...table(['instance', 'needs', 'status'], report.instances.map((i) => [i.id, i.needs.join(', ') || '—', i.status])));
  const times = timeRows(report);
  if (times.length > 0) {
    lines.push('## Time per stage', '', 'Own time from the first start to the end (retries included); wait is queued to started. Branches run in parallel, so shares can add up to more than 100%.', '');
    lines.push(...table(['instance', 'started', 'wait', 'time', 'share of wall', 'attempts'], times.map((t) => [t.id, t.startedAt.slice(11, 19), formatSeconds(t.waitSeconds), formatSeconds(t.runSeconds), t.share === undefined ? '—' : `${(100 * t.share).toFixed(1)}%`, String(t.attempts)])));
  }
  for (const loop of report.loops) {
    lines.push(`## Loop ${loop.name}`, '', `${loop.rounds} round(s) of at most ${loop.maxRounds}. ${loop.stopped ? `Ended: ${loop.stopReason}` : 'Not ended.'}`, '');
    lines.push(...table(['round', 'decider', 'decision', 'reason'], loop.decisions.map((d) => [String(d.round), d.decider, d.continue ? 'continue' : 'stop', d.reason])));
  }
  for (const instance of report.instances) {
    lines.push(`## ${instanceTitle(instance.id)}`, '');
    const where = [`stage \`${instance.stage}\``, ...(instance.loop ? [`round ${instance.round} of loop ${instance.loop}`] : []), `after ${instance.needs.join(', ') || 'nothing'}`];
    lines.push(`${where.join(' · ')} · ${instance.committedAt ? `committed ${instance.committedAt}` : instance.status}`, '');
    for (const f of figuresOf(instance.result)) lines.push(...figure(f));
    if (instance.artifacts.length > 0) lines.push('**artifacts**', '', ...table(['name', 'size', 'key'], instance.artifacts.map((a) => artifactRow(link, a))));
  }
  lines.push('## Inputs', '', ...table(['name', 'size', 'key'], report.artifacts.filter((a) => a.stage === 'input').map((a) => artifactRow(link, a))));
  return `${lines.join('\n').trimEnd()}\n`;
}
