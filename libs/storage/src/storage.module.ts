import { Inject, Module, type DynamicModule, type InjectionToken, type ModuleMetadata, type OnApplicationShutdown, type OptionalFactoryDependency } from '@nestjs/common';
import type { ArtifactStore } from './artifact-store';
import { createArtifactStore } from './create-artifact-store';
import { ArtifactStoreOptions, parseStoreOptions } from './options';

/**
 * Injection token of the `ArtifactStore`: `@Inject(ARTIFACT_STORE) store: ArtifactStore`.
 * A registered symbol, so that two copies of this file (source and build) agree on it.
 */
export const ARTIFACT_STORE = Symbol.for('xyp.storage.ArtifactStore');

export interface StorageModuleAsyncOptions {
  imports?: ModuleMetadata['imports'];
  inject?: (InjectionToken | OptionalFactoryDependency)[];
  useFactory: (...args: never[]) => ArtifactStoreOptions | Promise<ArtifactStoreOptions>;
}

/** Provides one `ArtifactStore` to the whole application; import it once, in the root module. Closes it at shutdown. */
@Module({})
export class StorageModule implements OnApplicationShutdown {
  constructor(@Inject(ARTIFACT_STORE) private readonly store: ArtifactStore) {}

  async onApplicationShutdown(): Promise<void> {
    await this.store.close?.();
  }

  static forRoot(options: ArtifactStoreOptions): DynamicModule {
    // Parsed here so a bad configuration fails where the module is declared, not at first use.
    const parsed = parseStoreOptions(ArtifactStoreOptions, options);
    return {
      module: StorageModule,
      global: true,
      providers: [{ provide: ARTIFACT_STORE, useFactory: (): ArtifactStore => createArtifactStore(parsed) }],
      exports: [ARTIFACT_STORE],
    };
  }

  /** For options that come from another provider, e.g. a config service. */
  static forRootAsync(options: StorageModuleAsyncOptions): DynamicModule {
    return {
      module: StorageModule,
      global: true,
      imports: options.imports ?? [],
      providers: [
        {
          provide: ARTIFACT_STORE,
          inject: options.inject ?? [],
          useFactory: async (...args: never[]): Promise<ArtifactStore> => createArtifactStore(await options.useFactory(...args)),
        },
      ],
      exports: [ARTIFACT_STORE],
    };
  }
}
