/**
 * Verifiable answers: a prompt that carries a reference answer is labelled by checking each
 * response against it. A numeric reference (`42`, `"1,250.5"`, `"12.5%"`, `"3万"`) is compared with
 * the response's answer number (its last number, or any number) under a relative tolerance; any
 * other reference by normalized exact match (NFKC, case, whitespace and punctuation ignored) of the
 * whole response or of its last line (an `Answer:` / `答案：` prefix dropped).
 */

export interface ExtractedNumber {
  value: number;
  /** Written with `%` (then `value / 100` is also a reading of it). */
  percent: boolean;
  text: string;
}

export interface VerifyOptions {
  /** |x − r| ≤ relTol · |r| counts as equal. Default 1e-4. */
  relTol?: number;
  /** Floor of the tolerance, for a reference of 0. Default 1e-9. */
  absTol?: number;
  /** Which number of a response is its answer: the last one (default) or any. */
  answer?: 'last' | 'any';
}

const NUMBER = /(?<![\p{L}\d.])([-−+]?)(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|\.\d+)\s*(%|％|万|亿)?/gu;
const SCALE: Record<string, number> = { 万: 1e4, 亿: 1e8 };

/** Every number written in a text, in order. */
export function extractNumbers(text: string): ExtractedNumber[] {
  const out: ExtractedNumber[] = [];
  for (const m of text.matchAll(NUMBER)) {
    const sign = m[1] === '-' || m[1] === '−' ? -1 : 1;
    const magnitude = Number(m[2].replace(/,/g, ''));
    if (!Number.isFinite(magnitude)) continue;
    const suffix = m[3];
    out.push({ value: sign * magnitude * (suffix ? (SCALE[suffix] ?? 1) : 1), percent: suffix === '%' || suffix === '％', text: m[0].trim() });
  }
  return out;
}

/** The number a reference is, when it is one number and nothing else. */
export function numericReference(reference: string | number): ExtractedNumber | undefined {
  if (typeof reference === 'number') return { value: reference, percent: false, text: String(reference) };
  const found = extractNumbers(reference);
  if (found.length !== 1) return undefined;
  // A currency sign or unit around the number is allowed (`$42`, `42 元`).
  const rest = reference.replace(found[0].text, '').replace(/[\s$¥￥€£元]/g, '');
  return rest === '' ? found[0] : undefined;
}

function readings(n: ExtractedNumber): number[] {
  return n.percent ? [n.value / 100, n.value] : [n.value];
}

export function numbersMatch(x: ExtractedNumber, reference: ExtractedNumber, options: VerifyOptions = {}): boolean {
  const relTol = options.relTol ?? 1e-4;
  const absTol = options.absTol ?? 1e-9;
  return readings(x).some((a) => readings(reference).some((r) => Math.abs(a - r) <= Math.max(relTol * Math.abs(r), absTol)));
}

export function normalizeAnswer(text: string): string {
  return text.normalize('NFKC').toLowerCase().replace(/[\s\p{P}\p{S}]+/gu, '');
}

const ANSWER_PREFIX = /^(?:final answer|answer|答案|最终答案)\s*[:：]\s*/i;

export interface Verification {
  correct: boolean;
  /** What was compared: the number read, or the normalized text. */
  answer: string | null;
}

/** Whether `response` answers `reference`. */
export function verifyAnswer(response: string, reference: string | number, options: VerifyOptions = {}): Verification {
  const ref = numericReference(reference);
  if (ref) {
    const numbers = extractNumbers(response);
    if (numbers.length === 0) return { correct: false, answer: null };
    if ((options.answer ?? 'last') === 'last') {
      const last = numbers[numbers.length - 1];
      return { correct: numbersMatch(last, ref, options), answer: last.text };
    }
    const hit = numbers.find((n) => numbersMatch(n, ref, options));
    return { correct: hit !== undefined, answer: (hit ?? numbers[numbers.length - 1]).text };
  }
  const want = normalizeAnswer(String(reference));
  const whole = normalizeAnswer(response);
  const lines = response.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '');
  const lastLine = lines.length > 0 ? normalizeAnswer(lines[lines.length - 1].replace(ANSWER_PREFIX, '')) : '';
  const correct = want !== '' && (whole === want || lastLine === want);
  return { correct, answer: correct ? want : lastLine || whole };
}
