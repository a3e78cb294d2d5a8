import { describe, expect, it } from 'vitest';
import type { TextTokenizer } from '@xyp/tokenizer';
import { BYTE_VOCAB_SIZE, ByteTokenizer, SPECIAL_TOKENS } from './tokenizer';

describe('ByteTokenizer', () => {
  const tok = new ByteTokenizer();

  it('is a TextTokenizer: batch encoding with an appended end token, token lookup, decoding with special tokens spelled out', async () => {
    const asInterface: TextTokenizer = tok;
    expect(asInterface).toMatchObject({ name: 'byte', backend: 'js', vocabSize: BYTE_VOCAB_SIZE, eosId: 256, eosToken: '<eot>' });
    const [a, b] = await tok.encodeBatch(['ab', '利率'], { appendId: tok.eosId });
    expect(Array.from(a)).toEqual([97, 98, 256]);
    expect(Array.from(b)).toEqual([...Buffer.from('利率', 'utf8'), 256]);
    expect(Array.from((await tok.encodeBatch(['ab']))[0])).toEqual([97, 98]);
    expect(tok.tokenToId('<assistant>')).toBe(SPECIAL_TOKENS.assistant);
    expect(tok.tokenToId('a')).toBe(97);
    expect(tok.tokenToId('ab')).toBeNull();
    expect(await tok.decode([SPECIAL_TOKENS.user, ...tok.encode('利率?'), SPECIAL_TOKENS.endOfText])).toBe('<user>利率?<eot>');
  });

  it('decodeText drops special tokens; the chat template marks assistant content and its <eot> for training', () => {
    const { ids, trainMask } = tok.encodeChat(
      [
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: 'ok' },
      ],
      true,
    );
    expect(ids).toEqual([258, 104, 105, 256, 259, 111, 107, 256, 259]);
    expect(trainMask).toEqual([0, 0, 0, 0, 0, 1, 1, 1, 0]);
    expect(tok.decodeText(ids)).toBe('hiok');
  });
});
