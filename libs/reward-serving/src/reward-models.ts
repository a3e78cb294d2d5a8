/**
 * The reward models a service serves, by checkpoint ID: one current model (requests naming no model
 * go to it) and any others loaded beside it, each behind its own cross-caller batching. Models are
 * swapped while calls run: a call holds a lease on the model it was admitted on, and a model that
 * stops being served is disposed only once its last lease is released and its batcher is idle.
 */
import { status } from '@grpc/grpc-js';
import type { TextReward } from '@xyp/contracts';
import type { RewardModelInfo } from '@xyp/grpc';
import { BatchingReward, type BatchingRewardOptions, type BatchingStats } from './batching-reward';
import { RewardServiceError } from './reward-service-error';

/** A reward function the service scores with, under the checkpoint ID clients ask for. */
export interface ScoringModel {
  id: string;
  score: TextReward;
  /** Tokens a scored sequence keeps, for `ListModels`. */
  contextLength?: number;
  /** Parameter count, for `ListModels`. */
  parameters?: number;
  /** SHA-256 of the committed weights, for `ListModels`. */
  weightsSha256?: string;
  /** Frees the model (its tensors); called once, after its last call ended. */
  dispose?(): void;
}

/** Loads a model by checkpoint ID (`loadRewardModel` bound to a store and backend, in the service). */
export type RewardModelLoader = (id: string) => Promise<ScoringModel>;

export interface RewardModelsOptions {
  /** Cross-caller batching in front of each model's scorer (default 5 ms window, 64 items). */
  batching?: BatchingRewardOptions;
  /** Clock of `loadedAtUnixMs` (default `Date.now`). */
  now?: () => number;
}

export interface LoadOptions {
  /** Make it the current model (requests naming no model go to it). */
  makeCurrent?: boolean;
  /** With `makeCurrent`: keep the previous current model served by its ID (default: unload it). */
  keepPrevious?: boolean;
}

/** A call's hold on the model it was admitted on. `release` once the call has ended (idempotent). */
export interface RewardModelLease {
  id: string;
  version: number;
  /** The model's batched scorer. */
  score: TextReward;
  release(): void;
}

interface Entry {
  model: ScoringModel;
  version: number;
  loadedAtUnixMs: number;
  batching: BatchingReward;
  inFlight: number;
  /** No longer served: disposed once `inFlight` is 0 and the batcher idle. */
  retired: boolean;
  /** A wait for the batcher to go idle before disposing has started. */
  disposing: boolean;
  disposed: boolean;
  whenDisposed: Promise<void>;
  markDisposed(): void;
}

export class RewardModels {
  private readonly served = new Map<string, Entry>();
  private readonly loading = new Map<string, Promise<Entry>>();
  private readonly draining = new Set<Entry>();
  private currentId: string | undefined;
  private versions = 0;
  private closed = false;

  constructor(
    private readonly loader: RewardModelLoader,
    private readonly options: RewardModelsOptions = {},
  ) {}

  /** A registry serving `model` as its current model; `load` of another ID fails (no loader). */
  static serving(model: ScoringModel, options: RewardModelsOptions = {}): RewardModels {
    const models = new RewardModels(async (id) => {
      throw new RewardServiceError(status.FAILED_PRECONDITION, `this service cannot load reward models (asked for "${id}"); it serves "${model.id}"`);
    }, options);
    models.add(model, { makeCurrent: true });
    return models;
  }

  /** The current model's ID, or undefined when none is. */
  get current(): string | undefined {
    return this.currentId;
  }

  /**
   * Loads the checkpoint `id` (once: an ID already served, or being loaded, is not loaded again) and,
   * with `makeCurrent`, makes it current. Returns its info and the ID it replaced as current.
   */
  async load(id: string, options: LoadOptions = {}): Promise<{ loaded: RewardModelInfo; previous?: string }> {
    if (id.trim() === '') throw new RewardServiceError(status.INVALID_ARGUMENT, 'LoadModel: model is empty; give a checkpoint ID (<runId>/<stage>) or a directory');
    this.assertOpen();
    const entry = this.served.get(id) ?? this.stillInMemory(id) ?? (await this.loadEntry(id));
    this.assertOpen();
    return this.install(entry, options);
  }

  /** Serves a model already in memory (the start-up model, or a test's scorer) under its ID. */
  add(model: ScoringModel, options: LoadOptions = {}): { loaded: RewardModelInfo; previous?: string } {
    this.assertOpen();
    if (this.served.has(model.id)) throw new RewardServiceError(status.ALREADY_EXISTS, `reward model "${model.id}" is already served`);
    return this.install(this.entryOf(model), options);
  }

  /**
   * Admits a call: the model it asked for (`''`: the current one), held until `release`. Unknown IDs
   * are `NOT_FOUND`, naming what is served; no current model is `UNAVAILABLE`.
   */
  acquire(id = ''): RewardModelLease {
    this.assertOpen();
    const wanted = id === '' ? this.currentId : id;
    const entry = wanted === undefined ? undefined : this.served.get(wanted);
    if (!entry) {
      if (id === '') throw new RewardServiceError(status.UNAVAILABLE, 'no reward model is loaded (XYP_REWARD_CHECKPOINT, or LoadModel)');
      throw new RewardServiceError(status.NOT_FOUND, `reward model "${id}" is not served here; ${this.describeServed()} (LoadModel loads another; leave model empty for the current one)`);
    }
    entry.inFlight += 1;
    let released = false;
    return {
      id: entry.model.id,
      version: entry.version,
      score: entry.batching.score,
      release: () => {
        if (released) return;
        released = true;
        entry.inFlight -= 1;
        if (entry.retired) this.drain(entry);
      },
    };
  }

