/**
 * The cluster engine as a service builds it from its validated settings (`clusterSettings` of
 * `@xyp/config`): one Kubernetes client for the process, and per stage job a `ClusterEngine` whose
 * runner copies outputs into that job's store. Also puts a stage's inputs on the shared volume, where
 * the job's pods read them.
 */
import { Readable } from 'node:stream';
import { ClusterEngine } from '@xyp/cluster';
import { stageFolder } from '@xyp/contracts';
import type { ArtifactStore } from '@xyp/storage';
import { KubeJobs } from './kube-jobs';
import { KubeJobRunner } from './kube-job-runner';
import { DirectoryVolume, S3Volume, type SharedVolume, type VolumeBody } from './shared-volume';

export interface ClusterTrainingSettings {
  dryRun: boolean;
  kubeconfigPath?: string;
  resources: { namespace: string; image?: string; gpusPerNode: number; volumeClaim: string; mountPath: string };
  baseModel?: string;
  volume?: { kind: 'directory'; root: string } | { kind: 's3'; endPoint: string; port: number; useSSL: boolean; accessKey: string; secretKey: string; region: string; bucket: string; prefix: string };
}

export class ClusterTraining {
  private constructor(
    readonly settings: ClusterTrainingSettings,
    private readonly kube: KubeJobs | undefined,
    private readonly volume: SharedVolume | undefined,
  ) {}

  /** Connects (reads the kubeconfig or the service account) unless dry run. */
  static async create(settings: ClusterTrainingSettings): Promise<ClusterTraining> {
    if (settings.dryRun) return new ClusterTraining(settings, undefined, undefined);
    if (!settings.volume) throw new Error('kube: submitting cluster jobs needs the shared volume (XYP_CLUSTER_VOLUME)');
    const kube = await KubeJobs.connect({ kubeconfigPath: settings.kubeconfigPath });
    const volume = settings.volume.kind === 'directory' ? new DirectoryVolume(settings.volume.root) : new S3Volume(settings.volume);
    return new ClusterTraining(settings, kube, volume);
  }

  get dryRun(): boolean {
    return this.kube === undefined;
  }

  describe(): string {
    return this.kube && this.volume ? `cluster engine: ${this.kube.describe()}, shared volume ${this.volume.describe()}` : 'cluster engine: dry run (manifests rendered and validated, nothing submitted)';
  }

  /** The engine for one stage job: its outputs go to `store` (the job's `context.store`). */
  engineFor(store: Pick<ArtifactStore, 'putObject'>): ClusterEngine {
    if (!this.kube || !this.volume) return new ClusterEngine({ dryRun: true });
    return new ClusterEngine({ dryRun: false, runner: new KubeJobRunner({ kube: this.kube, volume: this.volume, store }) });
  }

  /**
   * Writes a stage input to `inputs/<runId>/<stage folder>/<name>` on the shared volume and returns
   * its path in the job's pods; a stream body is copied through, never held whole. In dry run nothing
   * is written (a stream is closed unread); the path is what a submission would use.
   */
  async stageInput(runId: string, stage: string, name: string, body: VolumeBody): Promise<string> {
    const relative = `inputs/${runId}/${stageFolder(stage)}/${name}`;
    if (this.volume) await this.volume.write(relative, body);
    else if (body instanceof Readable) body.destroy();
    return `${this.settings.resources.mountPath.replace(/\/+$/, '')}/${relative}`;
  }
}

/** `ClusterTraining.create(settings)`, or null for the local engine (no settings). */
export async function clusterTrainingFor(settings: ClusterTrainingSettings | undefined): Promise<ClusterTraining | null> {
  return settings ? ClusterTraining.create(settings) : null;
}
