/**
 * Where a long text may be cut so that encoding the pieces one by one and concatenating their ids
 * gives the ids of the whole text. Tokenizers slow down and use about 130 bytes of memory per byte
 * of text on one huge string (measured: a 57 MB text took 73 s and 7.8 GB with the Llama-3
 * binding), so texts longer than a chunk are encoded in chunks cut at these places.
 *
 * The Llama-3 `tokenizer.json` has no normalizer; its pre-tokenizer is a `Split` (behaviour
 * `Isolated`) on
 *
 *     (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 *
 * followed by a byte-level mapping, and BPE then encodes each pre-token on its own. So
 * `ids(a + b) = ids(a) ++ ids(b)` when the split of `a + b` has a boundary at `|a|` and splits each
 * side as `a` and `b` alone are split. The pattern has no look-behind, and its one look-ahead,
 * `\s+(?!\S)`, never ends a match before a non-space; a cut at i (between `text[i-1]` and
 * `text[i]`) is exact when the match that holds `text[i-1]` cannot reach past i. Three rules
 * guarantee that, in order of preference:
 *
 * 1. `text[i-1]` is `\n` and `text[i]` is not whitespace (nor a combining mark): every alternative
 *    that matches a `\n` ends with a run of whitespace or newlines, which stops at `text[i]`.
 * 2. `text[i-1]` is a letter and `text[i]` is a space: every alternative that matches a letter ends
 *    with letters (the space then opens the next pre-token, ` word`).
 * 3. `text[i-1]` is a letter and `text[i]` is one of the CJK marks `，。、；：！？` (Chinese text has
 *    no spaces; `，释放` is one pre-token that starts at the mark), for the same reason.
 *
 * None of these places lies inside one of Llama-3's added tokens (`<|...|>`, matched before the
 * pre-tokenizer), which contain none of these characters.
 *
 * Where a boundary error can still arise (ids near the cut differ from those of the whole text):
 * - a stretch of `maxChars / 2` characters with none of these places (one word or number thousands
 *   of characters long, base64, a run of symbols) is cut at a code-point boundary (`hardCut`), which
 *   can split a pre-token in two;
 * - rules 2 and 3 rely on JavaScript's `\p{L}` agreeing with the tokenizer's regex engine; a letter
 *   newer than the engine's Unicode tables could differ (rule 1 does not look at letters);
 * - another `tokenizer.json`: exact only if its pre-tokenizer also splits at these places, its
 *   normalizer does not look across them, and none of its added tokens contains `\n`, a space or
 *   those marks.
 */

/** The cut chosen for a stretch of text: `end` is exclusive; `rest` when the rest fits, `hard` when no rule applied. */
export interface TextCut {
  end: number;
  rule: 1 | 2 | 3 | 'hard' | 'rest';
}

const LETTER = /^\p{L}$/u;
/** JavaScript's `\s` plus U+0085 (Unicode White_Space that `\s` lacks), and combining marks. */
const NOT_AFTER_NEWLINE = /^[\s\u0085\p{M}]$/u;
const CJK_MARKS = new Set([0xff0c, 0x3002, 0x3001, 0xff1b, 0xff1a, 0xff01, 0xff1f]);

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

function isLowSurrogate(code: number): boolean {
  return code >= 0xdc00 && code <= 0xdfff;
}

/** The code point that ends just before `i`, as a string. */
function charBefore(text: string, i: number): string {
  const low = text.charCodeAt(i - 1);
  if (isLowSurrogate(low) && i >= 2 && isHighSurrogate(text.charCodeAt(i - 2))) return text.slice(i - 2, i);
  return text[i - 1];
}

/** The code point that starts at `i`, as a string. */
function charAt(text: string, i: number): string {
  return String.fromCodePoint(text.codePointAt(i) ?? 0);
}

/** Rule 1 at i: `text[i-1]` is `\n`, `text[i]` is neither whitespace nor a combining mark. */
function newlineCut(text: string, i: number): boolean {
  return text.charCodeAt(i - 1) === 0x0a && !NOT_AFTER_NEWLINE.test(charAt(text, i));
}

/** Rules 2 and 3 at i: a letter before, a space or one of the CJK marks at i. */
function letterCut(text: string, i: number): 2 | 3 | null {
  const next = text.charCodeAt(i);
  const rule = next === 0x20 ? 2 : CJK_MARKS.has(next) ? 3 : null;
  if (rule === null) return null;
  return LETTER.test(charBefore(text, i)) ? rule : null;
}

/**
 * Where to end the chunk of `text` that starts at `start`: the whole rest if it is at most
 * `maxChars` long, else the last place in `(start + maxChars / 2, start + maxChars]` that rule 1
 * allows, else rule 2 or 3, else a code-point boundary at `start + maxChars` (`hard`). Needs the
 * character after the cut, so a caller streaming text must hold at least `maxChars + 1`
 * characters from `start` (or the end of the text) before asking.
 */
export function findCut(text: string, start: number, maxChars: number): TextCut {
  if (!Number.isInteger(maxChars) || maxChars < 2) throw new Error(`maxChars must be an integer of at least 2, got ${maxChars}`);
  const limit = start + maxChars;
  if (text.length <= limit) return { end: text.length, rule: 'rest' };
  const floor = start + Math.floor(maxChars / 2);
  for (let nl = text.lastIndexOf('\n', limit - 1); nl >= floor; nl = nl === 0 ? -1 : text.lastIndexOf('\n', nl - 1)) {
    if (newlineCut(text, nl + 1)) return { end: nl + 1, rule: 1 };
  }
  for (let i = limit; i > floor; i--) {
    const rule = letterCut(text, i);
    if (rule !== null) return { end: i, rule };
  }
  // No safe place: never split a surrogate pair.
  const end = isLowSurrogate(text.charCodeAt(limit)) && isHighSurrogate(text.charCodeAt(limit - 1)) ? limit - 1 : limit;
  return { end, rule: 'hard' };
}

/** Cuts a whole text into chunks of at most `maxChars` characters with `findCut`. */
export function cutText(text: string, maxChars: number): { chunks: string[]; hardCuts: number } {
  const chunks: string[] = [];
  let hardCuts = 0;
  for (let start = 0; start < text.length; ) {
    const cut = findCut(text, start, maxChars);
    if (cut.rule === 'hard') hardCuts++;
    chunks.push(text.slice(start, cut.end));
    start = cut.end;
  }
  return { chunks, hardCuts };
}
