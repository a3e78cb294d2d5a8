import { describe, expect, it } from 'vitest';
import { objectKey, splitInstanceId, type RunEvent, type StageManifest } from '@xyp/contracts';
import { compileRunSpec, parseRunSpecText, planStep } from '@xyp/planner';
import { buildRunReport, formatSeconds, linksFromStoreKey, linksThrough, renderHtml, renderMarkdown } from './index';

const runId = 'run-report-test';
const plan = compileRunSpec(
  parseRunSpecText(`
name: report-test
inputs: { losses.jsonl: {}, weights.json: {} }
stages:
  - id: corpus.inspect
  - id: corpus.mix#stage-1
loops:
  - { name: round, after: corpus.mix#stage-1, max_rounds: 1, body: [{ stage: corpus.mix, inputs: { weights: previous } }] }
`),
  { runId, inputKeys: { 'corpus.jsonl': objectKey(runId, 'input', 'a'.repeat(64)), 'losses.jsonl': objectKey(runId, 'input', 'b'.repeat(64)), 'weights.json': objectKey(runId, 'input', 'c'.repeat(64)) } },
);

function manifest(id: string, result: Record<string, unknown>): StageManifest {
  const { stage, instance } = splitInstanceId(id);
  const sha = 'd'.repeat(64);
  return { version: 1, runId, stage, ...(instance ? { instance } : {}), committedAt: '2026-12-02T10:00:00.000Z', artifacts: [{ name: 'weights.json', key: objectKey(runId, id, sha), sha256: sha, size: 2048, contentType: 'application/json' }], result };
}

const mix = (go: boolean) => ({ mode: 'cpt', weights: { news: 0.4, finance: 0.6 }, changes: [{ category: 'news', oldWeight: 0.5, newWeight: 0.4, reason: 'learned fast' }], notes: [], maxWeightChange: 0.1, decision: { continue: go, reason: go ? 'moves' : 'settled' } });
const manifests = [
  manifest('corpus.inspect', { docs: 3, rejected: 0, categories: { news: { docs: 3, chars: 90 } }, rejectReasons: {} }),
  manifest('corpus.mix#stage-1', mix(true)),
  manifest('corpus.mix#round-1', mix(true)),
];
const step = planStep(plan, runId, new Map(manifests.map((m) => [m.instance ? `${m.stage}#${m.instance}` : m.stage, m])));
const record = { runId, status: 'running' as const, stages: [], inputName: 'sample', specName: 'report-test', params: {}, createdAt: '2026-12-02T09:59:00.000Z', updatedAt: '2026-12-02T10:00:00.000Z' };
const event = (type: RunEvent['type'], stage: string, instance: string, at: string): RunEvent => ({ id: '', runId, type, stage, instance, at, message: '', done: 0, total: 0, unit: '', attempt: 0 });
const events: RunEvent[] = [
  event('run-queued', 'run', '', '2026-12-02T09:59:00.000Z'),
  event('stage-queued', 'corpus.inspect', '', '2026-12-02T09:59:01.000Z'),
  event('stage-started', 'corpus.inspect', '', '2026-12-02T09:59:03.500Z'),
  event('stage-progress', 'corpus.inspect', '', '2026-12-02T09:59:05.000Z'),
  // A worker died: the second attempt starts later; the time runs from the first start.
  event('stage-started', 'corpus.inspect', '', '2026-12-02T09:59:10.000Z'),
  event('stage-completed', 'corpus.inspect', '', '2026-12-02T09:59:15.500Z'),
  event('stage-queued', 'corpus.mix', 'stage-1', '2026-12-02T09:59:16.000Z'),
  event('stage-started', 'corpus.mix', 'stage-1', '2026-12-02T09:59:16.000Z'),
  event('stage-completed', 'corpus.mix', 'stage-1', '2026-12-02T10:00:01.000Z'),
];
const report = buildRunReport({ record, plan, step, manifests, events, closedAt: '2026-12-02T10:01:00.000Z' });

