/**
 * Text of byte-level token ids (ids below 256 are UTF-8 bytes, the rest special tokens with no
 * text) without a dangling half character: when generation stops inside a multi-byte UTF-8
 * sequence (max_tokens, a stop sequence, end of text), the incomplete tail is left out instead
 * of showing as U+FFFD. Invalid bytes elsewhere are the model's own output and stay U+FFFD.
 */

/** Length of `bytes` without an incomplete UTF-8 sequence at its end. */
export function completeUtf8Length(bytes: Uint8Array): number {
  const n = bytes.length;
  // A sequence is at most 4 bytes: look back over up to 3 continuation bytes for its lead byte.
  for (let back = 1; back <= Math.min(4, n); back++) {
    const byte = bytes[n - back];
    if ((byte & 0xc0) === 0x80) continue; // continuation byte: keep looking for the lead
    const needed = byte >= 0xf0 && byte <= 0xf4 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc2 && byte < 0xe0 ? 2 : 1;
    return needed > back ? n - back : n;
  }
  return n;
}

const decoder = new TextDecoder('utf-8', { fatal: false });

/** The text of a whole response: its bytes decoded, special tokens dropped, an incomplete last character left out. */
export function completeText(ids: ArrayLike<number>): string {
  const bytes: number[] = [];
  for (let i = 0; i < ids.length; i++) if (ids[i] < 256) bytes.push(ids[i]);
  const array = Uint8Array.from(bytes);
  return decoder.decode(array.subarray(0, completeUtf8Length(array)));
}
