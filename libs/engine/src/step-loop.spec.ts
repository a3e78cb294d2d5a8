import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from './backend';
import { MemorySink, loadTrainer, saveTrainer } from './checkpoint';
import { disposeModel, initParams } from './model';
import { formatDuration, type TrainProgress } from './step-loop';
import { ByteTokenizer } from './tokenizer';
import { Trainer, packDocuments, trainCpt, trainSft, type SftExample, type SftLogState } from './train';

beforeAll(async () => {
  await initBackend();
});

const tok = new ByteTokenizer();
const config = { vocabSize: tok.vocabSize, contextLength: 24, layers: 1, width: 16, heads: 2 };
const rows = packDocuments(
  Array.from({ length: 20 }, (_, i) => tok.encode(`rates ${i} bp`)),
  16,
  tok.eosId,
);

function freshTrainer(seed = 1): Trainer {
  return new Trainer(initParams(config, seed), { lr: 1e-2, warmupSteps: 0, totalSteps: 20 }, seed);
}

function release(trainer: Trainer): void {
  trainer.dispose();
  disposeModel(trainer.model);
}

describe('step-wise training loops', () => {
  it('report progress after every step in units a person reads: step k/N, loss, tokens/s, ETA', async () => {
    const trainer = freshTrainer();
    const reports: TrainProgress[] = [];
    await trainCpt(trainer, rows, { steps: 5, batchSize: 4, totalSteps: 8, label: 'lm', onProgress: (p) => void reports.push(p) });
    expect(reports.map((p) => [p.done, p.total])).toEqual([1, 2, 3, 4, 5].map((k) => [k, 8]));
    for (const p of reports) {
      expect(p.unit).toBe('steps');
      expect(p.tokensPerSecond).toBeGreaterThan(0);
      expect(p.etaSeconds).toBeGreaterThanOrEqual(0);
      expect(p.message).toMatch(/^lm step \d\/8, loss \d+\.\d{4}, lr \d\.\d{2}e[-+]\d+, [\d,]+ tok\/s, ETA \d+s$/);
    }
    expect(formatDuration(54)).toBe('54s');
    expect(formatDuration(245)).toBe('4m05s');
    expect(formatDuration(7380)).toBe('2h03m');
    release(trainer);
  });

  it('serve the event loop between steps: a timer set before the loop fires before it ends', async () => {
    const trainer = freshTrainer();
    const order: string[] = [];
    setTimeout(() => order.push('timer'), 0);
    let steps = 0;
    await trainCpt(trainer, rows, {
      steps: 30,
      batchSize: 4,
      onStep: () => {
        steps += 1;
        if (steps === 30) order.push('last step');
      },
    });
    expect(order).toEqual(['timer', 'last step']);
    release(trainer);
  });

  it('cancel: an abort during a step stops the loop before the next step, rejecting with the reason', async () => {
    const trainer = freshTrainer();
    const cancel = new AbortController();
    let stepsAfterCancel = -1;
    const done = trainCpt(trainer, rows, {
      steps: 50,
      batchSize: 4,
      signal: cancel.signal,
      onStep: (r) => {
        if (r.step === 3) cancel.abort(new Error('cancelled by the test'));
        if (cancel.signal.aborted) stepsAfterCancel += 1;
      },
    });
    await expect(done).rejects.toThrow('cancelled by the test');
    expect(stepsAfterCancel).toBe(0);
    expect(trainer.step).toBe(3);
    // An already aborted signal runs no step at all.
    await expect(trainCpt(trainer, rows, { steps: 5, batchSize: 4, signal: cancel.signal })).rejects.toThrow('cancelled by the test');
    expect(trainer.step).toBe(3);
    release(trainer);
  });

  it('stop: returns after the step in progress; saved and resumed, the run ends bit for bit where an uninterrupted one does', async () => {
    const straight = freshTrainer(5);
    const expected = await trainCpt(straight, rows, { steps: 8, batchSize: 4 });

    const interrupted = freshTrainer(5);
    const stop = new AbortController();
    const first = await trainCpt(interrupted, rows, { steps: 8, batchSize: 4, stop: stop.signal, onStep: (r) => void (r.step === 3 && stop.abort()) });
    expect(first.map((r) => r.step)).toEqual([1, 2, 3]);
    const sink = new MemorySink();
    await saveTrainer(sink, interrupted);
    const resumed = await loadTrainer(sink);
    const totals: number[] = [];
    const rest = await trainCpt(resumed, rows, { steps: 8 - resumed.step, batchSize: 4, totalSteps: 8, onProgress: (p) => void totals.push(p.total) });
    expect(rest.map((r) => r.step)).toEqual([4, 5, 6, 7, 8]);
    expect(totals).toEqual([8, 8, 8, 8, 8]);
    expect([...first, ...rest].map((r) => r.loss)).toEqual(expected.map((r) => r.loss));
    release(straight);
    release(interrupted);
    release(resumed);
  });

  it('SFT: stopped, checkpointed with its log state and resumed, it logs what an uninterrupted run logs', async () => {
    const examples: SftExample[] = [
      { category: 'finance', messages: [{ role: 'user', content: 'rate?' }, { role: 'assistant', content: '5%' }] },
      { category: 'general', messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello' }] },
    ];
    const options = { batchSize: 2, seq: 16, logEvery: 3 };
    const straight = freshTrainer(7);
    const expected = await trainSft(straight, tok, examples, { ...options, steps: 6 });

    const interrupted = freshTrainer(7);
    const stop = new AbortController();
    const logState: SftLogState = {};
    const first = await trainSft(interrupted, tok, examples, { ...options, steps: 6, logState, stop: stop.signal, onStep: (r) => void (r.step === 4 && stop.abort()) });
    const sink = new MemorySink();
    await saveTrainer(sink, interrupted);
    const carried = JSON.parse(JSON.stringify(logState)) as SftLogState;
    const resumed = await loadTrainer(sink);
    const rest = await trainSft(resumed, tok, examples, { ...options, steps: 6 - resumed.step, logState: carried });
    expect([...first.log, ...rest.log]).toEqual(expected.log);
    release(straight);
    release(interrupted);
    release(resumed);
  });
});
