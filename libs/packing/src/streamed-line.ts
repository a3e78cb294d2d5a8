import { parseCorpusLine, type RejectReason } from './documents';

/** What a streamed line turned out to be. */
export type StreamedLineResult =
  | { kind: 'blank' }
  | { kind: 'document'; id: string; category: string }
  | { kind: 'reject'; reason: RejectReason; detail: string; id?: string };

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const SIMPLE_ESCAPES: Record<number, string> = { 0x22: '"', 0x5c: '\\', 0x2f: '/', 0x62: '\b', 0x66: '\f', 0x6e: '\n', 0x72: '\r', 0x74: '\t' };
const TEXT_KEY = [0x74, 0x65, 0x78, 0x74];
const BOM = [0xef, 0xbb, 0xbf];

const enum Mode {
  /** Before the first non-whitespace byte. */
  Start,
  /** Outside strings (copied to the rest). */
  Outside,
  /** In a string other than the text (copied to the rest). */
  String,
  /** In the text string (decoded, not copied). */
  Text,
  /** The verdict is known unless the line is not UTF-8: only UTF-8 is checked from here. */
  Validate,
  /** Not UTF-8: nothing more to check. */
  Done,
}

function isHex(b: number): boolean {
  return (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66);
}

function hexValue(b: number): number {
  return b <= 0x39 ? b - 0x30 : (b | 0x20) - 0x61 + 10;
}

/**
 * One JSONL line read in pieces, for lines too long to hold whole (`PackConfig.streamLineBytes`):
 * the top-level `text` string is decoded as its bytes arrive (`write` returns the text decoded so
 * far), and the rest of the line — the line with the text's characters left out, at most
 * `restBytes` bytes — is kept and checked at `end()` with `parseCorpusLine`, so `id`, `category`
 * and the other fields may come before or after `text`, and a streamed line is accepted or
 * rejected for the same reasons as a buffered one, in the same order: not UTF-8, not JSON, not an
 * object, a field against the schema, a text of only whitespace, a lone surrogate escape.
 *
 * Differences from a buffered line: a second top-level `text` field is rejected
 * (`malformed-json`; `JSON.parse` would keep the last); a line that does not start with `{` is
 * `not-an-object` without being parsed; more than `restBytes` outside the text is `line-too-long`;
 * `malformed-json` details are this reader's, not V8's.
 */
export class StreamedJsonLine {
  /** Bytes written so far. */
  bytes = 0;
  /** UTF-16 code units of text decoded so far. */
  textChars = 0;

  private mode = Mode.Start;
  private depth = 0;
  /** Last byte outside strings that is not whitespace (`"` after a string). */
  private prev = 0;
  private escape = false;
  private key: number[] | null = null;
  private keyTooLong = false;
  private valueIsText = false;
  private textFields = 0;
  private textEscape = 0;
  private hex = 0;
  private pendingHigh = false;
  private loneSurrogate = false;
  private nonWhitespace = false;
  private textSeen = false;
  private blank = true;
  /** Bytes of a UTF-8 byte order mark matched at the start of the line (dropped, as `TextDecoder` does). */
  private bom = 0;
  private rest: Uint8Array[] = [];
  private restSize = 0;
  private failure: { reason: RejectReason; detail: string } | null = null;
  private readonly decoder = new TextDecoder('utf-8', { fatal: true });
  private readonly validator = new TextDecoder('utf-8', { fatal: true });
  private output: string[] = [];

  constructor(private readonly restBytes: number = 1 << 20) {}

  /** True once the line is known to be rejected (the text is then no longer decoded). */
  get doomed(): boolean {
    return this.failure !== null || this.loneSurrogate || this.mode === Mode.Validate || this.mode === Mode.Done;
  }

