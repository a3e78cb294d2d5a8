import { PackConfig, type ResultOf } from '@xyp/contracts';
import { type RejectReason, StreamedJsonLine, parseCorpusLine } from '@xyp/packing';
import { toByteSource, type ByteSource } from '../io/byte-source';
import { readLines } from '../io/jsonl';

/**
 * Packing's limits: longer lines are counted as `line-too-long` without being held in memory, and
 * lines over `streamLineBytes` are checked as they are read (`StreamedJsonLine`), not held whole.
 */
const { maxLineBytes: MAX_LINE_BYTES, streamLineBytes: STREAM_LINE_BYTES } = PackConfig.parse({});

/** Blank lines (spaces, tabs, CR only) are skipped, as packing skips them. */
function isBlank(bytes: Uint8Array): boolean {
  return bytes.every((b) => b === 0x20 || b === 0x09 || b === 0x0d);
}

/**
 * corpus.inspect: checks every line of a JSONL corpus (plain or gzip) with the same rules
 * as packing (`parseCorpusLine`), and counts documents and characters per category and
 * rejected lines per reason, streaming the source once (a path is a local file; on the platform,
 * `storeByteSource`). Memory does not grow with line length (long lines are streamed).
 */
export async function inspectCorpus(
  input: ByteSource | string,
  onProgress?: (bytesRead: number, totalBytes: number) => Promise<void>,
): Promise<ResultOf<'corpus.inspect'>> {
  const source = toByteSource(input);
  const totalBytes = await source.size();
  const result: ResultOf<'corpus.inspect'> = { docs: 0, rejected: 0, chars: 0, categories: {}, rejectReasons: {} };
  let bytesRead = 0;
  const streamed: { current: StreamedJsonLine | null } = { current: null };
  const stream = {
    lineBytes: STREAM_LINE_BYTES,
    open: async () => {
      const scanner = new StreamedJsonLine();
      streamed.current = scanner;
      return { write: async (bytes: Uint8Array) => void scanner.write(bytes), abort: async () => undefined };
    },
  };
  for await (const { bytes, streamed: isStreamed } of readLines(source, { maxLineBytes: MAX_LINE_BYTES, stream })) {
    let parsed: { ok: true; category: string; chars: number } | { ok: false; reason: RejectReason };
    if (isStreamed) {
      const scanner = streamed.current;
      if (scanner === null) throw new Error('a streamed line without its reader');
      bytesRead += scanner.bytes + 1;
      const verdict = scanner.end();
      if (verdict.kind === 'blank') continue;
      parsed = verdict.kind === 'document' ? { ok: true, category: verdict.category, chars: scanner.textChars } : { ok: false, reason: verdict.reason };
    } else {
      bytesRead += (bytes?.length ?? MAX_LINE_BYTES) + 1;
      if (bytes !== null && isBlank(bytes)) continue;
      const line = bytes === null ? ({ ok: false, reason: 'line-too-long' } as const) : parseCorpusLine(bytes);
      parsed = line.ok ? { ok: true, category: line.doc.category, chars: line.doc.text.length } : line;
    }
    if (!parsed.ok) {
      result.rejected++;
      result.rejectReasons[parsed.reason] = (result.rejectReasons[parsed.reason] ?? 0) + 1;
      continue;
    }
    const category = (result.categories[parsed.category] ??= { docs: 0, chars: 0 });
    category.docs++;
    category.chars += parsed.chars;
    result.docs++;
    result.chars += parsed.chars;
    if (result.docs % 1000 === 0) await onProgress?.(Math.min(bytesRead, totalBytes), totalBytes);
  }
  await onProgress?.(totalBytes, totalBytes);
  return result;
}
