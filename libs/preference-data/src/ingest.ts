/**
 * The preference ingest: lines from any number of inputs → parsed, validated, de-duplicated
 * (exact, then near) and split records, streamed to callbacks, with the counts of everything seen.
 * Every non-blank line ends either in `onRecord` or in `onReject`, so accepted + rejected = lines.
 */
import { z } from 'zod';
import { type PreferenceRecord, PreferencePhase, PreferenceSet } from '@xyp/contracts';
import { NearDuplicateIndex, minHasher } from '@xyp/minhash';
import { type PreferenceDefaults, parsePreferenceLine } from './formats';
import { readLines } from './lines';
import { type DuplicateOf, type PreferenceReject, type RejectReason, emptyReasonCounts } from './rejects';
import { type Split, splitOf } from './split';

/** One named input: `name` (usually the path) is what rejects and provenance cite. */
export interface PreferenceInput {
  name: string;
  lines: AsyncIterable<string>;
}

/** Progress so far, across all inputs. */
export interface IngestProgress {
  /** Non-blank lines read. */
  lines: number;
  /** UTF-8 bytes read, newlines included. */
  bytes: number;
  accepted: number;
  rejected: number;
}

/** Records by set, category and phase. */
export interface RecordBreakdown {
  bySet: Record<string, number>;
  byCategory: Record<string, number>;
  byPhase: Record<string, number>;
}

/** What an ingest saw. `lines` = `accepted` + `rejected.total`; `train` + `test` = `accepted`. */
export interface IngestCounts extends RecordBreakdown {
  lines: number;
  /** Blank lines (skipped; still counted in line numbers). */
  blankLines: number;
  bytes: number;
  accepted: number;
  rejected: { total: number; byReason: Record<RejectReason, number> };
  duplicates: { exact: number; near: number };
  train: number;
  test: number;
  /** The set/category/phase breakdown of each split. */
  splits: Record<Split, RecordBreakdown>;
}

/** Settings of an ingest (callbacks aside). */
export const IngestSettings = z.object({
  defaults: z.object({ set: PreferenceSet.optional(), category: z.string().min(1).optional(), phase: PreferencePhase.optional() }).default({}),
  /** Share of prompts held out for test. */
  testFraction: z.number().min(0).max(1).default(0.1),
  /** Salt of the split hash. */
  seed: z.union([z.string(), z.number()]).default(0),
  /** Estimated Jaccard similarity at or above which a pair is a near duplicate of an earlier one. */
  nearDuplicateThreshold: z.number().gt(0).lte(1).default(0.9),
  /** Reject exact and near duplicates (default); `false` keeps every valid line. */
  dedup: z.boolean().default(true),
  /** MinHash functions per signature. */
  permutations: z.number().int().min(1).max(1024).default(64),
  /** Lines between two `onProgress` calls (one more comes at the end). */
  progressEvery: z.number().int().positive().default(10_000),
});
export type IngestSettings = z.input<typeof IngestSettings>;

export interface IngestOptions extends IngestSettings {
  inputs: readonly PreferenceInput[];
  defaults?: PreferenceDefaults;
  /** Called for every accepted record, in input order; awaited, so a slow writer applies backpressure. */
  onRecord(record: PreferenceRecord, split: Split): void | Promise<void>;
  /** Called for every rejected line (duplicates included); awaited. */
  onReject(reject: PreferenceReject): void | Promise<void>;
  onProgress?(progress: IngestProgress): void;
}

function emptyBreakdown(): RecordBreakdown {
  return { bySet: {}, byCategory: {}, byPhase: {} };
}

function bump(counts: Record<string, number>, key: string): void {
  counts[key] = (counts[key] ?? 0) + 1;
}

function tally(breakdown: RecordBreakdown, record: PreferenceRecord): void {
  bump(breakdown.bySet, record.set);
  bump(breakdown.byCategory, record.category);
  bump(breakdown.byPhase, record.phase);
}

/**
 * Streams every input through parsing, validation, exact and near de-duplication (against the
 * records accepted so far, across inputs) and the prompt-hash split. Throws only for bad options
 * or an input that cannot be read; bad lines become rejects.
 */
