import { describe, expect, it } from 'vitest';
import type { TextReward, TextRewardItem } from '@xyp/contracts';
import { BatchingReward } from './batching-reward';

/** A scorer whose score of an item depends on the item only (its response length), recording each call's batch. */
function recordingScorer(options: { delayMs?: number; fail?: (batch: readonly TextRewardItem[]) => boolean } = {}) {
  const calls: string[][] = [];
  const signals: AbortSignal[] = [];
  const score: TextReward = async (batch, call = {}) => {
    calls.push(batch.map((item) => item.response));
    if (call.signal) signals.push(call.signal);
    if (options.delayMs) await new Promise((resolve) => setTimeout(resolve, options.delayMs));
    call.signal?.throwIfAborted();
    if (options.fail?.(batch)) throw new Error('out of memory');
    return batch.map((item) => item.response.length);
  };
  return { score, calls, signals };
}

const item = (response: string): TextRewardItem => ({ prompt: 'p', response });

describe('BatchingReward', () => {
  it('scores the items of concurrent callers in one call and gives each caller its own scores in order', async () => {
    const scorer = recordingScorer();
    const batching = new BatchingReward(scorer.score, { windowMs: 5, maxBatch: 64 });
    const requests = Array.from({ length: 8 }, (_, i) => [item('x'.repeat(i)), item('y'.repeat(10 + i))]);
    const results = await Promise.all(requests.map((batch) => batching.score(batch)));
    expect(scorer.calls).toHaveLength(1);
    // Shortest first: the scorer pads each forward pass to its longest item.
    expect(scorer.calls[0].map((r) => r.length)).toEqual([...Array.from({ length: 8 }, (_, i) => i), ...Array.from({ length: 8 }, (_, i) => 10 + i)]);
    results.forEach((scores, i) => expect(scores).toEqual([i, 10 + i]));
    expect(batching.stats).toEqual({ calls: 1, items: 16 });
    expect(await batching.score([])).toEqual([]);
  });

  it('splits a request larger than the max batch; a full queue, and what is left queued after a batch, go without waiting for the window', async () => {
    const scorer = recordingScorer();
    const batching = new BatchingReward(scorer.score, { windowMs: 60_000, maxBatch: 4 });
    const batch = Array.from({ length: 10 }, (_, i) => item('z'.repeat(i)));
    const started = performance.now();
    const [first, second] = await Promise.all([batching.score(batch.slice(0, 8)), batching.score(batch.slice(8))]);
    expect(first).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(second).toEqual([8, 9]);
    expect(scorer.calls.map((c) => c.length)).toEqual([4, 4, 2]);
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it('waits up to the window for more callers when the queue is not full', async () => {
    const scorer = recordingScorer();
    const batching = new BatchingReward(scorer.score, { windowMs: 200, maxBatch: 4 });
    const started = performance.now();
    const first = batching.score([item('a')]);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const second = batching.score([item('bb')]);
    expect(await Promise.all([first, second])).toEqual([[1], [2]]);
    expect(scorer.calls).toEqual([['a', 'bb']]);
    expect(performance.now() - started).toBeGreaterThanOrEqual(190);
  });

  it('with window 0 and max batch 1 scores every item alone', async () => {
    const scorer = recordingScorer();
    const batching = new BatchingReward(scorer.score, { windowMs: 0, maxBatch: 1 });
    const results = await Promise.all([batching.score([item('a')]), batching.score([item('bb'), item('ccc')])]);
    expect(results).toEqual([[1], [2, 3]]);
    expect(scorer.calls).toEqual([['a'], ['bb'], ['ccc']]);
  });

  it('drops the queued items of an aborted caller and leaves the others’ scores alone', async () => {
    const scorer = recordingScorer({ delayMs: 100 });
    const batching = new BatchingReward(scorer.score, { windowMs: 1, maxBatch: 64 });
    const first = batching.score([item('running')]);
    await new Promise((resolve) => setTimeout(resolve, 20));
    // Queued behind the running batch: one caller gives up, the other waits.
    const cancel = new AbortController();
    const gone = batching.score([item('abandoned'), item('abandoned too')], { signal: cancel.signal });
    const kept = batching.score([item('kept')]);
    setTimeout(() => cancel.abort(new Error('caller left')), 10);
    await expect(gone).rejects.toThrow('caller left');
    expect(await first).toEqual([7]);
    expect(await kept).toEqual([4]);
    expect(scorer.calls).toEqual([['running'], ['kept']]);
    await expect(batching.score([item('late')], { signal: AbortSignal.abort(new Error('already gone')) })).rejects.toThrow('already gone');
    await batching.whenIdle();
  });

  it('rejects an aborted caller in a running batch at once; the batch goes on for the others and is aborted only when all have left', async () => {
    const scorer = recordingScorer({ delayMs: 150 });
    const batching = new BatchingReward(scorer.score, { windowMs: 5, maxBatch: 64 });
    const cancel = new AbortController();
    const gone = batching.score([item('gone')], { signal: cancel.signal });
    const stays = batching.score([item('stays')]);
    setTimeout(() => cancel.abort(new Error('deadline')), 50);
    const started = performance.now();
    await expect(gone).rejects.toThrow('deadline');
    expect(performance.now() - started).toBeLessThan(140);
    expect(await stays).toEqual([5]);
    expect(scorer.signals[0].aborted).toBe(false);

    const alone = new AbortController();
    const only = batching.score([item('only')], { signal: alone.signal });
    setTimeout(() => alone.abort(new Error('left')), 50);
    await expect(only).rejects.toThrow('left');
    expect(scorer.signals[1].aborted).toBe(true);
    await batching.whenIdle();
  });

  it('fails exactly the requests of the batch whose scorer call failed', async () => {
    const scorer = recordingScorer({ fail: (batch) => batch.some((i) => i.response === 'poison') });
    const batching = new BatchingReward(scorer.score, { windowMs: 5, maxBatch: 2 });
    const a = batching.score([item('poison')]);
    const b = batching.score([item('b')]);
    const c = batching.score([item('c')]);
    await expect(a).rejects.toThrow('out of memory');
    await expect(b).rejects.toThrow('out of memory');
    expect(await c).toEqual([1]);
    expect(scorer.calls).toEqual([['b', 'poison'], ['c']]);
    // A scorer that returns the wrong number of scores fails its batch the same way.
    const short = new BatchingReward(async () => [1], { windowMs: 0 });
    await expect(short.score([item('a'), item('b')])).rejects.toThrow('reward scorer: returned 1 scores for a batch of 2');
  });
});
