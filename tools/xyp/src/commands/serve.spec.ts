import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import OpenAI from 'openai';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';

const root = resolve(__dirname, '../../../..');
const bin = join(root, 'tools/xyp/bin/xyp.js');
const dir = mkdtempSync(join(tmpdir(), 'xyp-cli-serve-'));
const env = { ...process.env, XYP_STORE: 'local', XYP_STORE_DIR: join(dir, 'store') };
const children: ChildProcessWithoutNullStreams[] = [];

afterAll(() => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

function xyp(args: string[]): ChildProcessWithoutNullStreams {
  const child = spawn(process.execPath, [bin, ...args], { cwd: root, env });
  children.push(child);
  return child;
}

/** Runs xyp to completion: exit code, stdout, stderr. */
function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = xyp(args);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((done) => child.on('close', (code) => done({ code, stdout, stderr })));
}

/** The first stdout line of a long-running xyp, parsed as JSON. */
function firstLine(child: ChildProcessWithoutNullStreams): Promise<unknown> {
  return new Promise((done, fail) => {
    let out = '';
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const newline = out.indexOf('\n');
      if (newline >= 0) done(JSON.parse(out.slice(0, newline)));
    });
    child.on('close', (code) => fail(new Error(`xyp exited ${code} before its ready line: ${err}`)));
  });
}

describe('xyp train lm and xyp serve', () => {
  it('trains a checkpoint into the store, serves it to the openai client, and stops cleanly on SIGINT', async () => {
    const corpus = join(dir, 'corpus.jsonl');
    writeFileSync(corpus, Array.from({ length: 8 }, (_, i) => JSON.stringify({ id: `d${i}`, text: `bond yields rose ${i} bp`, category: 'news' })).join('\n'));
    const trained = await run(['train', 'lm', '--input', corpus, '--steps', '3', '--layers', '1', '--width', '16', '--heads', '2', '--context', '32', '--batch', '2', '--run-id', 'cli-lm', '--json']);
    expect(trained.code, trained.stderr).toBe(0);
    const result = JSON.parse(trained.stdout) as { checkpoint: string; steps: number; finalLoss: number };
    expect(result).toMatchObject({ checkpoint: 'cli-lm/engine.lm', steps: 3 });
    expect(Number.isFinite(result.finalLoss)).toBe(true);

    const server = xyp(['serve', '--checkpoint', result.checkpoint, '--port', '0', '--model-name', 'cli-model', '--json']);
    const ready = (await firstLine(server)) as { url: string; model: string };
    expect(ready.model).toBe('cli-model');
    const client = new OpenAI({ baseURL: ready.url, apiKey: 'not-checked', maxRetries: 0 });
    expect((await client.models.list()).data.map((m) => m.id)).toEqual(['cli-model']);
    const chat = await client.chat.completions.create({ model: 'cli-model', messages: [{ role: 'user', content: 'yields?' }], max_tokens: 6, seed: 5 });
    expect(chat.choices[0].message.role).toBe('assistant');
    expect(chat.usage?.completion_tokens).toBeLessThanOrEqual(6);

    const exit = new Promise<number | null>((done) => server.on('close', (code) => done(code)));
    server.kill('SIGINT');
    expect(await exit).toBe(0);
  });

  it('refuses a checkpoint that is not in the store, naming it', async () => {
    const missing = await run(['serve', '--checkpoint', 'cli-none/engine.lm', '--port', '0']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/xyp: checkpoint cli-none\/engine.lm not found in local:/);
  });

  it('prints the Megatron PyTorchJob for --engine cluster --dry-run', async () => {
    const printed = await run(['train', 'lm', '--engine', 'cluster', '--dry-run', '--run-id', 'cli-cpt', '--data-path', 'shards/2048/a,shards/2048/b', '--tokenizer', 'tok', '--image', 'img:1', '--context', '2048', '--steps', '10']);
    expect(printed.code, printed.stderr).toBe(0);
    const [job] = parseAllDocuments(printed.stdout).map((d) => d.toJSON() as { kind: string; spec: { pytorchReplicaSpecs: { Master: { template: { spec: { containers: { command: string[] }[] } } } } } });
    expect(job.kind).toBe('PyTorchJob');
    const command = job.spec.pytorchReplicaSpecs.Master.template.spec.containers[0].command;
    expect(command.slice(command.indexOf('--data-path') + 1, command.indexOf('--data-path') + 3)).toEqual(['/data/shards/2048/a', '/data/shards/2048/b']);
    expect(command[command.indexOf('--seq-length') + 1]).toBe('2048');
  });
});
