/**
 * The cluster jobs' shared volume as the pipeline sees it. Every job pod mounts one ReadWriteMany
 * volume (`resources.volumeClaim` at `resources.mountPath`, `@xyp/cluster`'s `render.ts`); jobs
 * read their inputs and write checkpoints and metrics there (`--save`, `--save_path`). The pipeline
 * reads the same files either from an S3/MinIO bucket that backs the volume (a CSI S3 driver such
 * as mountpoint-s3 or csi-s3: `<mountPath>/<p>` in a pod is the object `<prefix>/<p>`) or from a
 * directory where the volume is mounted in the worker's own pod. Paths here are relative to the
 * volume's root (the mount path is stripped by `volumePath`).
 */
import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Client, type BucketItem } from 'minio';
import { DEFAULT_PART_SIZE, uploadInParts } from '@xyp/storage';

/** What `SharedVolume.write` takes: whole bytes, or a stream that is never held whole (a shard of gigabytes). */
export type VolumeBody = Buffer | string | Readable;

export interface VolumeFile {
  /** Relative to the volume's root, `/`-separated. */
  path: string;
  size: number;
}

export interface SharedVolume {
  /** Where the volume is read, for logs; never a credential. */
  describe(): string;
  /** Every file under `dir` (recursively), sorted by path; none when `dir` does not exist. */
  list(dir: string): Promise<VolumeFile[]>;
  read(path: string): Promise<Readable>;
  /** Writes the file whole or not at all (a stream goes to a temporary name, or as parts of one upload). */
  write(path: string, body: VolumeBody): Promise<void>;
}

/** `/data/checkpoints/r1/cpt` on a volume mounted at `/data` → `checkpoints/r1/cpt`. */
export function volumePath(mountPath: string, absolute: string): string {
  const mount = mountPath.replace(/\/+$/, '');
  if (absolute !== mount && !absolute.startsWith(`${mount}/`)) {
    throw new Error(`kube: ${absolute} is not on the shared volume (mounted at ${mountPath}); the pipeline reads job outputs from that volume only`);
  }
  return checkRelative(absolute.slice(mount.length).replace(/^\/+/, ''));
}

function checkRelative(path: string): string {
  if (path.split('/').some((part) => part === '..') || path.includes('\\') || path.startsWith('/')) {
    throw new Error(`kube: volume path ${JSON.stringify(path)} must be relative without .. or backslashes`);
  }
  return path;
}

/** The volume mounted (or synced) into a directory of this machine. */
export class DirectoryVolume implements SharedVolume {
  constructor(private readonly root: string) {}

  describe(): string {
    return `directory ${this.root}`;
  }

  async list(dir: string): Promise<VolumeFile[]> {
    const out: VolumeFile[] = [];
    const walk = async (relative: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(join(this.root, relative), { withFileTypes: true });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw error;
      }
      for (const entry of entries) {
        const child = relative ? `${relative}/${entry.name}` : entry.name;
        if (entry.isDirectory()) await walk(child);
        else if (entry.isFile()) out.push({ path: child, size: (await stat(join(this.root, child))).size });
      }
    };
    await walk(checkRelative(dir).replace(/\/+$/, ''));
    return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  async read(path: string): Promise<Readable> {
    return createReadStream(join(this.root, checkRelative(path)));
  }

  async write(path: string, body: VolumeBody): Promise<void> {
    const file = join(this.root, checkRelative(path));
    await mkdir(dirname(file), { recursive: true });
    const partial = `${file}.partial-${randomUUID()}`;
    try {
      await pipeline(typeof body === 'string' || Buffer.isBuffer(body) ? Readable.from([Buffer.from(body)]) : body, createWriteStream(partial));
      await rename(partial, file);
    } catch (error) {
      await rm(partial, { force: true });
      throw error;
    }
  }
}

export interface S3VolumeOptions {
  endPoint: string;
  port: number;
  useSSL: boolean;
  accessKey: string;
  secretKey: string;
  region?: string;
  bucket: string;
  /** The key prefix that is the volume's root (`''`: the whole bucket). */
  prefix?: string;
  /** Bytes held per part of a streamed write (default the store's 16 MiB; S3's minimum is 5 MiB). */
  partSize?: number;
}

/** The volume backed by an S3/MinIO bucket (a CSI S3 driver): file `p` is object `<prefix>/p`. */
export class S3Volume implements SharedVolume {
  private readonly client: Client;
  private readonly prefix: string;

  constructor(private readonly options: S3VolumeOptions) {
    this.client = new Client({ endPoint: options.endPoint, port: options.port, useSSL: options.useSSL, accessKey: options.accessKey, secretKey: options.secretKey, region: options.region });
    this.prefix = (options.prefix ?? '').replace(/^\/+|\/+$/g, '');
  }

  describe(): string {
    return `s3://${this.options.bucket}/${this.prefix}${this.prefix ? '/' : ''} at ${this.options.endPoint}:${this.options.port}`;
  }

  private key(path: string): string {
    const relative = checkRelative(path);
    return this.prefix ? `${this.prefix}/${relative}` : relative;
  }

  async list(dir: string): Promise<VolumeFile[]> {
    const base = this.key(dir).replace(/\/+$/, '');
    const out: VolumeFile[] = [];
    for await (const item of this.client.listObjectsV2(this.options.bucket, base ? `${base}/` : '', true) as AsyncIterable<BucketItem>) {
      if (!item.name || item.name.endsWith('/')) continue;
      out.push({ path: this.prefix ? item.name.slice(this.prefix.length + 1) : item.name, size: item.size ?? 0 });
    }
    return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  async read(path: string): Promise<Readable> {
    return this.client.getObject(this.options.bucket, this.key(path));
  }

  async write(path: string, body: VolumeBody): Promise<void> {
    await uploadInParts(this.client, this.options.bucket, this.key(path), body, { partSize: this.options.partSize ?? DEFAULT_PART_SIZE, contentType: 'application/octet-stream' });
  }
}
