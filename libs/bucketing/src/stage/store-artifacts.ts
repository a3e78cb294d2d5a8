import { PassThrough } from 'node:stream';
import type { ArtifactEntry } from '@xyp/contracts';
import type { ArtifactStore } from '@xyp/storage';
import type { ArtifactScratch, ArtifactWriter } from '../io/sink';

/**
 * The packing pipeline's sink and source over the platform's ArtifactStore: every file a
 * shard or the merge writes becomes a content-addressed object of `(runId, stage)`,
 * streamed (never held whole), and is remembered by name so the merge can read it back.
 * `remove` only forgets names: objects stay until the run is removed, as a committed
 * manifest lists only the final files.
 */
export class StoreArtifacts implements ArtifactScratch {
  private readonly entries = new Map<string, ArtifactEntry>();

  constructor(
    private readonly store: ArtifactStore,
    private readonly runId: string,
    private readonly stage: string,
    known: Record<string, ArtifactEntry> = {},
  ) {
    for (const [name, entry] of Object.entries(known)) this.entries.set(name, entry);
  }

  /** Files written (or made known) so far, by name. */
  written(prefix = ''): Record<string, ArtifactEntry> {
    return Object.fromEntries([...this.entries].filter(([name]) => name.startsWith(prefix)));
  }

  async create(name: string): Promise<ArtifactWriter> {
    const body = new PassThrough({ highWaterMark: 1 << 20 });
    const upload = this.store.putObject(this.runId, this.stage, name, body);
    let failure: unknown = null;
    upload.catch((error: unknown) => (failure = error));
    return {
      write: async (chunk) => {
        if (failure) throw failure;
        // Copy: the caller may reuse `chunk` once this resolves, while the stream still holds it.
        if (!body.write(Buffer.from(chunk))) await new Promise<void>((resolve) => body.once('drain', resolve));
      },
      close: async () => {
        body.end();
        this.entries.set(name, await upload);
      },
      abort: async () => {
        body.destroy(new Error(`${name}: aborted`));
        await upload.catch(() => undefined);
      },
    };
  }

  async *read(name: string): AsyncIterable<Uint8Array> {
    for await (const chunk of await this.store.getObjectStream(this.entry(name).key)) yield chunk as Buffer;
  }

  readAll(name: string): Promise<Uint8Array> {
    return this.store.getObject(this.entry(name).key);
  }

  async exists(name: string): Promise<boolean> {
    return this.entries.has(name);
  }

  async remove(prefix: string): Promise<void> {
    for (const name of [...this.entries.keys()]) if (name.startsWith(prefix)) this.entries.delete(name);
  }

  private entry(name: string): ArtifactEntry {
    const entry = this.entries.get(name);
    if (!entry) throw new Error(`no artifact named ${name} in ${this.runId}/${this.stage}`);
    return entry;
  }
}
