import { z } from 'zod';
import { envBool, envInt } from './load-config';
import type { PlatformEnv } from './platform-config';

/**
 * Where training jobs run (`XYP_TRAINING_ENGINE`) and, for the cluster engine (`@xyp/cluster`,
 * submitted by `@xyp/kube`), how: the kubeconfig, the jobs' image and shared volume, and where this
 * service reads that volume (`XYP_CLUSTER_VOLUME`: `s3://<bucket>/<prefix>` on the store's S3
 * endpoint and credentials, or a directory where it is mounted). Without a kubeconfig, outside a
 * pod, or with `XYP_CLUSTER_DRY_RUN`, jobs are rendered and validated only.
 */
export const ClusterEnv = z.object({
  XYP_TRAINING_ENGINE: z.enum(['local', 'cluster'], { error: 'must be local or cluster' }).default('local'),
  XYP_KUBECONFIG: z.string().min(1).optional(),
  /** Set in every pod: with it and no kubeconfig the service account's in-cluster config is used. */
  KUBERNETES_SERVICE_HOST: z.string().optional(),
  XYP_CLUSTER_DRY_RUN: envBool().default(false),
  XYP_CLUSTER_IMAGE: z.string().min(1).optional(),
  XYP_CLUSTER_NAMESPACE: z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be a DNS-1123 label').default('default'),
  XYP_CLUSTER_GPUS_PER_NODE: envInt(1, 64).default(8),
  XYP_CLUSTER_VOLUME_CLAIM: z.string().min(1).default('xyp-shared'),
  XYP_CLUSTER_MOUNT_PATH: z.string().startsWith('/', 'must be an absolute path').default('/data'),
  /** The base model reward-model jobs without an `init` start from (OpenRLHF `--pretrain`), on the volume. */
  XYP_CLUSTER_BASE_MODEL: z.string().min(1).optional(),
  XYP_CLUSTER_VOLUME: z.string().min(1).optional(),
});
export type ClusterEnv = z.output<typeof ClusterEnv>;

export type ClusterVolumeSettings =
  | { kind: 'directory'; root: string }
  | { kind: 's3'; endPoint: string; port: number; useSSL: boolean; accessKey: string; secretKey: string; region: string; bucket: string; prefix: string };

export interface ClusterSettings {
  dryRun: boolean;
  /** Unset: in-cluster service account. */
  kubeconfigPath?: string;
  resources: { namespace: string; image?: string; gpusPerNode: number; volumeClaim: string; mountPath: string };
  baseModel?: string;
  volume?: ClusterVolumeSettings;
}

/** The cluster engine's settings, or undefined for the local engine; a submitting setup missing a value names the variable. */
export function clusterSettings(env: ClusterEnv & Pick<PlatformEnv, 'XYP_S3_ENDPOINT' | 'XYP_S3_ACCESS_KEY' | 'XYP_S3_SECRET_KEY' | 'XYP_S3_REGION'>): ClusterSettings | undefined {
  if (env.XYP_TRAINING_ENGINE === 'local') return undefined;
  const dryRun = env.XYP_CLUSTER_DRY_RUN || (env.XYP_KUBECONFIG === undefined && !env.KUBERNETES_SERVICE_HOST);
  const resources = { namespace: env.XYP_CLUSTER_NAMESPACE, image: env.XYP_CLUSTER_IMAGE, gpusPerNode: env.XYP_CLUSTER_GPUS_PER_NODE, volumeClaim: env.XYP_CLUSTER_VOLUME_CLAIM, mountPath: env.XYP_CLUSTER_MOUNT_PATH };
  const base = { dryRun, ...(env.XYP_KUBECONFIG ? { kubeconfigPath: env.XYP_KUBECONFIG } : {}), resources, ...(env.XYP_CLUSTER_BASE_MODEL ? { baseModel: env.XYP_CLUSTER_BASE_MODEL } : {}) };
  if (dryRun) return base;
  if (!env.XYP_CLUSTER_IMAGE) throw new Error('invalid configuration: XYP_CLUSTER_IMAGE: required to submit cluster jobs (the OpenRLHF / Megatron-LM image)');
  const where = env.XYP_CLUSTER_VOLUME;
  if (!where) throw new Error('invalid configuration: XYP_CLUSTER_VOLUME: required to submit cluster jobs (s3://<bucket>/<prefix> backing the shared volume, or the directory it is mounted at)');
  if (!where.startsWith('s3://')) return { ...base, volume: { kind: 'directory', root: where } };
  const [bucket, ...prefix] = where.slice('s3://'.length).split('/');
  if (!bucket) throw new Error(`invalid configuration: XYP_CLUSTER_VOLUME: s3:// needs a bucket (got "${where}")`);
  const endpoint = new URL(env.XYP_S3_ENDPOINT);
  const useSSL = endpoint.protocol === 'https:';
  return {
    ...base,
    volume: { kind: 's3', endPoint: endpoint.hostname, port: Number(endpoint.port || (useSSL ? 443 : 80)), useSSL, accessKey: env.XYP_S3_ACCESS_KEY, secretKey: env.XYP_S3_SECRET_KEY, region: env.XYP_S3_REGION, bucket, prefix: prefix.join('/') },
  };
}