describe('run report', () => {
  it('has one entry per instance, the loop with its rounds and stop reason, and results by instance id', () => {
    expect(report.instances.map((i) => i.id)).toEqual(['corpus.inspect', 'corpus.mix#stage-1', 'corpus.mix#round-1']);
    expect(report.loops).toEqual([expect.objectContaining({ name: 'round', rounds: 1, stopped: true, stopReason: 'reached max_rounds (1); corpus.mix#round-1 said continue: moves' })]);
    expect(report.stages['corpus.mix#round-1']).toMatchObject({ maxWeightChange: 0.1 });
  });

  it('links artifacts relative to where the report lies in the store, or through a store directory', () => {
    const fromStore = linksFromStoreKey(objectKey(runId, 'pipeline.run', 'e'.repeat(64)));
    expect(fromStore(objectKey(runId, 'corpus.mix#round-1', 'd'.repeat(64)))).toBe(`../../corpus.mix/round-1/objects/${'d'.repeat(64)}`);
    expect(fromStore(`runs/other-run/corpus.mix/objects/${'d'.repeat(64)}`)).toBeUndefined();
    expect(linksThrough('../store')('runs/x/y')).toBe('../store/runs/x/y');
  });

  it('renders Markdown with a section per instance, tables of its figures and linked artifacts', () => {
    const markdown = renderMarkdown(report, linksThrough('../store'));
    expect(markdown).toContain('## corpus.mix#round-1 (corpus.mix, instance round-1)');
    expect(markdown).toContain('| 1 | corpus.mix#round-1 | continue | moves |');
    expect(markdown).toContain(`[weights.json](../store/runs/${runId}/corpus.mix/round-1/objects/${'d'.repeat(64)})`);
    expect(markdown).toContain('| decision | continue: moves |');
    expect(markdown).toContain('| rejectReasons | — |');
  });

  it('renders self-contained HTML: inline style and SVG charts, no script, nothing fetched, text escaped', () => {
    const html = renderHtml({ ...report, spec: { name: 'report-test', description: '<b>bold</b> & more' } }, () => undefined);
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).toContain('<style>');
    expect(html).toContain('<svg xmlns="http://www.w3.org/2000/svg"');
    expect(html).toContain('id="i-corpus-mix-round-1"');
    expect(html).toContain('&lt;b&gt;bold&lt;/b&gt; &amp; more');
    expect(html).not.toMatch(/<script|<link |src=/);
    // Without a link, the key is shown instead.
    expect(html).toContain(`<code>runs/${runId}/corpus.mix/round-1/objects/${'d'.repeat(64)}</code>`);
    expect(html).not.toContain('<a href="runs/');
  });

  it('times each instance from its events: wait from queued to the first start, own time from the first start to the end', () => {
    const inspect = report.instances.find((i) => i.id === 'corpus.inspect')!;
    expect(inspect.timing).toEqual({ queuedAt: '2026-12-02T09:59:01.000Z', startedAt: '2026-12-02T09:59:03.500Z', endedAt: '2026-12-02T09:59:15.500Z', waitSeconds: 2.5, runSeconds: 12, attempts: 2 });
    expect(report.instances.find((i) => i.id === 'corpus.mix#stage-1')!.timing).toMatchObject({ waitSeconds: 0, runSeconds: 45, attempts: 1 });
    // Never started: no timing, and no row in the table.
    expect(report.instances.find((i) => i.id === 'corpus.mix#round-1')!.timing).toBeUndefined();
    expect(report.wallSeconds).toBe(120);
    const markdown = renderMarkdown(report, () => undefined);
    expect(markdown).toContain('| wall time | 2 min 00 s |');
    expect(markdown).toContain('| corpus.inspect | 09:59:03 | 2.5 s | 12.0 s | 10.0% | 2 |');
    expect(markdown).toContain('| corpus.mix#stage-1 | 09:59:16 | 0.0 s | 45.0 s | 37.5% | 1 |');
    expect(markdown).not.toContain('| corpus.mix#round-1 | 0');
    expect(renderHtml(report, () => undefined)).toContain('<h2 id="time">Time per stage</h2>');
  });

  it('formats durations in seconds under a minute, else minutes and seconds', () => {
    expect([formatSeconds(undefined), formatSeconds(0.04), formatSeconds(59.94), formatSeconds(119.6), formatSeconds(725)]).toEqual(['—', '0.0 s', '59.9 s', '2 min 00 s', '12 min 05 s']);
  });
});