  /** Reads the next bytes of the line; returns the text they complete (possibly empty). `bytes` is not kept. */
  write(bytes: Uint8Array): string {
    this.bytes += bytes.length;
    this.output = [];
    let i = 0;
    while (i < bytes.length) {
      switch (this.mode) {
        case Mode.Start:
          i = this.start(bytes, i);
          break;
        case Mode.Outside:
        case Mode.String:
          i = this.structure(bytes, i);
          break;
        case Mode.Text:
          i = this.text(bytes, i);
          break;
        case Mode.Validate:
          this.validate(bytes.subarray(i));
          i = bytes.length;
          break;
        case Mode.Done:
          i = bytes.length;
          break;
      }
    }
    const text = this.output.length === 1 ? this.output[0] : this.output.join('');
    this.output = [];
    if (this.doomed) return '';
    this.textChars += text.length;
    return text;
  }

  /** The verdict, once every byte of the line has been written. */
  end(): StreamedLineResult {
    if (this.mode === Mode.Text) {
      this.flushDecoder();
      if (this.mode === Mode.Text) this.fail('malformed-json', 'unterminated text string at the end of the line');
    }
    if (this.mode === Mode.Validate) {
      try {
        this.validator.decode();
      } catch {
        this.mode = Mode.Done;
      }
    }
    if (this.mode === Mode.Done) return { kind: 'reject', reason: 'invalid-utf8', detail: 'line is not valid UTF-8' };
    if (this.failure !== null) return { kind: 'reject', ...this.failure };
    if (this.mode === Mode.Start) {
      return this.blank ? { kind: 'blank' } : { kind: 'reject', reason: 'malformed-json', detail: 'Unexpected end of JSON input' };
    }
    const parsed = parseCorpusLine(this.restLine());
    if (!parsed.ok) return { kind: 'reject', reason: parsed.reason, detail: parsed.detail, ...(parsed.id === undefined ? {} : { id: parsed.id }) };
    const { id, category } = parsed.doc;
    // (Cannot happen for an object the schema accepts: its top-level `text` string is always found.)
    if (this.textFields === 0) return { kind: 'reject', reason: 'missing-text', detail: 'text: not found as a top-level string of the streamed line', id };
    if (!this.nonWhitespace) return { kind: 'reject', reason: 'empty-text', detail: 'text: only whitespace', id };
    if (this.loneSurrogate) return { kind: 'reject', reason: 'invalid-utf8', detail: 'text: lone UTF-16 surrogate escape', id };
    return { kind: 'document', id, category };
  }

  /** The line without the text's characters (the text becomes `"."`, or `""` when empty). */
  private restLine(): Uint8Array {
    const line = new Uint8Array(this.restSize);
    let at = 0;
    for (const part of this.rest) {
      line.set(part, at);
      at += part.length;
    }
    return line;
  }

  private keep(bytes: Uint8Array, from: number, to: number): void {
    if (to <= from || this.mode === Mode.Validate || this.mode === Mode.Done) return;
    this.rest.push(bytes.slice(from, to));
    this.restSize += to - from;
    if (this.restSize > this.restBytes) {
      this.fail('line-too-long', `more than ${this.restBytes} bytes outside the text field of a streamed line`);
    }
  }

  /** Decides the verdict (unless the line turns out not to be UTF-8) and checks only UTF-8 from here. */
  private fail(reason: RejectReason, detail: string): void {
    if (this.mode === Mode.Done || this.mode === Mode.Validate) return;
    this.failure ??= { reason, detail };
    this.mode = Mode.Validate;
    // What was kept has not been checked yet; the text has been.
    for (const part of this.rest) this.validate(part);
    this.rest = [];
    this.restSize = 0;
  }

  private validate(bytes: Uint8Array): void {
    if (this.mode === Mode.Done) return;
    try {
      this.validator.decode(bytes, { stream: true });
    } catch {
      this.mode = Mode.Done;
    }
  }