  /** Stops serving `id` (not the current model); it is disposed once its calls end. */
  unload(id: string): string {
    this.assertOpen();
    const entry = this.served.get(id);
    if (!entry) throw new RewardServiceError(status.NOT_FOUND, `reward model "${id}" is not served here; ${this.describeServed()}`);
    if (id === this.currentId) throw new RewardServiceError(status.FAILED_PRECONDITION, `reward model "${id}" is the current model; make another current first (LoadModel with make_current)`);
    this.retire(entry);
    return id;
  }

  list(): { models: RewardModelInfo[]; current: string } {
    const models = [...this.served.values()].sort((a, b) => a.version - b.version).map((entry) => this.info(entry));
    return { models, current: this.currentId ?? '' };
  }

  /** Batching counters of a served model (default: the current one). */
  batchingStats(id = this.currentId ?? ''): BatchingStats | undefined {
    return this.served.get(id)?.batching.stats;
  }

  /** Stops serving every model; resolves once each is disposed (after its calls in flight end). */
  async close(): Promise<void> {
    this.closed = true;
    this.currentId = undefined;
    for (const entry of [...this.served.values()]) this.retire(entry);
    await Promise.allSettled([...this.loading.values()]);
    await this.drained();
  }

  /** Resolves once every model that stopped being served so far has been disposed. */
  async drained(): Promise<void> {
    await Promise.all([...this.draining].map((entry) => entry.whenDisposed));
  }

  private async loadEntry(id: string): Promise<Entry> {
    let pending = this.loading.get(id);
    if (!pending) {
      pending = this.loader(id).then((model) => {
        if (model.id !== id) {
          // A loader names the model by its parsed ID (e.g. whitespace trimmed); serve it by that.
          const existing = this.served.get(model.id);
          if (existing) {
            model.dispose?.();
            return existing;
          }
        }
        if (this.closed) {
          model.dispose?.();
          throw new RewardServiceError(status.UNAVAILABLE, 'the reward service is shutting down');
        }
        return this.entryOf(model);
      });
      this.loading.set(id, pending);
      void pending.then(
        () => this.loading.delete(id),
        () => this.loading.delete(id),
      );
    }
    return pending;
  }

  /** A model unloaded but not yet disposed (its calls still running): served again rather than loaded twice. */
  private stillInMemory(id: string): Entry | undefined {
    return [...this.draining].find((entry) => entry.model.id === id && !entry.disposed);
  }

  private entryOf(model: ScoringModel): Entry {
    this.versions += 1;
    let markDisposed = (): void => undefined;
    const whenDisposed = new Promise<void>((resolve) => (markDisposed = resolve));
    return {
      model,
      version: this.versions,
      loadedAtUnixMs: (this.options.now ?? Date.now)(),
      batching: new BatchingReward(model.score, this.options.batching),
      inFlight: 0,
      retired: false,
      disposing: false,
      disposed: false,
      whenDisposed,
      markDisposed,
    };
  }

  private install(entry: Entry, options: LoadOptions): { loaded: RewardModelInfo; previous?: string } {
    const id = entry.model.id;
    if (entry.retired && !entry.disposed) {
      // Unloaded but still draining: served again, not loaded twice.
      entry.retired = false;
      this.draining.delete(entry);
    }
    this.served.set(id, entry);
    let previous: string | undefined;
    if (options.makeCurrent || this.currentId === undefined) {
      previous = this.currentId !== id ? this.currentId : undefined;
      this.currentId = id;
      if (previous !== undefined && !options.keepPrevious) {
        const old = this.served.get(previous);
        if (old) this.retire(old);
      }
    }
    return { loaded: this.info(entry), previous };
  }

  private retire(entry: Entry): void {
    if (entry.retired) return;
    entry.retired = true;
    this.served.delete(entry.model.id);
    if (this.currentId === entry.model.id) this.currentId = undefined;
    this.draining.add(entry);
    this.drain(entry);
  }

  /** Disposes a retired model once no call holds it and its batcher has nothing left. */
  private drain(entry: Entry): void {
    if (!entry.retired || entry.inFlight > 0 || entry.disposing || entry.disposed) return;
    entry.disposing = true;
    void entry.batching.whenIdle().then(() => {
      entry.disposing = false;
      // Served again, or a call admitted while the batcher finished: not disposed (yet).
      if (!entry.retired || entry.inFlight > 0 || entry.disposed) return;
      entry.disposed = true;
      try {
        entry.model.dispose?.();
      } finally {
        entry.markDisposed();
      }
    });
  }

  private info(entry: Entry): RewardModelInfo {
    return {
      model: entry.model.id,
      version: entry.version,
      current: entry.model.id === this.currentId && !entry.retired,
      loadedAtUnixMs: entry.loadedAtUnixMs,
      contextLength: entry.model.contextLength ?? 0,
      parameters: entry.model.parameters ?? 0,
      inFlight: entry.inFlight,
      weightsSha256: entry.model.weightsSha256 ?? '',
    };
  }

  private describeServed(): string {
    const ids = [...this.served.keys()];
    if (ids.length === 0) return 'no reward model is loaded';
    const named = ids.map((id) => (ids.length > 1 && id === this.currentId ? `"${id}" (current)` : `"${id}"`));
    return `this service scores with ${named.join(', ')}`;
  }

  private assertOpen(): void {
    if (this.closed) throw new RewardServiceError(status.UNAVAILABLE, 'the reward service is shutting down');
  }
}
