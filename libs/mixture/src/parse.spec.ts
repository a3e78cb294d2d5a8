import { describe, expect, it } from 'vitest';
import { MixtureInputError } from './errors';
import {
  parseLossReport,
  parseMixtureConfig,
  parseWeights,
  validateDocumentIndex,
  validateLossReport,
  validateMixtureConfigInput,
} from './parse';

function errorOf(fn: () => unknown): MixtureInputError {
  try {
    fn();
  } catch (error) {
    if (error instanceof MixtureInputError) return error;
    throw error;
  }
  throw new Error('expected a MixtureInputError');
}

describe('parseLossReport', () => {
  it('reads JSONL lines, skips blank lines, accepts CRLF and drops unknown keys', () => {
    const text = '{"step":0,"category":"news","loss":2.5,"lr":0.001}\r\n\n{"step":10,"category":"news","loss":2.1,"tokens":4096}\n';
    expect(parseLossReport(text)).toEqual([
      { step: 0, category: 'news', loss: 2.5 },
      { step: 10, category: 'news', loss: 2.1, tokens: 4096 },
    ]);
  });

  it('names file and line of malformed JSON', () => {
    const text = '{"step":0,"category":"news","loss":2.5}\n{"step":1,"category":"news",\n';
    const error = errorOf(() => parseLossReport(text, '/tmp/l.jsonl'));
    expect(error.message).toMatch(/^\/tmp\/l\.jsonl:2: not a JSON object/);
    expect(error.line).toBe(2);
  });

  it('rejects a NaN loss written by Python json and names line and category', () => {
    const text = '{"step":0,"category":"news","loss":2.5}\n\n{"step":5,"category":"social","loss":NaN}\n';
    const error = errorOf(() => parseLossReport(text, 'l.jsonl'));
    expect(error.message).toBe('l.jsonl:3: category "social": loss must be a finite number >= 0, got NaN');
    expect(error.category).toBe('social');
  });

  it('rejects infinite and negative losses', () => {
    expect(() => parseLossReport('{"step":0,"category":"a","loss":Infinity}')).toThrow(/losses:1: category "a": loss must be a finite number >= 0, got Infinity/);
    expect(() => parseLossReport('{"step":0,"category":"a","loss":-0.5}')).toThrow(/category "a": loss must be a finite number >= 0, got -0.5/);
  });

  it('rejects a fractional or negative step, an empty category and non-integer tokens', () => {
    expect(() => parseLossReport('{"step":1.5,"category":"a","loss":1}')).toThrow(/step must be an integer >= 0, got 1.5/);
    expect(() => parseLossReport('{"step":-1,"category":"a","loss":1}')).toThrow(/step must be an integer >= 0/);
    expect(() => parseLossReport('{"step":1,"category":"","loss":1}')).toThrow(/category must be a non-empty string/);
    expect(() => parseLossReport('{"step":1,"category":"a","loss":1,"tokens":2.5}')).toThrow(/tokens must be an integer >= 0/);
    expect(() => parseLossReport('{"step":1,"category":"a"}')).toThrow(/losses:1: category "a": loss must be a finite number >= 0, got nothing/);
  });

  it('rejects a line that is JSON but not an object', () => {
    expect(() => parseLossReport('[1,2]')).toThrow(/losses:1: expected a JSON object/);
  });
});

describe('validateLossReport', () => {
  it('names the entry and category of a NaN loss passed in code', () => {
    const error = errorOf(() => validateLossReport([{ step: 0, category: 'news', loss: 1 }, { step: 0, category: 'wiki', loss: Number.NaN }], 'job'));
    expect(error.message).toBe('job:entry 2: category "wiki": loss must be a finite number >= 0, got NaN');
  });
});

describe('parseWeights', () => {
  it('accepts a plain map and the controller output wrapper', () => {
    expect(parseWeights({ a: 1, b: 3 })).toEqual({ a: 1, b: 3 });
    expect(parseWeights({ weights: { a: 0.5, b: 0.5 }, changes: [] })).toEqual({ a: 0.5, b: 0.5 });
  });

  it('rejects negative weights naming the category, and empty or all-zero weights', () => {
    expect(() => parseWeights({ a: 1, b: -1 }, 'w.json')).toThrow(/^w\.json: category "b": a weight must be a finite number >= 0, got -1$/);
    expect(() => parseWeights({}, 'w.json')).toThrow(/no categories/);
    expect(() => parseWeights({ a: 0 }, 'w.json')).toThrow(/positive finite sum/);
    expect(() => parseWeights([0.5, 0.5], 'w.json')).toThrow(/w\.json/);
  });
});

describe('parseMixtureConfig', () => {
  it('fills defaults and rejects unknown keys and contradictory bounds', () => {
    expect(parseMixtureConfig({}).learningRate).toBe(1);
    expect(() => parseMixtureConfig({ learningrate: 2 })).toThrow(/learningrate/);
    expect(() => parseMixtureConfig({ minShare: 0.5, maxShare: 0.2 })).toThrow(/minShare must not exceed maxShare/);
    expect(() => parseMixtureConfig({ smoothing: 2 }, 'c.json')).toThrow(/^c\.json: smoothing/);
  });
});

describe('validateMixtureConfigInput', () => {
  it('returns the config as written, without defaults, and rejects a bad one naming the file', () => {
    expect(validateMixtureConfigInput({ maxStep: 0.05 })).toEqual({ maxStep: 0.05 });
    expect(validateMixtureConfigInput(undefined)).toEqual({});
    expect(() => validateMixtureConfigInput({ maxStep: 0 }, 'c.json')).toThrow(/^c\.json: maxStep/);
  });
});

describe('validateDocumentIndex', () => {
  it('names the bad entry', () => {
    expect(() => validateDocumentIndex([{ category: 'a', bucket: 2048, docIndex: 0, tokens: 0 }])).toThrow(/index:entry 1: tokens/);
  });
});
