import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TextReward } from '@xyp/contracts';
import { DirectoryResponseCache, startFakeOpenAi, type FakeOpenAi, type LoggedRequest, type ResponseCache } from '@xyp/llm';
import { freePort } from '@xyp/testing';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SynthesisRunError } from './driver';
import { runEnsemble } from './ensemble';
import { readInputs } from './inputs';
import { directoryOutput, type SynthesisOutput } from './output';
import { filesUnder, jsonl, synthesisResponder, tempDir, testGateway } from './spec-support';

const QUERIES = Array.from({ length: 10 }, (_, i) => ({ id: `q${i}`, category: i % 2 ? 'wealth.retirement' : 'banking.services', query: `第${i}个问题：如何理财？` }));
/** Scores by answer text: deterministic, some below 0.3. */
const reward: TextReward = async (batch) => batch.map((item) => (item.response.length * 7 + item.prompt.length) % 10 / 10);

let server: FakeOpenAi;
const made = tempDir('synth-resume');
beforeAll(async () => {
  server = await startFakeOpenAi({ respond: synthesisResponder({ answer: (model, text) => `${model} 的回答：${text}${'。'.repeat(text.length % 3)}` }) });
});
afterAll(async () => {
  await server.close();
  await (await made).remove();
});
beforeEach(() => server.reset());

interface RunOptions {
  out: string;
  url?: string;
  cache?: ResponseCache;
  wrap?: (o: SynthesisOutput) => SynthesisOutput;
  signal?: AbortSignal;
  onChunk?: (chunk: number) => void;
  maxAttempts?: number;
}

async function run(options: RunOptions) {
  const { dir } = await made;
  const input = join(dir, 'queries.jsonl');
  await writeFile(input, jsonl(QUERIES));
  const gateway = testGateway(
    options.url ?? server.url,
    [
      ['a', 'model-a'],
      ['b', 'model-b'],
      ['fuse', 'model-fuse'],
    ],
    { cache: options.cache, maxAttempts: options.maxAttempts },
  );
  const output = directoryOutput(join(dir, options.out));
  try {
    return await runEnsemble(
      readInputs('ensemble', input),
      { models: { ensemble: ['a', 'b'], aggregator: 'fuse' }, selection: { threshold: { absolute: 0.3 } }, chunkSize: 2, concurrency: 3 },
      { gateway, reward, output: options.wrap ? options.wrap(output) : output, signal: options.signal, onProgress: (p) => options.onChunk?.(p.chunk) },
    );
  } finally {
    gateway.close();
  }
}

const read = async (files: { sft: string; outcomes: string }) => ({ sft: await readFile(files.sft, 'utf8'), outcomes: await readFile(files.outcomes, 'utf8') });
/** The query a logged request is about (an answer's user turn, or the fusion's 【用户问题】). */
const queryOf = (r: LoggedRequest) => {
  const last = r.body.messages.at(-1)?.content ?? '';
  return QUERIES.find((q) => last === q.query || last.includes(`【用户问题】\n${q.query}\n`))?.id;
};

describe('crash resume and exactly-once output', () => {
  it('a rerun with the same response cache makes no HTTP call and writes byte-identical outputs', async () => {
    const { dir } = await made;
    const cache = new DirectoryResponseCache(join(dir, 'cache'));
    const first = await run({ out: 'cached-1', cache });
    expect(server.requests).toBeGreaterThan(20);
    server.reset();
    const second = await run({ out: 'cached-2', cache });
    expect(server.requests).toBe(0);
    expect(await read(second.files)).toEqual(await read(first.files));
    expect(second.summary.accounting).toEqual(first.summary.accounting);
    expect(second.summary.gateway['a']).toMatchObject({ answered: 0, cacheHits: 10 });
    // The same output again: every chunk is committed, nothing is asked at all.
    const again = await run({ out: 'cached-1' });
    expect(server.requests).toBe(0);
    expect(again.summary.chunks).toEqual({ chunkSize: 2, total: 5, committedBefore: 5, processed: 0 });
    expect(await read(again.files)).toEqual(await read(first.files));
  });

  it('a crash after two committed chunks: the restart asks only for the uncommitted inputs and ends as an uninterrupted run', async () => {
    const reference = await read((await run({ out: 'uninterrupted' })).files);
    server.reset();
    let commits = 0;
    const crashing = (output: SynthesisOutput): SynthesisOutput => ({
      ...output,
      async commitChunk(chunk) {
        if (++commits > 2) throw new Error('disk gone');
        await output.commitChunk(chunk);
      },
    });
    await expect(run({ out: 'crashed', wrap: crashing })).rejects.toThrow(/ensemble stopped in chunk \d \(4 input\(s\) committed; a rerun on the same output resumes after them\): disk gone/);
    const { dir } = await made;
    const { doneInputIds, chunks } = await directoryOutput(join(dir, 'crashed')).committed();
    expect(chunks.size).toBe(2);
    expect(doneInputIds.size).toBe(4);
    expect((await filesUnder(join(dir, 'crashed'))).filter((f) => f.endsWith('.tmp') || !f.startsWith('parts/'))).toEqual([]);

    server.reset();
    const restarted = await run({ out: 'crashed' });
    const asked = new Set(server.log.map(queryOf));
    expect([...asked].sort()).toEqual(QUERIES.map((q) => q.id).filter((id) => !doneInputIds.has(id)).sort());
    expect(restarted.summary.chunks).toMatchObject({ committedBefore: 2, processed: 3 });
    expect(await read(restarted.files)).toEqual(reference);
  });

  it('an abort after two chunks stops the run with the signal reason; the restart finishes it', async () => {
    const reference = await read((await run({ out: 'abort-reference' })).files);
    const controller = new AbortController();
    let committed = 0;
    const reason = new Error('operator stop');
    await expect(run({ out: 'aborted', signal: controller.signal, onChunk: () => ++committed === 2 && controller.abort(reason) })).rejects.toBe(reason);
    const { chunks } = await directoryOutput(join((await made).dir, 'aborted')).committed();
    expect(chunks.size).toBeGreaterThanOrEqual(2);
    expect(await read((await run({ out: 'aborted' })).files)).toEqual(reference);
  });

  it('an endpoint that is down fails the run after the retries, naming the endpoint, with nothing written', async () => {
    const port = await freePort();
    const started = performance.now();
    const failure = await run({ out: 'down', url: `http://127.0.0.1:${port}`, maxAttempts: 3 }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(SynthesisRunError);
    expect((failure as Error).message).toMatch(new RegExp(`^ensemble stopped in chunk 0 \\(0 input\\(s\\) committed; .*: LLM model [ab] at http://127\\.0\\.0\\.1:${port}/v1 \\(model id model-[ab]\\) failed after 3 attempt\\(s\\); last: connection failed \\(.*ECONNREFUSED`));
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(await filesUnder(join((await made).dir, 'down'))).toEqual([]);
  });
});
