import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { ByteTokenizer, disposeModel, initBackend, initParams } from '@xyp/engine';
import { rewardForward } from './reward-model';
import { rewardSequence, scoreSequences, textRewardScorer } from './scoring';

beforeAll(async () => {
  await initBackend();
});

const tok = new ByteTokenizer();

describe('in-process reward scoring (the batched TextReward)', () => {
  it('scores each item as the prompt in the chat template plus the response and <eot>, in order, batch by batch', async () => {
    const model = initParams({ vocabSize: tok.vocabSize, contextLength: 40, layers: 1, width: 16, heads: 2, lmHead: false, valueHead: true }, 3);
    const items = Array.from({ length: 9 }, (_, i) => ({ prompt: `rate ${i}?`, response: 'x'.repeat(1 + i), category: 'finance' }));
    expect(rewardSequence(tok, 'hi', 'ok')).toEqual([258, 104, 105, 256, 259, 111, 107, 256]);
    const alone = items.map((item) => tf.tidy(() => rewardForward(model, [rewardSequence(tok, item.prompt, item.response)]).r.dataSync()[0]));
    const scores = await textRewardScorer(model, tok, { batchSize: 4 })(items);
    expect(scores).toHaveLength(9);
    scores.forEach((s, i) => expect(s).toBeCloseTo(alone[i], 4));
    expect(new Set(scores.map((s) => s.toFixed(6))).size).toBeGreaterThan(1);
    expect(await textRewardScorer(model, tok)([])).toEqual([]);
    disposeModel(model);
  });

  it('keeps the last contextLength tokens of a long sequence, stops on abort, and refuses a model without a value head', async () => {
    const model = initParams({ vocabSize: 12, contextLength: 4, layers: 1, width: 8, heads: 2, lmHead: false, valueHead: true }, 4);
    const [long] = await scoreSequences(model, [[9, 9, 9, 1, 2, 3, 4]]);
    const [tail] = await scoreSequences(model, [[1, 2, 3, 4]]);
    expect(long).toBeCloseTo(tail, 6);
    const cancel = new AbortController();
    cancel.abort(new Error('stop scoring'));
    await expect(scoreSequences(model, [[1, 2]], { signal: cancel.signal })).rejects.toThrow('stop scoring');
    const lm = initParams({ vocabSize: 12, contextLength: 4, layers: 1, width: 8, heads: 2 }, 5);
    await expect(scoreSequences(lm, [[1]])).rejects.toThrow(/no value head/);
    disposeModel(model);
    disposeModel(lm);
  });
});
