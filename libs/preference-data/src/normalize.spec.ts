import { describe, expect, it } from 'vitest';
import { normalizeText, pairDigest, pairText, promptKey } from './normalize';

describe('normalizeText', () => {
  it('applies NFKC, collapses whitespace, trims and lower-cases', () => {
    expect(normalizeText('  ＡＢＣ\t\n  Def  ')).toBe('abc def');
    expect(normalizeText('ﬁle')).toBe('file');
  });
});

describe('promptKey and pairDigest', () => {
  it('keeps every prompt turn with its role', () => {
    expect(promptKey([{ role: 'system', content: 'Be  brief' }, { role: 'user', content: 'Hi' }])).toBe('system: be brief\nuser: hi');
  });

  it('gives the same 16-hex digest to pairs that differ only in spacing and case', () => {
    const a = pairDigest(pairText([{ role: 'user', content: 'What is a bond?' }], 'A loan.', 'A stock.'));
    const b = pairDigest(pairText([{ role: 'user', content: ' what  is a BOND? ' }], 'a loan.', 'A   stock.'));
    expect(a).toMatch(/^[0-9a-f]{16}$/);
    expect(b).toBe(a);
    expect(pairDigest(pairText([{ role: 'user', content: 'What is a bond?' }], 'A stock.', 'A loan.'))).not.toBe(a);
  });
});
