/**
 * The cluster engine's Kubernetes client: submits, watches, follows the logs of, and deletes the
 * RayJobs and PyTorchJobs `@xyp/cluster` renders, through `@kubernetes/client-node`
 * (`KubernetesObjectApi` for apply, read and delete, `Watch`, `Log`, `CoreV1Api` for the pods).
 */
import { PassThrough } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import type { KubernetesObject } from '@xyp/contracts';
import { loadClientNode, type ClientNode, type KubeConfig, type KubernetesObjectApi } from './client-node';
import { collectionPath, describeRef, jobState, refOf, type JobRef, type JobState, type LogTarget } from './job-kinds';

/** The field manager of every apply: the owner of the fields this pipeline sets. */
export const FIELD_MANAGER = 'xuanyuan-pipeline';

/** Labels that say which run and stage a job belongs to (`@xyp/cluster`'s `render.ts` sets them). */
const RUN_LABEL = 'xyp.io/run-id';
const STAGE_LABEL = 'xyp.io/stage';

/** A job object as the API server returns it. */
export interface KubeJobObject extends KubernetesObject {
  metadata: KubernetesObject['metadata'] & { uid?: string; resourceVersion?: string; generation?: number };
  status?: Record<string, unknown>;
}

/** The name is taken by a job this run or stage does not own, or another field manager owns the fields. */
export class KubeJobConflictError extends Error {
  readonly code = 409;
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'KubeJobConflictError';
  }
}

/** The job ended in failure: `state` carries the controller's reason and message. */
export class KubeJobFailedError extends Error {
  constructor(
    readonly ref: JobRef,
    readonly state: JobState,
  ) {
    super(`${describeRef(ref)} failed: ${state.reason ?? 'no reason given'}${state.message ? `: ${state.message}` : ''}`);
    this.name = 'KubeJobFailedError';
  }
}

/** The job disappeared while watched (deleted by someone else, or its TTL passed before it was seen done). */
export class KubeJobGoneError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KubeJobGoneError';
  }
}

export interface KubeConnectOptions {
  /** A kubeconfig file (`XYP_KUBECONFIG`); unset: the pod's service account (in-cluster). */
  kubeconfigPath?: string;
  /** A kubeconfig's text, instead of a file. */
  kubeconfig?: string;
}

/** What a watch reports: every change of the job's state, with the object and its resourceVersion. */
export interface JobEvent {
  type: 'INITIAL' | 'ADDED' | 'MODIFIED';
  state: JobState;
  resourceVersion?: string;
  object: KubeJobObject;
}

export interface WatchOptions {
  signal?: AbortSignal;
  onEvent?: (event: JobEvent) => void;
  /** Pause before reconnecting a dropped watch (default 200 ms); after 10 failed reconnects in a row the watch fails. */
  reconnectDelayMs?: number;
}

export interface LogOptions {
  signal?: AbortSignal;
  onLine: (line: string) => void;
  /** How often to look for the pod until it exists (default 1 s). */
  pollMs?: number;
}

function errorCode(error: unknown): number | undefined {
  if (error && typeof error === 'object') {
    const e = error as { code?: unknown; statusCode?: unknown };
    if (typeof e.code === 'number') return e.code;
    if (typeof e.statusCode === 'number') return e.statusCode;
  }
  return undefined;
}

/** The `Status` message the API server sent with an error, without the headers `ApiException` prints. */
function serverMessage(error: unknown): string {
  const body = (error as { body?: unknown })?.body;
  const parsed = typeof body === 'string' ? (() => { try { return JSON.parse(body) as { message?: string }; } catch { return { message: body }; } })() : (body as { message?: string } | undefined);
  if (parsed?.message) return parsed.message;
  return error instanceof Error ? error.message.split('\n')[0] : String(error);
}

function abortError(signal: AbortSignal): Error {
  const reason = signal.reason;
  return reason instanceof Error ? reason : Object.assign(new Error('aborted'), { name: 'AbortError' });
}

