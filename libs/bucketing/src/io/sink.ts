import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';

/**
 * Where packing writes and merging reads its files, by relative name (`bucket_2048.bin`,
 * `.shards/00003/report.json`). The pipeline only ever talks to these interfaces, so the same
 * code writes to a local directory, to memory in tests, or (through an adapter the platform
 * provides) to the artifact store.
 */
export interface ArtifactWriter {
  /** Appends bytes. The caller does not touch `chunk` again until the promise settles. */
  write(chunk: Uint8Array): Promise<void>;
  /** Makes the object visible under its name (atomically, where the store can). */
  close(): Promise<void>;
  /** Drops everything written; the name stays absent. */
  abort(): Promise<void>;
}

export interface ArtifactSink {
  create(name: string): Promise<ArtifactWriter>;
}

export interface ArtifactSource {
  /** Streams an object in chunks; rejects when it does not exist. */
  read(name: string): AsyncIterable<Uint8Array>;
  readAll(name: string): Promise<Uint8Array>;
  exists(name: string): Promise<boolean>;
}

/** A store that is both, and can drop a prefix: shard outputs live here until merged. */
export interface ArtifactScratch extends ArtifactSink, ArtifactSource {
  remove(prefix: string): Promise<void>;
}

/** Size and SHA-256 of a written object, as the manifest lists them. */
export interface WrittenFile {
  name: string;
  bytes: number;
  sha256: string;
}

/** Writes a whole object at once. */
export async function writeArtifact(sink: ArtifactSink, name: string, bytes: Uint8Array): Promise<void> {
  const writer = await sink.create(name);
  try {
    await writer.write(bytes);
    await writer.close();
  } catch (error) {
    await writer.abort();
    throw error;
  }
}

/** An `ArtifactWriter` that also measures and (unless `hash` is false) hashes what goes through it. */
export class HashingWriter {
  private readonly hash: ReturnType<typeof createHash> | null;
  private bytes = 0;

  private constructor(
    readonly name: string,
    private readonly inner: ArtifactWriter,
    hash: boolean,
  ) {
    this.hash = hash ? createHash('sha256') : null;
  }

  /** `hash: false` for scratch files nobody checks (`sha256` is then empty). */
  static async create(sink: ArtifactSink, name: string, options: { hash?: boolean } = {}): Promise<HashingWriter> {
    return new HashingWriter(name, await sink.create(name), options.hash ?? true);
  }

  write(chunk: Uint8Array): Promise<void> {
    this.hash?.update(chunk);
    this.bytes += chunk.byteLength;
    return this.inner.write(chunk);
  }

  async close(): Promise<WrittenFile> {
    await this.inner.close();
    return { name: this.name, bytes: this.bytes, sha256: this.hash?.digest('hex') ?? '' };
  }

  abort(): Promise<void> {
    return this.inner.abort();
  }
}

function checkName(name: string): void {
  if (name.length === 0 || name.startsWith('/') || name.includes('\\') || name.split('/').some((part) => part === '' || part === '..' || part === '.')) {
    throw new Error(`invalid artifact name: ${JSON.stringify(name)}`);
  }
}

class FileWriter implements ArtifactWriter {
  constructor(
    private readonly handle: FileHandle,
    private readonly temporary: string,
    private readonly target: string,
  ) {}

  async write(chunk: Uint8Array): Promise<void> {
    let offset = 0;
    while (offset < chunk.byteLength) {
      const { bytesWritten } = await this.handle.write(chunk, offset, chunk.byteLength - offset);
      offset += bytesWritten;
    }
  }

  async close(): Promise<void> {
    await this.handle.close();
    await rename(this.temporary, this.target);
  }

  async abort(): Promise<void> {
    await this.handle.close().catch(() => undefined);
    await rm(this.temporary, { force: true });
  }
}

/** Files under one directory; each object is written to `<name>.partial` and renamed on close. */
export class DirectoryStore implements ArtifactScratch {
  readonly root: string;

  constructor(root: string) {
    this.root = resolve(root);
  }

  path(name: string): string {
    checkName(name);
    return join(this.root, ...name.split('/'));
  }

  async create(name: string): Promise<ArtifactWriter> {
    const target = this.path(name);
    await mkdir(dirname(target), { recursive: true });
    const temporary = `${target}.partial`;
    return new FileWriter(await open(temporary, 'w'), temporary, target);
  }

  async *read(name: string): AsyncIterable<Uint8Array> {
    for await (const chunk of createReadStream(this.path(name), { highWaterMark: 1 << 20 })) yield chunk as Buffer;
  }

  readAll(name: string): Promise<Uint8Array> {
    return readFile(this.path(name));
  }

  async exists(name: string): Promise<boolean> {
    return stat(this.path(name)).then(
      () => true,
      () => false,
    );
  }

  async remove(prefix: string): Promise<void> {
    const target = this.path(prefix.replace(/\/+$/, ''));
    if (!target.startsWith(this.root + sep)) throw new Error(`refusing to remove ${target} outside ${this.root}`);
    await rm(target, { recursive: true, force: true });
  }
}

/** Objects in memory, for tests and small runs. */
export class MemoryStore implements ArtifactScratch {
  readonly objects = new Map<string, Uint8Array>();

  async create(name: string): Promise<ArtifactWriter> {
    checkName(name);
    const chunks: Uint8Array[] = [];
    let open = true;
    return {
      write: async (chunk) => {
        if (!open) throw new Error(`${name} is closed`);
        chunks.push(chunk.slice());
      },
      close: async () => {
        open = false;
        this.objects.set(name, Buffer.concat(chunks));
      },
      abort: async () => {
        open = false;
      },
    };
  }

  async *read(name: string): AsyncIterable<Uint8Array> {
    yield await this.readAll(name);
  }

  async readAll(name: string): Promise<Uint8Array> {
    const bytes = this.objects.get(name);
    if (bytes === undefined) throw new Error(`no such object: ${name}`);
    return bytes;
  }

  async exists(name: string): Promise<boolean> {
    return this.objects.has(name);
  }

  async remove(prefix: string): Promise<void> {
    const base = prefix.replace(/\/+$/, '');
    for (const name of [...this.objects.keys()]) if (name === base || name.startsWith(`${base}/`)) this.objects.delete(name);
  }
}
