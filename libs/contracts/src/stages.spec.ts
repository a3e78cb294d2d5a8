import { describe, expect, it } from 'vitest';
import { ArtifactEntry, RunId, STAGES, StageManifest, partJobId, stageJobId, CorpusDocument } from './index';

describe('contracts', () => {
  it('numbers part job ids so that sorting them as strings gives part order', () => {
    // StageWorker's fan-out reads the parts' results back sorted by job id.
    const ids = [0, 2, 10, 99, 100, 12345].map((i) => partJobId('run-abc.corpus.bucket', i));
    expect([...ids].sort()).toEqual(ids);
    expect(ids[2]).toBe('run-abc.corpus.bucket.part-00010');
  });

  it('refuses a manifest with a bad timestamp or run id, and an artifact name that is absolute or has backslashes', () => {
    const entry = { name: 'shards/a.bin', key: 'runs/run-abc/corpus.bucket/objects/x', sha256: 'a'.repeat(64), size: 3 };
    const manifest = { version: 1, runId: 'run-abc', stage: 'corpus.bucket', committedAt: '2026-01-02T03:04:05.000Z', artifacts: [entry], result: {} };
    expect(StageManifest.safeParse(manifest).success).toBe(true);
    expect(StageManifest.safeParse({ ...manifest, committedAt: 'yesterday' }).success).toBe(false);
    expect(StageManifest.safeParse({ ...manifest, runId: 'Run_1' }).success).toBe(false);
    expect(ArtifactEntry.safeParse({ ...entry, name: '/etc/passwd' }).success).toBe(false);
    expect(ArtifactEntry.safeParse({ ...entry, name: 'a\\b' }).success).toBe(false);
    expect(ArtifactEntry.parse(entry).contentType).toBe('application/octet-stream');
  });

  it('rejects run ids that BullMQ cannot use as job id prefixes', () => {
    expect(RunId.safeParse('run-2026-a1').success).toBe(true);
    expect(RunId.safeParse('12345').success).toBe(false);
    expect(RunId.safeParse('run:1').success).toBe(false);
    expect(stageJobId('run-abc', 'corpus.inspect')).toBe('run-abc.corpus.inspect');
  });

  it('rejects a stage payload with an unknown field and names it', () => {
    const parsed = STAGES['corpus.inspect'].payload.safeParse({ runId: 'run-abc', inputKey: 'k', extra: 1 });
    expect(parsed.success).toBe(false);
    expect(JSON.stringify(parsed.error?.issues)).toContain('extra');
  });

  it('reads numeric document ids as strings and refuses empty text', () => {
    expect(CorpusDocument.parse({ id: 7, text: 'x', category: 'news' }).id).toBe('7');
    expect(CorpusDocument.safeParse({ id: 'a', text: '', category: 'news' }).success).toBe(false);
  });
});
