/**
 * Line-by-line reading of JSONL inputs without holding a file in memory: lines of any length,
 * UTF-8 decoded across chunk boundaries, CRLF and a leading BOM tolerated.
 */
import { createReadStream } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';

/**
 * Every line of a byte or text stream (a Node `Readable`, or any async iterable of chunks), without
 * its `\n` or `\r\n`. Blank lines are yielded too, so that the n-th value is line n; consumers skip them.
 */
export async function* linesOf(stream: AsyncIterable<Buffer | Uint8Array | string>): AsyncGenerator<string> {
  const decoder = new StringDecoder('utf8');
  let pending: string[] = [];
  let first = true;
  const finish = (tail: string): string => {
    let line = pending.length === 0 ? tail : pending.join('') + tail;
    pending = [];
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (first) {
      first = false;
      if (line.startsWith('\uFEFF')) line = line.slice(1);
    }
    return line;
  };
  for await (const chunk of stream) {
    const text = typeof chunk === 'string' ? chunk : decoder.write(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
    let start = 0;
    for (let newline = text.indexOf('\n'); newline !== -1; newline = text.indexOf('\n', start)) {
      yield finish(text.slice(start, newline));
      start = newline + 1;
    }
    if (start < text.length) pending.push(text.slice(start));
  }
  const rest = decoder.end();
  if (rest !== '') pending.push(rest);
  if (pending.length > 0) yield finish('');
}

/** Every line of a file (see `linesOf`); a file that cannot be read fails with its path and the error code. */
export async function* readLines(path: string): AsyncGenerator<string> {
  try {
    yield* linesOf(createReadStream(path));
  } catch (error) {
    const code = typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : undefined;
    if (code === undefined) throw error;
    throw new Error(`cannot read ${path}: ${code}`, { cause: error });
  }
}
