import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import type { TextReward } from '@xyp/contracts';
import { RewardModels, type ScoringModel } from './reward-models';

/** A model whose score is a constant per model, so a score tells which model gave it; disposals recorded. */
function fakeModels(delayMs = 0) {
  const disposed: string[] = [];
  const loads: string[] = [];
  const make = (id: string, value: number): ScoringModel => {
    const score: TextReward = async (batch) => {
      if (delayMs) await new Promise((resolve) => setTimeout(resolve, delayMs));
      if (disposed.includes(id)) throw new Error(`${id} used after dispose`);
      return batch.map(() => value);
    };
    return { id, score, contextLength: 48, parameters: 1000 + value, dispose: () => disposed.push(id) };
  };
  const loader = async (id: string): Promise<ScoringModel> => {
    loads.push(id);
    if (id.startsWith('missing')) throw Object.assign(new Error(`checkpoint ${id} not found`), { code: status.NOT_FOUND });
    return make(id, Number(id.split('/')[1] ?? 0));
  };
  return { disposed, loads, loader };
}

describe('RewardModels', () => {
  it('loads by ID once, serves the current model for an empty ID and names what is served for an unknown one', async () => {
    const fake = fakeModels();
    const models = new RewardModels(fake.loader, { now: () => 1_700_000_000_000 });
    expect(() => models.acquire()).toThrow(expect.objectContaining({ code: status.UNAVAILABLE }));
    const [first, again] = await Promise.all([models.load('rm/1', { makeCurrent: true }), models.load('rm/1')]);
    expect(fake.loads).toEqual(['rm/1']);
    expect(first.loaded).toEqual({ model: 'rm/1', version: 1, current: true, loadedAtUnixMs: 1_700_000_000_000, contextLength: 48, parameters: 1001, inFlight: 0, weightsSha256: '' });
    expect(again.loaded.version).toBe(1);
    await models.load('rm/2');
    expect(models.list()).toMatchObject({ current: 'rm/1', models: [{ model: 'rm/1', current: true }, { model: 'rm/2', current: false }] });
    const lease = models.acquire('rm/2');
    expect(await lease.score([{ prompt: 'p', response: 'r' }])).toEqual([2]);
    expect(models.list().models[1].inFlight).toBe(1);
    lease.release();
    lease.release();
    expect(models.list().models[1].inFlight).toBe(0);
    const current = models.acquire();
    expect(current.id).toBe('rm/1');
    current.release();
    expect(() => models.acquire('rm/9')).toThrow('reward model "rm/9" is not served here; this service scores with "rm/1" (current), "rm/2"');
    expect(() => models.unload('rm/1')).toThrow(expect.objectContaining({ code: status.FAILED_PRECONDITION }));
    expect(models.unload('rm/2')).toBe('rm/2');
    await models.drained();
    expect(fake.disposed).toEqual(['rm/2']);
    await expect(models.load('')).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
    await models.close();
    expect(fake.disposed).toEqual(['rm/2', 'rm/1']);
    expect(() => models.acquire()).toThrow(expect.objectContaining({ code: status.UNAVAILABLE }));
  });

  it('swaps the current model under load: calls admitted before finish on the old one, which is disposed only after them', async () => {
    const fake = fakeModels(50);
    const models = new RewardModels(fake.loader);
    await models.load('rm/1', { makeCurrent: true });
    const before = models.acquire();
    const running = before.score([{ prompt: 'p', response: 'r' }]);
    const { previous } = await models.load('rm/2', { makeCurrent: true });
    expect(previous).toBe('rm/1');
    const after = models.acquire();
    expect([before.id, after.id]).toEqual(['rm/1', 'rm/2']);
    expect(fake.disposed).toEqual([]);
    expect(await running).toEqual([1]);
    expect(fake.disposed).toEqual([]);
    before.release();
    await models.drained();
    expect(fake.disposed).toEqual(['rm/1']);
    expect(await after.score([{ prompt: 'p', response: 'r' }])).toEqual([2]);
    after.release();
    expect(() => models.acquire('rm/1')).toThrow(expect.objectContaining({ code: status.NOT_FOUND }));
    // keepPrevious: the old current model stays served by its ID.
    await models.load('rm/3', { makeCurrent: true, keepPrevious: true });
    expect(models.list()).toMatchObject({ current: 'rm/3', models: [{ model: 'rm/2' }, { model: 'rm/3' }] });
    await models.close();
  });

  it('serves a model again that was unloaded while its calls still ran, instead of loading it twice', async () => {
    const fake = fakeModels();
    const models = new RewardModels(fake.loader);
    await models.load('rm/1', { makeCurrent: true });
    await models.load('rm/2');
    const lease = models.acquire('rm/2');
    models.unload('rm/2');
    await models.load('rm/2');
    lease.release();
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(fake.loads).toEqual(['rm/1', 'rm/2']);
    expect(fake.disposed).toEqual([]);
    const again = models.acquire('rm/2');
    expect(again.version).toBe(2);
    again.release();
    await models.close();
    expect(fake.disposed.sort()).toEqual(['rm/1', 'rm/2']);
  });
});
