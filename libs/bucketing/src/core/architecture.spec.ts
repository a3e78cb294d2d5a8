import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

describe('library layout', () => {
  it('keeps src/core pure: no Node built-ins, no I/O modules, no tokenizer', () => {
    const dir = __dirname;
    const offenders = readdirSync(dir)
      .filter((file) => file.endsWith('.ts') && !file.endsWith('.spec.ts'))
      .flatMap((file) =>
        [...readFileSync(join(dir, file), 'utf8').matchAll(/from '([^']+)'/g)]
          .map((match) => match[1])
          .filter((source) => source.startsWith('node:') || source.startsWith('../io') || source === '@xyp/tokenizer' || /^(fs|path|os|zlib|crypto|stream)$/.test(source))
          .map((source) => `${file} imports ${source}`),
      );
    expect(offenders).toEqual([]);
  });
});
