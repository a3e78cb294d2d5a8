/**
 * `KubeJobRunner`, the `ClusterJobRunner` that `ClusterEngine({dryRun: false})` submits through:
 * apply the job, follow its status and its driver/master pod's log at once, and on success copy what
 * the job wrote under its `--save` directory on the shared volume into the artifact store as the
 * stage's artifacts (`checkpoint/<path>`), with the submitted manifest (`cluster/job.yaml`) and its
 * final status (`cluster/status.json`). An aborted signal (the stage's cancel) deletes the job in the
 * foreground and stops the watch; a failed job rejects with its reason and message.
 */
import type { ClusterJobRequest, ClusterJobResult, ClusterJobRunner } from '@xyp/cluster';
import { manifestsToYaml } from '@xyp/cluster';
import { splitInstanceId, type ArtifactEntry, type StageManifest } from '@xyp/contracts';
import type { ArtifactStore } from '@xyp/storage';
import { describeRef, logTarget, refOf } from './job-kinds';
import type { KubeJobs } from './kube-jobs';
import { volumePath, type SharedVolume } from './shared-volume';

/** Where the job's own numbers are read from, when it writes them: a flat JSON object in its `--save` directory. */
export const METRICS_FILE = 'metrics.json';

export interface KubeJobRunnerOptions {
  kube: KubeJobs;
  /** The shared volume the jobs write to, as this process reads it. */
  volume: SharedVolume;
  /** The stage's store (the worker's `context.store`); only `putObject` is used. */
  store: Pick<ArtifactStore, 'putObject'>;
  /** How long log lines may still arrive after the job is done (default 2 s). */
  logDrainMs?: number;
  /** Clock for the manifest's `committedAt` (default `new Date()`). */
  now?: () => Date;
}

function readMetrics(text: string, where: string): Record<string, number> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new Error(`kube: ${where}: not JSON (${error instanceof Error ? error.message : String(error)})`, { cause: error });
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error(`kube: ${where}: must be a JSON object of numbers`);
  return Object.fromEntries(Object.entries(parsed as Record<string, unknown>).filter((e): e is [string, number] => typeof e[1] === 'number' && Number.isFinite(e[1])));
}

async function streamToBuffer(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string));
  return Buffer.concat(chunks);
}

export class KubeJobRunner implements ClusterJobRunner {
  constructor(private readonly options: KubeJobRunnerOptions) {}

  async run(request: ClusterJobRequest): Promise<ClusterJobResult> {
    const { kube } = this.options;
    const ref = refOf(request.manifest);
    const status = (line: string) => request.onStatus?.(line);
    request.signal?.throwIfAborted();
    const outputDir = volumePath(request.mountPath, request.outputDir);
    const applied = await kube.apply(request.manifest);
    status(`submitted ${describeRef(ref)} (uid ${applied.metadata.uid ?? '?'}) to ${kube.describe()}`);

    const logs = new AbortController();
    const stopLogs = () => logs.abort();
    request.signal?.addEventListener('abort', stopLogs, { once: true });
    const following = kube
      .streamLogs(logTarget(ref), { signal: logs.signal, onLine: (line) => request.onLog?.(line) })
      .catch((error: unknown) => status(`${describeRef(ref)}: log stream stopped: ${error instanceof Error ? error.message : String(error)}`));
    let final;
    try {
      final = await kube.watchUntilDone(ref, { signal: request.signal, onEvent: (event) => status(`${describeRef(ref)}: ${event.state.summary}`) });
    } catch (error) {
      if (request.signal?.aborted) {
        status(`cancelled: deleting ${describeRef(ref)}`);
        await kube.delete(ref);
      }
      throw error;
    } finally {
      // Lines still in flight when the job is done arrive within the drain; then the stream stops.
      const drain = setTimeout(stopLogs, this.options.logDrainMs ?? 2000);
      await following;
      clearTimeout(drain);
      request.signal?.removeEventListener('abort', stopLogs);
    }

    status(`${describeRef(ref)} succeeded; copying ${request.outputDir} from ${this.options.volume.describe()}`);
    const { artifacts, metrics } = await this.ingest(request, outputDir);
    const submitted = { kind: ref.kind, namespace: ref.namespace, name: ref.name, ...(applied.metadata.uid ? { uid: applied.metadata.uid } : {}) };
    artifacts.push(await this.options.store.putObject(request.runId, request.stage, 'cluster/job.yaml', manifestsToYaml([request.manifest]), 'application/yaml'));
    artifacts.push(await this.options.store.putObject(request.runId, request.stage, 'cluster/status.json', JSON.stringify({ ...submitted, status: final.object.status ?? {} }, null, 2) + '\n', 'application/json'));
    const { stage, instance } = splitInstanceId(request.stage);
    const manifest: StageManifest = {
      version: 1,
      runId: request.runId,
      stage,
      ...(instance ? { instance } : {}),
      committedAt: (this.options.now ?? (() => new Date()))().toISOString(),
      artifacts,
      result: { job: submitted, jobKind: request.kind, checkpoint: request.outputDir, metrics, files: artifacts.map((a) => a.name) },
    };
    return { submitted, metrics, manifest };
  }

  private async ingest(request: ClusterJobRequest, outputDir: string): Promise<{ artifacts: ArtifactEntry[]; metrics: Record<string, number> }> {
    const { volume, store } = this.options;
    const files = await volume.list(outputDir);
    if (files.length === 0) {
      throw new Error(`kube: ${request.manifest.kind} ${request.manifest.metadata.name} succeeded but wrote nothing under ${request.outputDir} (${outputDir} on ${volume.describe()})`);
    }
    const artifacts: ArtifactEntry[] = [];
    let metrics: Record<string, number> = {};
    for (const file of files) {
      const name = file.path.slice(outputDir.length).replace(/^\/+/, '');
      if (name === METRICS_FILE) {
        const bytes = await streamToBuffer(await volume.read(file.path));
        metrics = readMetrics(bytes.toString('utf8'), `${request.outputDir}/${METRICS_FILE}`);
        artifacts.push(await store.putObject(request.runId, request.stage, `checkpoint/${name}`, bytes, 'application/json'));
        continue;
      }
      artifacts.push(await store.putObject(request.runId, request.stage, `checkpoint/${name}`, await volume.read(file.path)));
    }
    return { artifacts, metrics };
  }
}
