import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { dropPrefix, testPrefix, TEST_REDIS_URL } from '@xyp/testing';
import { RunEvents, RunPlans, RunRegistry } from './index';

describe('run registry and events (real Redis)', () => {
  const prefix = testPrefix('runs');
  let redis: Redis;
  let registry: RunRegistry;
  let events: RunEvents;

  beforeAll(() => {
    redis = new Redis(TEST_REDIS_URL);
    registry = new RunRegistry(redis, prefix);
    events = new RunEvents(redis, prefix);
  });
  afterAll(async () => {
    await dropPrefix(redis, prefix);
    redis.disconnect();
  });

  const record = (runId: string) => ({
    runId,
    status: 'queued' as const,
    stages: ['corpus.inspect'],
    inputName: 'sample',
    createdAt: new Date().toISOString(),
    updatedAt: new Date().toISOString(),
  });

  it('creates a run once and returns the existing one on a second submit', async () => {
    expect((await registry.create(record('run-a'))).created).toBe(true);
    const again = await registry.create({ ...record('run-a'), inputName: 'other' });
    expect(again.created).toBe(false);
    expect(again.record.inputName).toBe('sample');
  });

  it('never moves a run out of a final status', async () => {
    await registry.create(record('run-b'));
    expect((await registry.transition('run-b', 'running')).changed).toBe(true);
    expect((await registry.transition('run-b', 'cancelled')).changed).toBe(true);
    const late = await registry.transition('run-b', 'completed', { reportKey: 'x' });
    expect(late.changed).toBe(false);
    expect(late.record?.status).toBe('cancelled');
    expect(late.record?.reportKey).toBeUndefined();
  });

  it('replays earlier events to a late watcher and ends on the terminal event', async () => {
    await events.publish({ runId: 'run-c', type: 'run-queued', stage: 'pipeline.run' });
    await events.publish({ runId: 'run-c', type: 'stage-started', stage: 'corpus.inspect', attempt: 1 });
    const seen: string[] = [];
    const following = (async () => {
      for await (const event of events.follow('run-c')) seen.push(event.type);
    })();
    await new Promise((r) => setTimeout(r, 100));
    await events.publish({ runId: 'run-c', type: 'run-completed', stage: 'pipeline.run' });
    await following;
    expect(seen).toEqual(['run-queued', 'stage-started', 'run-completed']);
    const after = await events.history('run-c', (await events.history('run-c'))[0].id);
    expect(after.map((e) => e.type)).toEqual(['stage-started', 'run-completed']);
  });
});

describe('run plans (real Redis)', () => {
  const prefix = testPrefix('plans');
  let redis: Redis;
  let plans: RunPlans;
  const plan = { version: 1 as const, name: 'p', description: '', inputs: { 'corpus.jsonl': 'k' }, models: {}, instances: [], loops: [] };

  beforeAll(() => {
    redis = new Redis(TEST_REDIS_URL);
    plans = new RunPlans(redis, prefix);
  });
  afterAll(async () => {
    await dropPrefix(redis, prefix);
    redis.disconnect();
  });

  it('keeps the first plan of a run, and says which call first marked something', async () => {
    expect(await plans.save('run-p', plan)).toBe(true);
    expect(await plans.save('run-p', { ...plan, name: 'other' })).toBe(false);
    expect((await plans.get('run-p'))?.name).toBe('p');
    expect(await plans.active()).toEqual(['run-p']);
    expect(await plans.markQueued('run-p', 'corpus.mix#round-1')).toBe(true);
    expect(await plans.markQueued('run-p', 'corpus.mix#round-1')).toBe(false);
    expect([...(await plans.queued('run-p'))]).toEqual(['corpus.mix#round-1']);
    expect(await plans.mark('run-p', 'loop:round:1:continued', 'why')).toBe(true);
    expect(await plans.mark('run-p', 'loop:round:1:continued', 'again')).toBe(false);
    expect(await plans.marks('run-p')).toEqual({ 'loop:round:1:continued': 'why' });
    await plans.deactivate('run-p');
    expect(await plans.active()).toEqual([]);
    await plans.remove('run-p');
    expect(await plans.get('run-p')).toBeNull();
  });
});
