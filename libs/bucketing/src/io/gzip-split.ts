import { once } from 'node:events';
import { constants, createGzip, type Gzip } from 'node:zlib';
import { shardPrefix } from '@xyp/packing';
import type { ArtifactSink, ArtifactWriter } from './sink';

/**
 * Gzip input has no random access: a reader must inflate from the first byte. So the one pass
 * that plans a gzip input also splits it: each shard's lines (the decompressed bytes, unchanged)
 * are compressed again into an object of their own, and a shard job reads only that object.
 */

/** Where shard `index`'s own input goes: next to its outputs, `<scratchPrefix>/<index>/input.jsonl.gz`. */
export function shardInputName(scratchPrefix: string, index: number): string {
  return `${shardPrefix(scratchPrefix, index)}/input.jsonl.gz`;
}

/** Where `planInput` writes the shards of a gzip input. */
export interface GzipSplitTarget {
  sink: ArtifactSink;
  /** Objects are named by `shardInputName(scratchPrefix, index)`. */
  scratchPrefix: string;
}

export interface SplitObject {
  name: string;
  /** Compressed size. */
  bytes: number;
}

interface OpenShard {
  name: string;
  gzip: Gzip;
  writer: ArtifactWriter;
  bytes: number;
  /** Moves compressed output to the writer; settles once the compressor has ended. */
  pump: Promise<void>;
}

/**
 * Takes the decompressed input in order and writes shard after shard: `write` appends bytes to
 * the current shard, `cut` ends it. Fast compression (level 1): the objects are scratch, read
 * once, and planning is the stage's one sequential step. Memory: one compressor and one chunk.
 */
export class GzipShardSplitter {
  private current: OpenShard | null = null;
  private index = 0;
  private readonly objects: SplitObject[] = [];

  constructor(private readonly target: GzipSplitTarget) {}

  async write(bytes: Uint8Array): Promise<void> {
    if (bytes.length === 0) return;
    this.current ??= await this.open();
    const shard = this.current;
    if (!shard.gzip.write(bytes)) {
      // A failing writer ends the pump first; without the race the wait for `drain` would never end.
      await Promise.race([once(shard.gzip, 'drain'), shard.pump.then(() => Promise.reject(new Error(`${shard.name}: compressor ended early`)))]);
    }
  }

  /** Ends the current shard: its object is complete once this resolves. */
  async cut(): Promise<void> {
    const shard = this.current;
    this.current = null;
    if (shard !== null) {
      shard.gzip.end();
      await shard.pump;
      await shard.writer.close();
      this.objects[this.index] = { name: shard.name, bytes: shard.bytes };
    }
    this.index++;
  }

  /** Ends the last shard; the objects by shard index (absent for a shard with no bytes). */
  async finish(): Promise<SplitObject[]> {
    if (this.current !== null) await this.cut();
    return this.objects;
  }

  /** Drops the shard being written (the finished ones stay). */
  async abort(): Promise<void> {
    const shard = this.current;
    this.current = null;
    if (shard === null) return;
    shard.gzip.destroy();
    await shard.pump.catch(() => undefined);
    await shard.writer.abort().catch(() => undefined);
  }

  private async open(): Promise<OpenShard> {
    const name = shardInputName(this.target.scratchPrefix, this.index);
    const writer = await this.target.sink.create(name);
    const gzip = createGzip({ level: constants.Z_BEST_SPEED, chunkSize: 1 << 20 });
    const shard: OpenShard = { name, gzip, writer, bytes: 0, pump: Promise.resolve() };
    shard.pump = (async () => {
      for await (const chunk of gzip as AsyncIterable<Buffer>) {
        shard.bytes += chunk.length;
        await writer.write(chunk);
      }
    })();
    // Awaited by `cut` or `abort`; this only keeps an early failure from counting as unhandled.
    shard.pump.catch(() => undefined);
    return shard;
  }
}