  private start(bytes: Uint8Array, i: number): number {
    for (; i < bytes.length; i++) {
      const b = bytes[i];
      if (this.bom >= 0 && this.bom < 3) {
        if (b === BOM[this.bom]) {
          this.bom++;
          this.blank = false;
          continue;
        }
        if (this.bom > 0) {
          this.mode = Mode.Done; // The start of a BOM followed by anything else is not UTF-8.
          return bytes.length;
        }
      }
      this.bom = -1;
      if (b === 0x20 || b === 0x09 || b === 0x0d) continue;
      this.blank = false;
      if (b === 0x0a) continue;
      if (b === 0x7b) {
        this.mode = Mode.Outside;
        this.depth = 1;
        this.prev = b;
        this.keep(bytes, i, i + 1);
        return i + 1;
      }
      const value = b === 0x5b || b === QUOTE || b === 0x2d || (b >= 0x30 && b <= 0x39) || b === 0x74 || b === 0x66 || b === 0x6e;
      this.fail(value ? 'not-an-object' : 'malformed-json', value ? `expected a JSON object, got a line starting with ${JSON.stringify(String.fromCharCode(b))}` : `Unexpected token ${JSON.stringify(String.fromCharCode(b))} at the start of the line`);
      this.validate(bytes.subarray(i));
      return bytes.length;
    }
    return i;
  }

  /** Outside strings and in strings other than the text: copied to the rest, watching for the text. */
  private structure(bytes: Uint8Array, i: number): number {
    const from = i;
    for (; i < bytes.length; i++) {
      const b = bytes[i];
      if (this.mode === Mode.String) {
        if (this.escape) {
          this.escape = false;
          this.captureKey(b);
        } else if (b === BACKSLASH) {
          this.escape = true;
          this.captureKey(b);
        } else if (b === QUOTE) {
          this.mode = Mode.Outside;
          this.prev = QUOTE;
          if (this.key !== null) this.endKey(this.key);
        } else {
          this.captureKey(b);
        }
        continue;
      }
      if (b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d) continue;
      if (b === QUOTE) {
        const depthOne = this.depth === 1;
        if (depthOne && (this.prev === 0x7b || this.prev === 0x2c)) {
          this.key = [];
          this.keyTooLong = false;
        } else if (depthOne && this.prev === 0x3a && this.valueIsText) {
          this.valueIsText = false;
          if (++this.textFields > 1) {
            this.keep(bytes, from, i);
            this.fail('malformed-json', 'more than one "text" field in a streamed line');
            this.validate(bytes.subarray(i));
            return bytes.length;
          }
          this.keep(bytes, from, i + 1);
          if (this.mode === Mode.Validate) {
            this.validate(bytes.subarray(i + 1));
            return bytes.length;
          }
          this.mode = Mode.Text;
          return i + 1;
        }
        this.mode = Mode.String;
        continue;
      }
      if (b === 0x2c) this.valueIsText = false;
      if (b === 0x7b || b === 0x5b) this.depth++;
      else if (b === 0x7d || b === 0x5d) this.depth--;
      this.prev = b;
    }
    this.keep(bytes, from, i);
    return i;
  }

  private captureKey(b: number): void {
    if (this.key === null || this.keyTooLong) return;
    if (this.key.length >= 64) {
      this.keyTooLong = true;
      return;
    }
    this.key.push(b);
  }

  private endKey(key: number[]): void {
    this.key = null;
    if (this.keyTooLong) {
      this.valueIsText = false;
      return;
    }
    if (key.length === 4 && key.every((b, i) => b === TEXT_KEY[i])) {
      this.valueIsText = true;
      return;
    }
    if (!key.includes(BACKSLASH)) {
      this.valueIsText = false;
      return;
    }
    try {
      this.valueIsText = JSON.parse(`"${String.fromCharCode(...key)}"`) === 'text';
    } catch {
      this.valueIsText = false;
    }
  }

