import { describe, expect, it } from 'vitest';
import { inflateSync } from 'node:zlib';
import { encodePng } from '@xyp/charts';
import { compactPng, escapeHtml, loopHtml, markdownToHtml } from './loop';
import { ciFilterSettings, improveSettings, improveStage, ppoSettings } from './stage-runs';

describe('markdownToHtml', () => {
  it('renders the report subset: headings, aligned tables with escaped pipes, lists, paragraphs', () => {
    const md = [
      '## PEI-RLHF loop',
      '',
      '| round | max \\|Δratio\\| | decision |',
      '|---:|:---:|---|',
      '| 1 | 0.0125 | **continue** <x> |',
      '',
      '- a `note`',
      '- b',
      '',
      'Ended after round 1: x & y',
      'second line',
    ].join('\n');
    const html = markdownToHtml(md);
    expect(html).toContain('<h2>PEI-RLHF loop</h2>');
    expect(html).toContain('<th style="text-align:right">round</th><th style="text-align:center">max |Δratio|</th><th>decision</th>');
    expect(html).toContain('<td style="text-align:right">1</td><td style="text-align:center">0.0125</td><td><strong>continue</strong> &lt;x&gt;</td>');
    expect(html).toContain('<ul><li>a <code>note</code></li><li>b</li></ul>');
    expect(html).toContain('<p>Ended after round 1: x &amp; y<br>second line</p>');
  });

  it('keeps a pipe line without an alignment row as text', () => {
    expect(markdownToHtml('| not a table |')).toBe('<p>| not a table |</p>');
  });
});

describe('loopHtml', () => {
  it('is one self-contained page with the PNGs as base64 data URIs', () => {
    const png = new Uint8Array([137, 80, 78, 71]);
    const html = loopHtml({ title: 'loop <1>', sections: [{ heading: 'rlhf.ppo#round-1', markdown: '# t', images: { 'ppo.png': png } }] });
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).toContain('<title>loop &lt;1&gt;</title>');
    expect(html).toContain(`src="data:image/png;base64,${Buffer.from(png).toString('base64')}"`); // not a PNG: as is
    expect(html).toContain('<h2 class="stage">rlhf.ppo#round-1</h2>');
    expect(html).not.toMatch(/src="(?!data:)/);
  });

  it('escapes quotes for attributes', () => {
    expect(escapeHtml('"a"&')).toBe('&quot;a&quot;&amp;');
  });
});

describe('stage settings', () => {
  it('are the payload defaults, overridden only by defined values', () => {
    const ci = ciFilterSettings({ seed: 7, upper: undefined });
    expect(ci).toMatchObject({ subdomainPrefix: 'finance.', samples: 8, maxTokens: 32, minStd: { quantile: 0.1 }, keepFraction: 0.8, klStart: 0.1, seed: 7 });
    expect(ci).not.toHaveProperty('runId');
    expect(ci).not.toHaveProperty('promptsKey');
    expect(ppoSettings()).toMatchObject({ rounds: 6, promptsPerRound: 8, samplesPerPrompt: 4, klEstimator: 'k1' });
    expect(improveSettings({ maxRounds: 2 }).maxRounds).toBe(2);
    expect(() => ciFilterSettings({ samples: 1 })).toThrow();
  });
});

describe('improveStage', () => {
  it('moves the ratios by the PEI grid, lowers the KL and writes the worker\'s files', () => {
    const wtl = (win: number, tie: number, loss: number) => ({ win, tie, loss, skip: 0, n: win + tie + loss, netWinRate: (win - loss) / (win + tie + loss) });
    const used = { ratios: { 'finance.a': 0.5, 'finance.b': 0.5 }, kl: 0.1 };
    const r = improveStage({
      round: 1,
      evaluation: { bySubdomain: { 'finance.a': wtl(5, 0, 0), 'finance.b': wtl(0, 0, 5) }, overall: wtl(5, 0, 5) },
      used,
      alignment: { 'finance.a': 0.9, 'finance.b': 0.4 },
      history: [{ round: 0, ...used }],
      settings: improveSettings({ maxRounds: 3 }),
    });
    expect(r.result.kl).toBeCloseTo(0.05);
    expect(r.result.ratios['finance.a']).toBeGreaterThan(r.result.ratios['finance.b']);
    expect(Object.keys(r.files).sort()).toEqual(['gains.png', 'history.json', 'improve.json', 'improve.md', 'ratios.json', 'ratios.png']);
    expect(JSON.parse(String(r.files['history.json']))).toHaveLength(2);
    expect(r.rounds).toHaveLength(1);
    // The same round whose measured KL went past evaluation.json's bound: the KL goes up, not down.
    const over = improveStage({
      round: 1,
      evaluation: { bySubdomain: { 'finance.a': wtl(5, 0, 0), 'finance.b': wtl(0, 0, 5) }, overall: { ...wtl(5, 0, 5), kl: 6.84 }, maxKl: 5 },
      used,
      alignment: { 'finance.a': 0.9, 'finance.b': 0.4 },
      history: [{ round: 0, ...used }],
      settings: improveSettings({ maxRounds: 3 }),
    });
    expect(over.result.kl).toBeCloseTo(0.2);
    expect(JSON.parse(String(over.files['ratios.json'])).kl).toBeCloseTo(0.2);
    expect(over.out.kl.reason).toContain('above the bound 5');
  });
});

describe('compactPng', () => {
  const idat = (png: Uint8Array) => {
    const b = Buffer.from(png);
    const parts: Buffer[] = [];
    for (let at = 8; at + 12 <= b.length; ) {
      const n = b.readUInt32BE(at);
      if (b.subarray(at + 4, at + 8).toString('latin1') === 'IDAT') parts.push(b.subarray(at + 8, at + 8 + n));
      at += 12 + n;
    }
    return inflateSync(Buffer.concat(parts));
  };

  it('deflates the pixel data: smaller, the same pixels', () => {
    const png = encodePng(64, 48, new Uint8Array(64 * 48 * 3).fill(200));
    const small = compactPng(png);
    expect(small.length).toBeLessThan(png.length);
    expect(idat(small).equals(idat(png))).toBe(true);
    expect(Buffer.from(small.subarray(0, 8)).equals(Buffer.from(png.subarray(0, 8)))).toBe(true);
  });
});
