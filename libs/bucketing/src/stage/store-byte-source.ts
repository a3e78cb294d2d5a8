import { ArtifactNotFoundError, type ArtifactStore } from '@xyp/storage';
import type { ByteSource } from '../io/byte-source';

/**
 * An artifact-store object as a `ByteSource`: each `read` is one ranged read of the store
 * (`getObjectStream(key, { start, end })`: file offsets locally, a `Range` GET on S3), so a
 * shard worker transfers only its own bytes and keeps no local copy of the input.
 */
export function storeByteSource(store: ArtifactStore, key: string): ByteSource {
  return {
    name: key,
    async size() {
      const stats = await store.statObject(key);
      if (stats === null) throw new ArtifactNotFoundError(key);
      return stats.size;
    },
    async *read(start: number, end?: number): AsyncIterable<Uint8Array> {
      for await (const chunk of await store.getObjectStream(key, end === undefined ? { start } : { start, end })) yield chunk as Buffer;
    },
  };
}
