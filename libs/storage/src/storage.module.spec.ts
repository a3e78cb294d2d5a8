import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Inject, Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ArtifactStore } from './artifact-store';
import { ARTIFACT_STORE, StorageModule } from './storage.module';

@Injectable()
class StageWriter {
  constructor(@Inject(ARTIFACT_STORE) readonly store: ArtifactStore) {}
}

/** A feature module that does not import StorageModule: the store reaches it because the module is global. */
@Module({ providers: [StageWriter], exports: [StageWriter] })
class FeatureModule {}

describe('StorageModule', () => {
  let root: string;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'xyp-storage-module-'));
  });

  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('provides one store to every module through ARTIFACT_STORE', async () => {
    @Module({ imports: [StorageModule.forRoot({ kind: 'local', root }), FeatureModule] })
    class AppModule {}

    const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
    try {
      const store = app.get<ArtifactStore>(ARTIFACT_STORE);
      expect(store.describe()).toBe(`local:${root}`);
      expect(app.get(StageWriter).store).toBe(store);
      const entry = await store.putObject('run-nest', 'corpus.bucket', 'a.bin', 'x');
      expect(await store.statObject(entry.key)).toEqual({ size: 1 });
    } finally {
      await app.close();
    }
  });

  it('builds the store from injected options with forRootAsync', async () => {
    const OPTIONS = Symbol('options');
    @Module({ providers: [{ provide: OPTIONS, useValue: { kind: 'local', root } }], exports: [OPTIONS] })
    class ConfigModule {}

    @Module({
      imports: [StorageModule.forRootAsync({ imports: [ConfigModule], inject: [OPTIONS], useFactory: (options: never) => options }), FeatureModule],
    })
    class AppModule {}

    const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
    try {
      expect(app.get(StageWriter).store.describe()).toBe(`local:${root}`);
    } finally {
      await app.close();
    }
  });

  it('refuses bad options where the module is declared', () => {
    expect(() => StorageModule.forRoot({ kind: 's3' } as never)).toThrow(/endPoint/);
  });
});
