import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UnrecoverableError } from 'bullmq';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalDirectoryStore } from '@xyp/storage';
import { failForGoodIf, readStageJson } from './stage-inputs';

const dir = mkdtempSync(join(tmpdir(), 'xyp-stage-inputs-'));
const store = new LocalDirectoryStore(dir);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('stage inputs', () => {
  it('reads committed JSON, fails for good on a body that is not JSON, and lets a store error through', async () => {
    const good = await store.putObject('run-a', 'corpus.mix', 'weights.json', '{"a": 1}');
    const bad = await store.putObject('run-a', 'corpus.mix', 'broken.json', '{"a": ');
    expect(await readStageJson(store, good.key, 'weights')).toEqual({ a: 1 });
    const error = await readStageJson(store, bad.key, 'weights').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnrecoverableError);
    expect((error as Error).message).toMatch(new RegExp(`^weights: ${bad.key} is not JSON: `));
    const missing = await readStageJson(store, 'runs/run-a/corpus.mix/objects/nope', 'weights').catch((e: unknown) => e);
    expect(missing).not.toBeInstanceOf(UnrecoverableError);
  });

  it('turns only the errors the predicate names into UnrecoverableError, keeping the message', async () => {
    const input = await failForGoodIf(() => Promise.reject(new Error('spec: steps: bad')), (e) => e instanceof Error && e.message.startsWith('spec: ')).catch((e: unknown) => e);
    expect(input).toBeInstanceOf(UnrecoverableError);
    expect((input as Error).message).toBe('spec: steps: bad');
    const transient = await failForGoodIf(() => Promise.reject(new Error('ECONNRESET')), (e) => e instanceof Error && e.message.startsWith('spec: ')).catch((e: unknown) => e);
    expect(transient).not.toBeInstanceOf(UnrecoverableError);
    expect(await failForGoodIf(async () => 7, () => true)).toBe(7);
  });
});
