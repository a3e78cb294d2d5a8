import { describe, expect, it } from 'vitest';
import { objectKey, splitInstanceId, type StageManifest } from '@xyp/contracts';
import { compileRunSpec, parseRunSpecText, planStep } from '@xyp/planner';
import { buildRunReport, linksFromStoreKey, linksThrough, renderHtml, renderMarkdown } from './index';

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
const report = buildRunReport({ record, plan, step, manifests, closedAt: '2026-12-02T10:01:00.000Z' });

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
});
