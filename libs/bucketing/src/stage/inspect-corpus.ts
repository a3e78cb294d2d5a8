import type { ResultOf } from '@xyp/contracts';
import { parseCorpusLine } from '../core/documents';
import { toByteSource, type ByteSource } from '../io/byte-source';
import { readLines } from '../io/jsonl';

/** Longer lines are counted as `line-too-long` without being held in memory. */
const MAX_LINE_BYTES = 64 << 20;

/** Blank lines (spaces, tabs, CR only) are skipped, as packing skips them. */
function isBlank(bytes: Uint8Array): boolean {
  return bytes.every((b) => b === 0x20 || b === 0x09 || b === 0x0d);
}

/**
 * corpus.inspect: checks every line of a JSONL corpus (plain or gzip) with the same rules
 * as packing (`parseCorpusLine`), and counts documents and characters per category and
 * rejected lines per reason, streaming the source once (a path is a local file; on the platform,
 * `storeByteSource`). Memory stays bounded by the longest line.
 */
export async function inspectCorpus(
  input: ByteSource | string,
  onProgress?: (bytesRead: number, totalBytes: number) => Promise<void>,
): Promise<ResultOf<'corpus.inspect'>> {
  const source = toByteSource(input);
  const totalBytes = await source.size();
  const result: ResultOf<'corpus.inspect'> = { docs: 0, rejected: 0, chars: 0, categories: {}, rejectReasons: {} };
  let bytesRead = 0;
  for await (const { bytes } of readLines(source, { maxLineBytes: MAX_LINE_BYTES })) {
    bytesRead += (bytes?.length ?? MAX_LINE_BYTES) + 1;
    if (bytes !== null && isBlank(bytes)) continue;
    const parsed = bytes === null ? ({ ok: false, reason: 'line-too-long' } as const) : parseCorpusLine(bytes);
    if (!parsed.ok) {
      result.rejected++;
      result.rejectReasons[parsed.reason] = (result.rejectReasons[parsed.reason] ?? 0) + 1;
      continue;
    }
    const category = (result.categories[parsed.doc.category] ??= { docs: 0, chars: 0 });
    category.docs++;
    category.chars += parsed.doc.text.length;
    result.docs++;
    result.chars += parsed.doc.text.length;
    if (result.docs % 1000 === 0) await onProgress?.(Math.min(bytesRead, totalBytes), totalBytes);
  }
  await onProgress?.(totalBytes, totalBytes);
  return result;
}
