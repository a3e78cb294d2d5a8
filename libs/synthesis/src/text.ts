/**
 * Text measures the synthesis filters share, for mixed Chinese/English finance text without a
 * word segmenter:
 *
 * - `normalizeText`: NFKC (full-width digits and letters to ASCII), every whitespace run to one
 *   space, trimmed, lower-cased — the form duplicates are judged in.
 * - `contentTokens`: a CJK run (Han, kana, Hangul) gives its character bigrams (a one-character run
 *   gives that character); a Latin/digit run gives one token per word, a decimal number such as
 *   `3.5` being one word. `ETF基金费率0.5%` → `etf`, `基金`, `金费`, `费率`, `0.5`.
 * - `lengthUnits`: CJK characters + Latin/digit words, so a length limit means characters for
 *   Chinese and words for English.
 * - `numbersIn`: the numbers written in Arabic digits, in a canonical form (`1,000.50` → `1000.5`,
 *   `05` → `5`); numbers written in Chinese numerals (三十) are not recognised.
 */

/** One CJK character: Han, Hiragana, Katakana or Hangul. */
const CJK_CHAR = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}]/u;

/**
 * A CJK run, a decimal number, or a run of other letters and digits (not CJK), in that order of
 * preference at each position.
 */
const TOKEN_RUN = /([\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}]+)|(\d+(?:\.\d+)?)|((?:(?![\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}])[\p{L}\p{N}])+)/gu;

/** NFKC, every whitespace run to one space, trimmed, lower-cased. */
export function normalizeText(text: string): string {
  return text.normalize('NFKC').replace(/\s+/g, ' ').trim().toLowerCase();
}

/** Whether `char` (one code point) is a CJK character. */
export function isCjk(char: string): boolean {
  return CJK_CHAR.test(char);
}

/** The runs of `text` (NFKC, lower-cased): `{cjk: true, text}` for a CJK run, else one word. */
function runs(text: string): { cjk: boolean; text: string }[] {
  const out: { cjk: boolean; text: string }[] = [];
  for (const match of text.normalize('NFKC').toLowerCase().matchAll(TOKEN_RUN)) {
    out.push({ cjk: match[1] !== undefined, text: match[0] });
  }
  return out;
}

/** CJK character bigrams and Latin/digit words of `text` (see the module comment), repeats kept. */
export function contentTokens(text: string): string[] {
  const tokens: string[] = [];
  for (const run of runs(text)) {
    if (!run.cjk) {
      tokens.push(run.text);
      continue;
    }
    const chars = [...run.text];
    if (chars.length === 1) tokens.push(chars[0]);
    for (let i = 0; i + 1 < chars.length; i++) tokens.push(chars[i] + chars[i + 1]);
  }
  return tokens;
}

/** CJK characters plus Latin/digit words. */
export function lengthUnits(text: string): number {
  let units = 0;
  for (const run of runs(text)) units += run.cjk ? [...run.text].length : 1;
  return units;
}

/** Code points of `text` other than whitespace: the length of a Chinese analysis. */
export function visibleLength(text: string): number {
  return [...text.replace(/\s+/gu, '')].length;
}

const NUMBER = /\d+(?:,\d{3})*(?:\.\d+)?/g;

/** `1,000.50` → `1000.5`, `05` → `5`, `3.0` → `3`. */
export function canonicalNumber(written: string): string {
  const plain = written.replace(/,/g, '');
  const [whole, fraction = ''] = plain.split('.');
  const integer = whole.replace(/^0+(?=\d)/, '');
  const decimals = fraction.replace(/0+$/, '');
  return decimals.length > 0 ? `${integer}.${decimals}` : integer;
}

/** The canonical numbers written in Arabic digits in `text` (NFKC first), in order, repeats kept. */
export function numbersIn(text: string): string[] {
  return [...text.normalize('NFKC').matchAll(NUMBER)].map((match) => canonicalNumber(match[0]));
}

/**
 * A list marker at the start of a line (`1.`, `2、`, `3)`, `(4)`, `（5）`), not followed by a
 * digit so that `1.5%` stays a number.
 */
const LIST_MARKER = /^[ \t]*(?:\d+[.、)）](?!\d)|[(（]\d+[)）])[ \t]*/gmu;

/** `text` without its line-leading list markers (their numbers are not facts). */
export function withoutListMarkers(text: string): string {
  return text.normalize('NFKC').replace(LIST_MARKER, '');
}

/** Levenshtein distance over code points. */
export function editDistance(a: string, b: string): number {
  const x = [...a];
  const y = [...b];
  let previous = Array.from({ length: y.length + 1 }, (_, j) => j);
  for (let i = 1; i <= x.length; i++) {
    const current = [i];
    for (let j = 1; j <= y.length; j++) {
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x[i - 1] === y[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[y.length];
}
