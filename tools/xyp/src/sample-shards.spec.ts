import { mkdtempSync, mkdirSync, readdirSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openBucketShards } from '@xyp/training-data';
import { SAMPLE_SHARDS, sampleShards } from './sample-shards';

const root = mkdtempSync(join(tmpdir(), 'xyp-sample-shards-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('sampleShards', () => {
  it('builds the shards once for commands started at once: both get the same complete folder, no build folder is left', async () => {
    // A folder an interrupted build left behind (no manifest) is replaced, not read.
    mkdirSync(join(root, SAMPLE_SHARDS, '.shards'), { recursive: true });
    const [a, b] = await Promise.all([sampleShards(() => undefined, root), sampleShards(() => undefined, root)]);
    expect(a).toBe(join(root, SAMPLE_SHARDS));
    expect(b).toBe(a);
    expect(existsSync(join(a, 'manifest.json'))).toBe(true);
    const shards = await openBucketShards(a);
    expect(shards.manifest).not.toBeNull();
    expect(readdirSync(join(root, '.xyp', 'sample-shards')).filter((name) => name.includes('.building-'))).toEqual([]);
    // Built: a third call reads it without building.
    const lines: string[] = [];
    expect(await sampleShards((line) => lines.push(line), root)).toBe(a);
    expect(lines).toEqual([]);
  }, 120_000);
});
