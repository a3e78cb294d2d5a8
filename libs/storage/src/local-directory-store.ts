import { constants } from 'node:fs';
import { link, mkdir, open, readdir, readFile, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { manifestKey, manifestRef, objectKey, type ArtifactEntry, type StageManifest } from '@xyp/contracts';
import type { ArtifactBody, ArtifactStore, ByteRange, CommitHooks, CommitResult } from './artifact-store';
import { ArtifactNotFoundError } from './errors';
import { assertKey, runPrefix, stagePrefix, tempKey } from './keys';
import {
  assertArtifactsStored,
  bodyChunks,
  checkPutArguments,
  checkRange,
  listStageManifests,
  Digest,
  entryFor,
  parseManifestForCommit,
  parseStoredManifest,
  rangeEnd,
  serializeManifest,
} from './store-support';

function errorCode(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : undefined;
}

/**
 * The embedded default: keys map to files under one root directory. Writes go to a temp file in
 * the same tree (so the final rename never crosses file systems), are fsynced, then renamed; the
 * manifest is published with `link`, which fails instead of replacing an existing file.
 */
export class LocalDirectoryStore implements ArtifactStore {
  readonly root: string;

  constructor(
    root: string,
    private readonly hooks: CommitHooks = {},
  ) {
    this.root = resolve(root);
  }

  describe(): string {
    return `local:${this.root}`;
  }

  async putObject(runId: string, stage: string, name: string, body: ArtifactBody, contentType?: string): Promise<ArtifactEntry> {
    checkPutArguments(runId, stage, name);
    const tempPath = this.pathOf(tempKey(runId, stage));
    await mkdir(dirname(tempPath), { recursive: true });
    const digest = new Digest();
    try {
      const handle = await open(tempPath, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL);
      try {
        for await (const chunk of bodyChunks(body)) {
          digest.update(chunk);
          await handle.write(chunk);
        }
        await handle.sync();
      } finally {
        await handle.close();
      }
      const sha256 = digest.hex();
      const key = objectKey(runId, stage, sha256);
      const finalPath = this.pathOf(key);
      if (await isFile(finalPath)) {
        await unlink(tempPath);
      } else {
        await mkdir(dirname(finalPath), { recursive: true });
        // Two writers of the same bytes may race here; rename replaces atomically and both files
        // hold identical content, so whichever wins the key is correct.
        await rename(tempPath, finalPath);
        await fsyncDirectory(dirname(finalPath));
      }
      return entryFor(name, key, sha256, digest.size, contentType);
    } catch (error) {
      await unlink(tempPath).catch(() => undefined);
      throw error;
    }
  }

  async getObjectStream(key: string, range?: ByteRange): Promise<Readable> {
    if (range !== undefined) checkRange(assertKey(key), range);
    const handle = await this.openForRead(key);
    if (range === undefined) return handle.createReadStream();
    let end: number;
    try {
      end = rangeEnd(key, range, (await handle.stat()).size);
    } catch (error) {
      await handle.close();
      throw error;
    }
    if (end === range.start) {
      await handle.close();
      return Readable.from([]);
    }
    // createReadStream's `end` is inclusive.
    return handle.createReadStream({ start: range.start, end: end - 1 });
  }

  async getObject(key: string): Promise<Buffer> {
    const handle = await this.openForRead(key);
    try {
      return await handle.readFile();
    } finally {
      await handle.close();
    }
  }

  async statObject(key: string): Promise<{ size: number } | null> {
    try {
      const stats = await stat(this.pathOf(key));
      return stats.isFile() ? { size: stats.size } : null;
    } catch (error) {
      if (errorCode(error) === 'ENOENT' || errorCode(error) === 'ENOTDIR') return null;
      throw error;
    }
  }

  async commitManifest(input: StageManifest): Promise<CommitResult> {
    const { manifest, key } = parseManifestForCommit(input);
    await assertArtifactsStored(manifest, key, (artifactKey) => this.statObject(artifactKey));
    const tempPath = this.pathOf(tempKey(manifest.runId, manifestRef(manifest)));
    const finalPath = this.pathOf(key);
    await mkdir(dirname(tempPath), { recursive: true });
    try {
      const handle = await open(tempPath, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL);
      try {
        await handle.writeFile(serializeManifest(manifest));
        await handle.sync();
      } finally {
        await handle.close();
      }
      await this.hooks.beforeManifestWrite?.(key);
      try {
        // link() fails with EEXIST instead of replacing: of any number of committers exactly one publishes.
        await link(tempPath, finalPath);
      } catch (error) {
        if (errorCode(error) !== 'EEXIST') throw error;
        const existing = await this.readManifest(manifest.runId, manifestRef(manifest));
        if (existing === null) throw new Error(`manifest ${key} vanished while committing`, { cause: error });
        return { committed: false, manifest: existing };
      }
      await fsyncDirectory(dirname(finalPath));
      return { committed: true, manifest };
    } finally {
      await unlink(tempPath).catch(() => undefined);
    }
  }

  async readManifest(runId: string, stage: string): Promise<StageManifest | null> {
    stagePrefix(runId, stage);
    let bytes: Buffer;
    try {
      bytes = await readFile(this.pathOf(manifestKey(runId, stage)));
    } catch (error) {
      if (errorCode(error) === 'ENOENT' || errorCode(error) === 'ENOTDIR') return null;
      throw error;
    }
    return parseStoredManifest(bytes, runId, stage);
  }

  async listManifests(runId: string, stage?: string): Promise<StageManifest[]> {
    if (stage === undefined) runPrefix(runId);
    else stagePrefix(runId, stage);
    return listStageManifests(this, runId, stage, async (prefix) => {
      try {
        return (await readdir(this.pathOf(prefix.slice(0, -1)), { withFileTypes: true })).filter((entry) => entry.isDirectory()).map((entry) => entry.name);
      } catch (error) {
        if (errorCode(error) === 'ENOENT' || errorCode(error) === 'ENOTDIR') return [];
        throw error;
      }
    });
  }

  async removeRun(runId: string): Promise<void> {
    await rm(this.pathOf(runPrefix(runId).slice(0, -1)), { recursive: true, force: true });
  }

  /** The file of a key; keys are checked first, so the result always lies under the root. */
  private pathOf(key: string): string {
    return join(this.root, ...assertKey(key).split('/'));
  }

  private async openForRead(key: string): Promise<FileHandle> {
    let handle: FileHandle;
    try {
      handle = await open(this.pathOf(key), 'r');
    } catch (error) {
      if (errorCode(error) === 'ENOENT' || errorCode(error) === 'ENOTDIR') throw new ArtifactNotFoundError(key);
      throw error;
    }
    // A key that names a folder (a prefix of other keys) is not an object, as on S3.
    if (!(await handle.stat()).isFile()) {
      await handle.close();
      throw new ArtifactNotFoundError(key);
    }
    return handle;
  }
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return false;
    throw error;
  }
}

/**
 * Makes a rename or link durable: the new directory entry only survives a crash once the
 * directory itself is synced. Windows cannot open a directory for syncing, so it is skipped there.
 */
async function fsyncDirectory(path: string): Promise<void> {
  if (process.platform === 'win32') return;
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
