import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { LLAMA3, loadTokenizer, resolveEosToken, resolveTokenizerPath, type TextTokenizer } from './index';

const MIXED = 'The PBOC cut the reserve requirement ratio by 50 basis points. 中国人民银行下调存款准备金率0.5个百分点，释放长期资金约1万亿元。';

describe('Llama-3 tokenizer (native binding)', () => {
  let tokenizer: TextTokenizer;
  beforeAll(async () => {
    tokenizer = await loadTokenizer(LLAMA3);
  });

  it('loads the bundled tokenizer.json with the native backend and its 128,256-token vocabulary', () => {
    expect(resolveTokenizerPath(LLAMA3)).toMatch(/tokenizer-llama3[/\\]models[/\\]tokenizer\.json$/);
    expect(tokenizer.backend).toBe('native');
    expect(tokenizer.vocabSize).toBe(128_256);
    expect(tokenizer.eosToken).toBe('<|end_of_text|>');
    expect(tokenizer.eosId).toBe(128_001);
  });

  it('encodes English and Chinese to the known Llama-3 ids and decodes them back', async () => {
    const [ids] = await tokenizer.encodeBatch(['Hello world, 金融市场的波动性。']);
    expect(Array.from(ids)).toEqual([9906, 1917, 11, 104614, 106075, 108305, 9554, 103682, 28833, 34171, 1811]);
    const [mixed] = await tokenizer.encodeBatch([MIXED]);
    expect(await tokenizer.decode(mixed)).toBe(MIXED);
  });

  it('adds no BOS and appends the requested end-of-document id in the same array', async () => {
    const [plain] = await tokenizer.encodeBatch(['abc']);
    const [withEod] = await tokenizer.encodeBatch(['abc'], { appendId: 128_001 });
    expect(plain[0]).not.toBe(128_000);
    expect(Array.from(withEod)).toEqual([...Array.from(plain), 128_001]);
  });

  it('keeps batch order and gives the same ids as encoding one text at a time', async () => {
    const texts = ['短文本', MIXED, 'x'.repeat(5000), '📈 stocks up'];
    const batch = await tokenizer.encodeBatch(texts);
    for (let i = 0; i < texts.length; i++) expect(batch[i]).toEqual((await tokenizer.encodeBatch([texts[i]]))[0]);
  });
});

describe('pure-JavaScript fallback', () => {
  it('gives the same ids as the native binding for Chinese and English text', async () => {
    const [native, js] = await Promise.all([loadTokenizer(LLAMA3), loadTokenizer(LLAMA3, { backend: 'js' })]);
    expect(js.backend).toBe('js');
    expect(js.vocabSize).toBe(native.vocabSize);
    expect(js.eosId).toBe(native.eosId);
    const texts = [MIXED, '2024年第三季度，公司营业收入同比增长12.5%。Revenue grew 12.5% YoY.'];
    expect(await js.encodeBatch(texts, { appendId: 7 })).toEqual(await native.encodeBatch(texts, { appendId: 7 }));
  });
});

describe('tokenizer.json paths', () => {
  it('accepts a directory holding tokenizer.json and reads eos_token from its tokenizer_config.json', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xyp-tok-'));
    const vocab: Record<string, number> = { a: 0, b: 1, ab: 2, '[UNK]': 3 };
    writeFileSync(
      join(dir, 'tokenizer.json'),
      JSON.stringify({
        version: '1.0',
        added_tokens: [{ id: 4, content: '<stop>', special: true, single_word: false, lstrip: false, rstrip: false, normalized: false }],
        normalizer: null,
        pre_tokenizer: { type: 'Whitespace' },
        post_processor: null,
        decoder: null,
        model: { type: 'WordLevel', vocab, unk_token: '[UNK]' },
      }),
    );
    writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ eos_token: { content: '<stop>' } }));
    const tokenizer = await loadTokenizer(dir);
    expect(tokenizer.vocabSize).toBe(5);
    expect(tokenizer.eosId).toBe(4);
    expect(Array.from((await tokenizer.encodeBatch(['ab a zz']))[0])).toEqual([2, 0, 3]);
  });

  it('fails with one clear message when the file does not exist', async () => {
    await expect(loadTokenizer('/nonexistent/tokenizer.json')).rejects.toThrow('tokenizer file not found: /nonexistent/tokenizer.json');
  });

  it('rejects an explicit EOS token that is not in the vocabulary', () => {
    expect(() => resolveEosToken(() => null, '<nope>', null)).toThrow('not in the tokenizer');
    expect(resolveEosToken((t) => (t === '</s>' ? 2 : null), undefined, null)).toEqual({ token: '</s>', id: 2 });
  });
});
