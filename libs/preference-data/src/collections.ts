/**
 * The JSONL collections reward.prepare writes from an ingest (`@xyp/contracts`
 * `stages/reward-prepare.ts`): the training split by UFRM phase (`pretrain`, `finetune`), the
 * whole training split (`train`, for a one-phase baseline), the held-out split (`test`) and the
 * rejected lines (`rejects`). Each record or reject is one JSON line.
 */
import { type IngestCounts, type IngestOptions, ingestPreferences } from './ingest';

export const PREFERENCE_COLLECTIONS = ['pretrain', 'finetune', 'train', 'test', 'rejects'] as const;
export type PreferenceCollection = (typeof PREFERENCE_COLLECTIONS)[number];

export interface WriteCollectionsOptions extends Omit<IngestOptions, 'onRecord' | 'onReject'> {
  /** Called with each JSON line (no newline) of a collection, in input order; awaited. */
  write(collection: PreferenceCollection, line: string): void | Promise<void>;
}

/**
 * Ingests every input and writes each accepted record to `train` and its phase's collection, or
 * to `test`; each reject to `rejects`. A test record goes to `test` only, so no phase collection
 * holds a held-out prompt.
 */
export async function writePreferenceCollections(options: WriteCollectionsOptions): Promise<IngestCounts> {
  const { write, ...ingest } = options;
  return ingestPreferences({
    ...ingest,
    onRecord: async (record, split) => {
      const line = JSON.stringify(record);
      if (split === 'test') {
        await write('test', line);
        return;
      }
      await write('train', line);
      await write(record.phase, line);
    },
    onReject: (reject) => write('rejects', JSON.stringify(reject)),
  });
}
