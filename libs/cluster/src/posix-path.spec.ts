import { posix } from 'node:path';
import { describe, expect, it } from 'vitest';
import { joinPosix } from './posix-path';

describe('joinPosix', () => {
  it('joins as path.posix.join does', () => {
    const cases: string[][] = [
      ['/data', 'shards/a'],
      ['/data/', './shards//a/'],
      ['/data', 'checkpoints', 'run-1', 'cpt'],
      ['/opt/megatron-lm', 'pretrain_gpt.py'],
      ['/data', '../etc'],
      ['/', '..', '..', 'x'],
      ['data', '..', '..', 'x'],
      ['a', '', 'b'],
      ['', ''],
      ['.', '.'],
      ['/'],
      ['a/b/..', '../..'],
    ];
    for (const parts of cases) expect(joinPosix(...parts), parts.join(' + ')).toBe(posix.join(...parts));
  });
});