export class KubeJobs {
  private constructor(
    private readonly k8s: ClientNode,
    private readonly config: KubeConfig,
    private readonly objects: KubernetesObjectApi,
  ) {}

  static async connect(options: KubeConnectOptions = {}): Promise<KubeJobs> {
    const k8s = await loadClientNode();
    const config = new k8s.KubeConfig();
    if (options.kubeconfig !== undefined) config.loadFromString(options.kubeconfig);
    else if (options.kubeconfigPath !== undefined) {
      try {
        config.loadFromFile(options.kubeconfigPath);
      } catch (error) {
        throw new Error(`kube: kubeconfig ${options.kubeconfigPath}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
      }
    } else config.loadFromCluster();
    if (!config.getCurrentCluster()) throw new Error(`kube: ${options.kubeconfigPath ?? 'the kubeconfig'} has no current cluster (set current-context)`);
    return new KubeJobs(k8s, config, k8s.KubernetesObjectApi.makeApiClient(config));
  }

  /** The API server, context and user, for logs: never a token or a client key. */
  describe(): string {
    const cluster = this.config.getCurrentCluster();
    return `${cluster?.server ?? '(no server)'} (context ${this.config.getCurrentContext() || '(in-cluster)'}, user ${this.config.getCurrentUser()?.name ?? '(none)'})`;
  }

  /**
   * Server-side apply (`PATCH`, `application/apply-patch+yaml`, `fieldManager=xuanyuan-pipeline`,
   * `force=false`). An object of that name that another run or stage owns (its `xyp.io/run-id` or
   * `xyp.io/stage` label differs, or is missing) is not touched: `KubeJobConflictError` (409) names
   * it. The same run and stage's own job is applied again (a retried stage job reattaches to it). A
   * 409 from the server (another field manager owns a field with another value) is the same error.
   */
  async apply(manifest: KubernetesObject): Promise<KubeJobObject> {
    const ref = refOf(manifest);
    const existing = await this.get(ref);
    if (existing) {
      const want = manifest.metadata.labels ?? {};
      const have = existing.metadata.labels ?? {};
      if (have[RUN_LABEL] !== want[RUN_LABEL] || have[STAGE_LABEL] !== want[STAGE_LABEL]) {
        throw new KubeJobConflictError(
          `kube: 409 Conflict: ${describeRef(ref)} already exists and belongs to ${have[RUN_LABEL] ? `run ${have[RUN_LABEL]}, stage ${have[STAGE_LABEL] ?? '?'}` : 'no pipeline run (no xyp.io/run-id label)'}, not to run ${want[RUN_LABEL] ?? '?'}, stage ${want[STAGE_LABEL] ?? '?'}; it is left alone: delete it or use another run id`,
        );
      }
    }
    try {
      return (await this.objects.patch(manifest as never, undefined, undefined, FIELD_MANAGER, false, this.k8s.PatchStrategy.ServerSideApply)) as KubeJobObject;
    } catch (error) {
      if (errorCode(error) === 409) throw new KubeJobConflictError(`kube: 409 Conflict: applying ${describeRef(ref)}: ${serverMessage(error)}`, { cause: error });
      throw new Error(`kube: applying ${describeRef(ref)}: ${errorCode(error) ?? ''} ${serverMessage(error)}`.replace(':  ', ': '), { cause: error });
    }
  }

  /** `POST` create; an existing name is `KubeJobConflictError` (409 AlreadyExists) naming the job. */
  async create(manifest: KubernetesObject): Promise<KubeJobObject> {
    const ref = refOf(manifest);
    try {
      return (await this.objects.create(manifest as never, undefined, undefined, FIELD_MANAGER)) as KubeJobObject;
    } catch (error) {
      if (errorCode(error) === 409) throw new KubeJobConflictError(`kube: 409 Conflict: creating ${describeRef(ref)}: ${serverMessage(error)}`, { cause: error });
      throw new Error(`kube: creating ${describeRef(ref)}: ${serverMessage(error)}`, { cause: error });
    }
  }

  async get(ref: JobRef): Promise<KubeJobObject | null> {
    try {
      return (await this.objects.read({ apiVersion: apiVersionOf(ref), kind: ref.kind, metadata: { name: ref.name, namespace: ref.namespace } })) as KubeJobObject;
    } catch (error) {
      if (errorCode(error) === 404) return null;
      throw new Error(`kube: reading ${describeRef(ref)}: ${serverMessage(error)}`, { cause: error });
    }
  }

  /**
   * Follows the job until it succeeds (resolves with the final state) or fails (rejects with
   * `KubeJobFailedError`, the controller's reason and message). Starts from a GET, then watches the
   * collection for this name from the GET's `resourceVersion`; a dropped watch resumes from the last
   * version seen, and a version the server no longer has (`410 Expired`) falls back to a GET.
   * `onEvent` gets every change of state. An aborted `signal` stops the watch and rejects with its reason.
   */
  async watchUntilDone(ref: JobRef, options: WatchOptions = {}): Promise<{ state: JobState; object: KubeJobObject }> {
    const { signal, onEvent } = options;
    const reconnectDelayMs = options.reconnectDelayMs ?? 200;
    let resourceVersion: string | undefined;
    let lastSummary: string | undefined;
    let failures = 0;
    const report = (type: JobEvent['type'], object: KubeJobObject): JobState => {
      const state = jobState(ref.kind, object);
      resourceVersion = object.metadata.resourceVersion ?? resourceVersion;
      if (state.summary !== lastSummary) {
        lastSummary = state.summary;
        onEvent?.({ type, state, resourceVersion: object.metadata.resourceVersion, object });
      }
      return state;
    };
    const finish = (state: JobState, object: KubeJobObject) => {
      if (state.phase === 'failed') throw new KubeJobFailedError(ref, state);
      return { state, object };
    };
    for (;;) {
      if (signal?.aborted) throw abortError(signal);
      if (resourceVersion === undefined) {
        const object = await this.get(ref);
        if (!object) throw new KubeJobGoneError(`kube: ${describeRef(ref)} does not exist (deleted before it finished?)`);
        const state = report('INITIAL', object);
        if (state.phase === 'succeeded' || state.phase === 'failed') return finish(state, object);
      }
      const outcome = await this.watchOnce(ref, resourceVersion, signal, report, (version) => (resourceVersion = version));
      if (outcome.kind === 'done') return finish(outcome.state, outcome.object);
      if (outcome.kind === 'deleted') throw new KubeJobGoneError(`kube: ${describeRef(ref)} was deleted before it finished (last: ${lastSummary ?? 'no status'})`);
      if (signal?.aborted) throw abortError(signal);
      if (outcome.kind === 'expired') resourceVersion = undefined;
      if (outcome.kind === 'error') {
        failures += 1;
        if (failures > 10) throw new Error(`kube: watching ${describeRef(ref)}: ${failures} reconnects failed in a row; last: ${outcome.message}`);
      } else failures = 0;
      await delay(reconnectDelayMs, undefined, { signal }).catch(() => undefined); // an abort ends the wait early
    }
  }

  private async watchOnce(
    ref: JobRef,
    resourceVersion: string | undefined,
    signal: AbortSignal | undefined,
    report: (type: JobEvent['type'], object: KubeJobObject) => JobState,
    bookmark: (resourceVersion: string) => void,
  ): Promise<{ kind: 'done'; state: JobState; object: KubeJobObject } | { kind: 'closed' | 'expired' | 'deleted' } | { kind: 'error'; message: string }> {
    const watch = new this.k8s.Watch(this.config);
    let settle!: (value: Awaited<ReturnType<KubeJobs['watchOnce']>>) => void;
    const result = new Promise<Awaited<ReturnType<KubeJobs['watchOnce']>>>((resolve) => (settle = resolve));
    let settled = false;
    const once = (value: Awaited<ReturnType<KubeJobs['watchOnce']>>) => {
      if (!settled) {
        settled = true;
        settle(value);
      }
    };
    // The abort is heard from the start, also while the watch request is still being answered.
    const started: { controller?: AbortController } = {};
    const onAbort = () => {
      started.controller?.abort();
      once({ kind: 'closed' });
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    const controller = await watch.watch(
      collectionPath(ref),
      { fieldSelector: `metadata.name=${ref.name}`, resourceVersion, allowWatchBookmarks: true },
      (type: string, object: KubeJobObject) => {
        if (settled) return;
        if (type === 'ERROR') {
          const code = (object as unknown as { code?: number }).code;
          return once(code === 410 ? { kind: 'expired' } : { kind: 'error', message: (object as unknown as { message?: string }).message ?? 'watch error' });
        }
        if (type === 'BOOKMARK') {
          if (object.metadata?.resourceVersion) bookmark(object.metadata.resourceVersion);
          return;
        }
        if (type === 'DELETED') return once({ kind: 'deleted' });
        const state = report(type === 'ADDED' ? 'ADDED' : 'MODIFIED', object);
        if (state.phase === 'succeeded' || state.phase === 'failed') once({ kind: 'done', state, object });
      },
      (error: unknown) => {
        if (error && errorCode(error) === 410) return once({ kind: 'expired' });
        if (error && !(error instanceof Error && error.name === 'AbortError')) return once({ kind: 'error', message: serverMessage(error) });
        once({ kind: 'closed' });
      },
    );
    started.controller = controller;
    if (settled) controller.abort();
    try {
      const value = await result;
      controller.abort();
      return value;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /**
   * Follows the logs of the job's pod (`target`: label selector and container) and hands over each
   * line. Waits for the pod to exist (polling every `pollMs`); resolves when the log stream ends (the
   * container exited) or `signal` aborts.
   */
  async streamLogs(target: LogTarget, options: LogOptions): Promise<void> {
    const { signal, onLine } = options;
    const core = this.config.makeApiClient(this.k8s.CoreV1Api);
    let pod: string | undefined;
    while (!pod) {
      if (signal?.aborted) return;
      try {
        const list = await core.listNamespacedPod({ namespace: target.namespace, labelSelector: target.labelSelector });
        pod = list.items.find((p) => p.metadata?.name)?.metadata?.name;
      } catch (error) {
        throw new Error(`kube: listing pods ${target.labelSelector} in ${target.namespace}: ${serverMessage(error)}`, { cause: error });
      }
      if (!pod) await delay(options.pollMs ?? 1000, undefined, { signal }).catch(() => undefined); // an abort ends the wait early
    }
    const stream = new PassThrough();
    let rest = '';
    stream.on('data', (chunk: Buffer) => {
      const text = rest + chunk.toString('utf8');
      const lines = text.split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) onLine(line.replace(/\r$/, ''));
    });
    const ended = new Promise<void>((resolve) => {
      stream.on('end', resolve);
      stream.on('close', resolve);
      stream.on('error', () => resolve());
    });
    let controller: AbortController;
    try {
      controller = await new this.k8s.Log(this.config).log(target.namespace, pod, target.container, stream, { follow: true });
    } catch (error) {
      throw new Error(`kube: logs of pod ${target.namespace}/${pod} (container ${target.container}): ${serverMessage(error)}`, { cause: error });
    }
    const onAbort = () => {
      controller.abort();
      stream.end();
    };
    if (signal?.aborted) onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await ended;
      if (rest) onLine(rest);
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Deletes the job with foreground propagation (its RayCluster, pods and submitter go first). A missing job is not an error. */
  async delete(ref: JobRef): Promise<void> {
    try {
      await this.objects.delete({ apiVersion: apiVersionOf(ref), kind: ref.kind, metadata: { name: ref.name, namespace: ref.namespace } }, undefined, undefined, undefined, undefined, 'Foreground');
    } catch (error) {
      if (errorCode(error) === 404) return;
      throw new Error(`kube: deleting ${describeRef(ref)}: ${serverMessage(error)}`, { cause: error });
    }
  }
}

function apiVersionOf(ref: Pick<JobRef, 'kind'>): string {
  return ref.kind === 'RayJob' ? 'ray.io/v1' : 'kubeflow.org/v1';
}
