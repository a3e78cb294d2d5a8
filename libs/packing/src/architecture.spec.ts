import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

// Lint holds this library's boundary (type:algorithm in eslint.config.mjs: no I/O lib, no Node
// built-in); this is the second line, an allowlist that does not depend on the Nx project graph.
const ALLOWED = ['@xyp/contracts', '@xyp/random', 'zod'];

describe('library layout', () => {
  it('imports only its own files, @xyp/contracts, @xyp/random and zod outside tests', () => {
    const offenders = readdirSync(__dirname)
      .filter((file) => file.endsWith('.ts') && !file.endsWith('.spec.ts'))
      .flatMap((file) =>
        [...readFileSync(join(__dirname, file), 'utf8').matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|\brequire\s*\(\s*|^import\s+)['"]([^'"]+)['"]/gm)]
          .map((match) => match[1])
          .filter((source) => !source.startsWith('./') && !ALLOWED.includes(source))
          .map((source) => `${file} imports ${source}`),
      );
    expect(offenders).toEqual([]);
  });
});