export async function ingestPreferences(options: IngestOptions): Promise<IngestCounts> {
  const parsedSettings = IngestSettings.safeParse(options);
  if (!parsedSettings.success) {
    const issue = parsedSettings.error.issues[0];
    throw new Error(`ingestPreferences: ${issue.path.map(String).join('.')}: ${issue.message}`);
  }
  const settings = parsedSettings.data;
  const signatureOf = minHasher({ permutations: settings.permutations });
  const near = new NearDuplicateIndex<DuplicateOf>(settings.permutations, settings.nearDuplicateThreshold);
  const exact = new Map<string, DuplicateOf>();
  const counts: IngestCounts = {
    lines: 0,
    blankLines: 0,
    bytes: 0,
    accepted: 0,
    rejected: { total: 0, byReason: emptyReasonCounts() },
    duplicates: { exact: 0, near: 0 },
    train: 0,
    test: 0,
    ...emptyBreakdown(),
    splits: { train: emptyBreakdown(), test: emptyBreakdown() },
  };
  let reportedAt = -1;
  const progress = (): void => {
    reportedAt = counts.lines;
    options.onProgress?.({ lines: counts.lines, bytes: counts.bytes, accepted: counts.accepted, rejected: counts.rejected.total });
  };
  const reject = async (rejected: PreferenceReject): Promise<void> => {
    counts.rejected.total++;
    counts.rejected.byReason[rejected.reason]++;
    await options.onReject(rejected);
  };

  for (const input of options.inputs) {
    let lineNumber = 0;
    for await (const text of input.lines) {
      lineNumber++;
      counts.bytes += Buffer.byteLength(text, 'utf8') + 1;
      if (text.trim() === '') {
        counts.blankLines++;
        continue;
      }
      counts.lines++;
      const at = { source: input.name, line: lineNumber };
      const parsed = parsePreferenceLine(text, at, settings.defaults);
      if (!parsed.ok) {
        await reject(parsed.reject);
      } else {
        const { record } = parsed;
        const key = parsed.digest;
        const earlier = settings.dedup ? exact.get(key) : undefined;
        // One small object per accepted record, shared by both indexes: the only per-record state kept.
        const ref: DuplicateOf = { source: input.name, line: lineNumber, id: record.id };
        const match = earlier || !settings.dedup ? undefined : near.findOrAdd(signatureOf(parsed.pairText), ref);
        if (earlier) {
          counts.duplicates.exact++;
          await reject({ ...at, reason: 'duplicate', field: '(line)', message: `(line): same prompt, chosen and rejected as ${earlier.source}:${earlier.line}`, duplicateOf: earlier });
        } else if (match) {
          counts.duplicates.near++;
          await reject({
            ...at,
            reason: 'near-duplicate',
            field: '(line)',
            message: `(line): near duplicate (estimated Jaccard ${match.similarity.toFixed(3)}) of ${match.ref.source}:${match.ref.line}`,
            duplicateOf: match.ref,
            similarity: match.similarity,
          });
        } else {
          if (settings.dedup) exact.set(key, ref);
          const split = splitOf(parsed.promptKey, settings.seed, settings.testFraction);
          counts.accepted++;
          counts[split]++;
          tally(counts, record);
          tally(counts.splits[split], record);
          await options.onRecord(record, split);
        }
      }
      if (counts.lines % settings.progressEvery === 0) progress();
    }
  }
  if (reportedAt !== counts.lines) progress();
  return counts;
}

/** Everything `readPreferenceFile` read: all records (in file order), each split, the rejects and the counts. */
export interface PreferenceFile {
  records: PreferenceRecord[];
  train: PreferenceRecord[];
  test: PreferenceRecord[];
  rejects: PreferenceReject[];
  counts: IngestCounts;
}

/** Reads a whole (small) preference file into memory; for large ones, stream with `ingestPreferences`. */
export async function readPreferenceFile(path: string, options: IngestSettings = {}): Promise<PreferenceFile> {
  const out: PreferenceFile = { records: [], train: [], test: [], rejects: [], counts: undefined as unknown as IngestCounts };
  out.counts = await ingestPreferences({
    ...options,
    inputs: [{ name: path, lines: readLines(path) }],
    onRecord: (record, split) => {
      out.records.push(record);
      out[split].push(record);
    },
    onReject: (rejected) => {
      out.rejects.push(rejected);
    },
  });
  return out;
}