  /** In the text string: decodes raw UTF-8 runs and escapes. */
  private text(bytes: Uint8Array, i: number): number {
    let run = i;
    for (; i < bytes.length; i++) {
      const b = bytes[i];
      if (this.textEscape > 0) {
        this.escapeByte(b);
        // A failed escape: its byte is checked as UTF-8 too (it may start a multi-byte character).
        if (this.mode !== Mode.Text) return this.afterTextFailure(bytes, i);
        run = i + 1;
        continue;
      }
      if (b === QUOTE) {
        this.decodeRun(bytes, run, i);
        this.flushDecoder();
        if (this.mode !== Mode.Text) return this.afterTextFailure(bytes, i);
        if (this.pendingHigh) this.loneSurrogate = true;
        this.pendingHigh = false;
        this.mode = Mode.Outside;
        this.prev = QUOTE;
        this.rest.push(Uint8Array.from(this.textSeen ? [0x2e, QUOTE] : [QUOTE]));
        this.restSize += this.rest[this.rest.length - 1].length;
        return i + 1;
      }
      if (b === BACKSLASH) {
        this.decodeRun(bytes, run, i);
        this.flushDecoder();
        if (this.mode !== Mode.Text) return this.afterTextFailure(bytes, i);
        this.textEscape = 1;
        run = i + 1;
        continue;
      }
      if (b < 0x20) {
        this.decodeRun(bytes, run, i);
        this.flushDecoder();
        if (this.mode === Mode.Text) this.fail('malformed-json', `Bad control character in string literal (0x${b.toString(16).padStart(2, '0')}) in the text of a streamed line`);
        return this.afterTextFailure(bytes, i);
      }
    }
    this.decodeRun(bytes, run, i);
    return i;
  }

  /** After a failure inside the text: the rest of this write is only checked as UTF-8. */
  private afterTextFailure(bytes: Uint8Array, i: number): number {
    if (this.mode === Mode.Validate) this.validate(bytes.subarray(i));
    return bytes.length;
  }

  private escapeByte(b: number): void {
    if (this.textEscape === 1) {
      const simple = SIMPLE_ESCAPES[b];
      if (simple !== undefined) {
        this.textEscape = 0;
        this.emitUnit(simple.charCodeAt(0), simple);
      } else if (b === 0x75) {
        this.textEscape = 2;
        this.hex = 0;
      } else {
        this.fail('malformed-json', `Bad escaped character ${JSON.stringify(String.fromCharCode(b))} in the text of a streamed line`);
      }
      return;
    }
    if (!isHex(b)) {
      this.fail('malformed-json', 'Bad Unicode escape in the text of a streamed line');
      return;
    }
    this.hex = this.hex * 16 + hexValue(b);
    if (++this.textEscape === 6) {
      this.textEscape = 0;
      this.emitUnit(this.hex, String.fromCharCode(this.hex));
    }
  }

  private emitUnit(code: number, char: string): void {
    if (code >= 0xd800 && code <= 0xdbff) {
      if (this.pendingHigh) this.loneSurrogate = true;
      this.pendingHigh = true;
    } else if (code >= 0xdc00 && code <= 0xdfff) {
      if (!this.pendingHigh) this.loneSurrogate = true;
      this.pendingHigh = false;
    } else {
      if (this.pendingHigh) this.loneSurrogate = true;
      this.pendingHigh = false;
    }
    this.emit(char);
  }

  private decodeRun(bytes: Uint8Array, from: number, to: number): void {
    if (to <= from) return;
    let piece: string;
    try {
      piece = this.decoder.decode(bytes.subarray(from, to), { stream: true });
    } catch {
      this.mode = Mode.Done;
      return;
    }
    if (piece.length === 0) return;
    if (this.pendingHigh) this.loneSurrogate = true;
    this.pendingHigh = false;
    this.emit(piece);
  }

  /** Ends the UTF-8 run before an escape or the closing quote: a partial sequence there is not UTF-8. */
  private flushDecoder(): void {
    if (this.mode === Mode.Done) return;
    try {
      this.decoder.decode();
    } catch {
      this.mode = Mode.Done;
    }
  }

  private emit(piece: string): void {
    this.textSeen = true;
    if (!this.nonWhitespace && /\S/.test(piece)) this.nonWhitespace = true;
    this.output.push(piece);
  }
}
