import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ZodError } from 'zod';
import { loadModelRegistry, parseModelRegistry, resolveApiKey } from './model-registry';

const dir = mkdtempSync(join(tmpdir(), 'xyp-llm-registry-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const judge = { name: 'judge', baseUrl: 'http://127.0.0.1:8000/v1', model: 'qwen-7b' };

function zodError(fn: () => unknown): ZodError {
  try {
    fn();
  } catch (error) {
    if (error instanceof ZodError) return error;
    throw error;
  }
  throw new Error('expected a ZodError');
}

describe('model registry', () => {
  it('loads a YAML file with defaults filled in', () => {
    const path = join(dir, 'models.yaml');
    writeFileSync(
      path,
      [
        'models:',
        '  - name: judge',
        '    baseUrl: http://vllm:8000/v1',
        '    model: Qwen/Qwen2.5-7B-Instruct',
        '    apiKeyEnv: JUDGE_KEY',
        '    maxConcurrency: 32',
        '    requestsPerMinute: 600',
        '    tokensPerMinute: 400000',
        '    fallback: hosted',
        '    pricePer1M: { input: 0.15, output: 0.6 }',
        '  - name: hosted',
        '    baseUrl: https://api.example.com/v1',
        '    model: gpt-4o-mini',
        '    apiKeyFile: /var/run/secrets/key',
        '    cooldown: { minCalls: 10 }',
      ].join('\n'),
    );
    const registry = loadModelRegistry(path);
    expect(registry.models.map((m) => m.name)).toEqual(['judge', 'hosted']);
    expect(registry.models[0]).toMatchObject({ maxConcurrency: 32, requestsPerMinute: 600, tokensPerMinute: 400000, timeoutMs: 60_000, fallback: 'hosted', pricePer1M: { input: 0.15, output: 0.6 } });
    expect(registry.models[1]).toMatchObject({ maxConcurrency: 16, cooldown: { minCalls: 10, windowMs: 60_000, cooldownMs: 30_000 } });
  });

  it('loads a JSON file', () => {
    const path = join(dir, 'models.json');
    writeFileSync(path, JSON.stringify({ models: [judge] }));
    expect(loadModelRegistry(path).models[0].model).toBe('qwen-7b');
  });

  it('names a file that is not YAML', () => {
    const path = join(dir, 'broken.yaml');
    writeFileSync(path, 'models: [\n  - name: {');
    expect(() => loadModelRegistry(path)).toThrow(`${path}: not valid YAML or JSON: `);
  });

  it('names the model and the field of a bad value', () => {
    const error = zodError(() => parseModelRegistry({ models: [judge, { ...judge, name: 'sampler', maxConcurrency: 0 }] }));
    expect(error.issues[0].path).toEqual(['models', 'sampler', 'maxConcurrency']);
    expect(error.issues[0].message).toMatch(/^model 'sampler', field maxConcurrency: /);
    expect(error.message).toContain("model 'sampler', field maxConcurrency");
    const url = zodError(() => parseModelRegistry({ models: [{ ...judge, baseUrl: 'not a url' }] }));
    expect(url.issues[0].message).toMatch(/^model 'judge', field baseUrl: /);
    const unknown = zodError(() => parseModelRegistry({ models: [{ ...judge, maxConcurrenc: 4 }] }));
    expect(unknown.issues[0].message).toMatch(/model 'judge'.*maxConcurrenc/);
  });

  it('refuses a fallback that does not exist, a cycle, a duplicate name and two key sources', () => {
    expect(zodError(() => parseModelRegistry({ models: [{ ...judge, fallback: 'nope' }] })).issues[0].message).toBe("model 'judge', field fallback: no model named nope (models: judge)");
    const cycle = zodError(() =>
      parseModelRegistry({
        models: [
          { ...judge, name: 'a', fallback: 'b' },
          { ...judge, name: 'b', fallback: 'c' },
          { ...judge, name: 'c', fallback: 'a' },
        ],
      }),
    );
    expect(cycle.issues[0].message).toContain('fallback cycle a → b → c → a');
    expect(zodError(() => parseModelRegistry({ models: [{ ...judge, fallback: 'judge' }] })).issues[0].message).toContain('fallback cycle judge → judge');
    expect(zodError(() => parseModelRegistry({ models: [judge, judge] })).issues[0].message).toContain('a second model named judge');
    expect(zodError(() => parseModelRegistry({ models: [{ ...judge, apiKeyEnv: 'K', apiKeyFile: '/k' }] })).issues[0].message).toContain('not both');
  });

  it('reads the API key from the environment or a file, naming only the variable or path when missing', () => {
    const [model] = parseModelRegistry({ models: [{ ...judge, apiKeyEnv: 'JUDGE_KEY' }] }).models;
    expect(resolveApiKey(model, { JUDGE_KEY: 'sk-env-secret' })).toBe('sk-env-secret');
    expect(() => resolveApiKey(model, {})).toThrow('model judge: environment variable JUDGE_KEY (apiKeyEnv) is not set');
    const keyFile = join(dir, 'key');
    writeFileSync(keyFile, '  sk-file-secret\n');
    const [fromFile] = parseModelRegistry({ models: [{ ...judge, apiKeyFile: keyFile }] }).models;
    expect(resolveApiKey(fromFile, {})).toBe('sk-file-secret');
    const [missing] = parseModelRegistry({ models: [{ ...judge, apiKeyFile: join(dir, 'absent') }] }).models;
    expect(() => resolveApiKey(missing, {})).toThrow(/model judge: cannot read apiKeyFile .*absent \(ENOENT\)/);
    expect(resolveApiKey(parseModelRegistry({ models: [judge] }).models[0], {})).toBeUndefined();
  });
});
