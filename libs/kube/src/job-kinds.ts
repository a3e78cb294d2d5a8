/**
 * The two job kinds the cluster engine submits, and how their status reads:
 *
 * - KubeRay `RayJob` (`ray.io/v1`, `rayjob_types.go`): `status.jobStatus` is the Ray job's own state
 *   (`PENDING`, `RUNNING`, `STOPPED`, `SUCCEEDED`, `FAILED`; the last three are terminal) and
 *   `status.jobDeploymentStatus` the operator's (`Initializing`, `Running`, `Complete`, `Failed`,
 *   `Suspended`, …). `jobDeploymentStatus: Failed` with no terminal `jobStatus` is a failure too (the
 *   cluster never came up, the submitter failed, `activeDeadlineSeconds` passed); `status.reason` and
 *   `status.message` say why. The K8sJobMode submitter is a batch Job named after the RayJob: its pod
 *   has `job-name=<name>` and the container `ray-job-submitter`, which follows the entrypoint's logs.
 * - Kubeflow `PyTorchJob` (`kubeflow.org/v1`, `common_types.go`): `status.conditions[]` of type
 *   `Created`, `Running`, `Restarting`, `Succeeded`, `Failed`, `Suspended`; the job is done when a
 *   `Succeeded` or `Failed` condition has `status: "True"` (its `reason`, `message`). The master pod has
 *   `training.kubeflow.org/job-name=<name>` and `training.kubeflow.org/replica-type=master`; its
 *   container is `pytorch`.
 */
import type { KubernetesObject } from '@xyp/contracts';

export type JobKindName = 'RayJob' | 'PyTorchJob';

export interface JobResource {
  kind: JobKindName;
  apiVersion: string;
  group: string;
  version: string;
  plural: string;
}

export const JOB_RESOURCES: Record<JobKindName, JobResource> = {
  RayJob: { kind: 'RayJob', apiVersion: 'ray.io/v1', group: 'ray.io', version: 'v1', plural: 'rayjobs' },
  PyTorchJob: { kind: 'PyTorchJob', apiVersion: 'kubeflow.org/v1', group: 'kubeflow.org', version: 'v1', plural: 'pytorchjobs' },
};

/** Which object: its kind, namespace and name. */
export interface JobRef {
  kind: JobKindName;
  namespace: string;
  name: string;
}

export function jobResource(kind: string, apiVersion?: string): JobResource {
  const resource = JOB_RESOURCES[kind as JobKindName];
  if (!resource || (apiVersion !== undefined && resource.apiVersion !== apiVersion)) {
    throw new Error(`kube: ${apiVersion ?? '?'} ${kind} is not a job kind the cluster engine submits (ray.io/v1 RayJob, kubeflow.org/v1 PyTorchJob)`);
  }
  return resource;
}

export function refOf(manifest: KubernetesObject): JobRef {
  const resource = jobResource(manifest.kind, manifest.apiVersion);
  if (!manifest.metadata?.name) throw new Error(`kube: ${manifest.kind}: metadata.name is required`);
  return { kind: resource.kind, namespace: manifest.metadata.namespace ?? 'default', name: manifest.metadata.name };
}

export function describeRef(ref: JobRef): string {
  return `${ref.kind} ${ref.namespace}/${ref.name}`;
}

/** `/apis/<group>/<version>/namespaces/<ns>/<plural>`, the collection a watch follows. */
export function collectionPath(ref: Pick<JobRef, 'kind' | 'namespace'>): string {
  const r = JOB_RESOURCES[ref.kind];
  return `/apis/${r.group}/${r.version}/namespaces/${encodeURIComponent(ref.namespace)}/${r.plural}`;
}

export type JobPhase = 'pending' | 'running' | 'succeeded' | 'failed';

/** A job's state as read from its status; `summary` is what a person reads in the stage events. */
export interface JobState {
  phase: JobPhase;
  /** The controller's reason, e.g. `AppFailed`, `DeadlineExceeded`, `PyTorchJobFailed`. */
  reason?: string;
  message?: string;
  summary: string;
}

interface RayJobStatus {
  jobStatus?: string;
  jobDeploymentStatus?: string;
  reason?: string;
  message?: string;
}

interface Condition {
  type?: string;
  status?: string;
  reason?: string;
  message?: string;
}

function summarise(parts: (string | undefined)[]): string {
  return parts.filter((p): p is string => p !== undefined && p !== '').join(', ');
}

export function rayJobState(status: RayJobStatus | undefined): JobState {
  const s = status ?? {};
  const reason = s.reason || undefined;
  const message = s.message || undefined;
  const summary = summarise([`jobStatus ${s.jobStatus || '(none)'}`, `jobDeploymentStatus ${s.jobDeploymentStatus || '(none)'}`, reason, message]);
  if (s.jobStatus === 'SUCCEEDED') return { phase: 'succeeded', reason, message, summary };
  // STOPPED: the Ray job was stopped (`ray job stop`) before it finished; nothing was trained to the end.
  if (s.jobStatus === 'FAILED' || s.jobStatus === 'STOPPED' || s.jobDeploymentStatus === 'Failed') return { phase: 'failed', reason, message, summary };
  if (s.jobStatus === 'RUNNING' || s.jobDeploymentStatus === 'Running') return { phase: 'running', reason, message, summary };
  return { phase: 'pending', reason, message, summary };
}

export function pyTorchJobState(status: { conditions?: Condition[] } | undefined): JobState {
  const conditions = status?.conditions ?? [];
  const holds = (type: string) => conditions.find((c) => c.type === type && c.status === 'True');
  const last = [...conditions].reverse().find((c) => c.status === 'True');
  const done = holds('Failed') ?? holds('Succeeded');
  const shown = done ?? last;
  const summary = shown ? summarise([`condition ${shown.type}`, shown.reason, shown.message]) : 'no condition yet';
  if (done) return { phase: done.type === 'Failed' ? 'failed' : 'succeeded', reason: done.reason, message: done.message, summary };
  if (holds('Running')) return { phase: 'running', reason: last?.reason, message: last?.message, summary };
  return { phase: 'pending', reason: last?.reason, message: last?.message, summary };
}

export function jobState(kind: JobKindName, object: { status?: unknown } | undefined): JobState {
  const status = object?.status as Record<string, unknown> | undefined;
  return kind === 'RayJob' ? rayJobState(status as RayJobStatus | undefined) : pyTorchJobState(status as { conditions?: Condition[] } | undefined);
}

/** The pod whose logs are the job's: the RayJob's submitter (it follows the entrypoint), the PyTorchJob's master. */
export interface LogTarget {
  namespace: string;
  labelSelector: string;
  container: string;
}

export function logTarget(ref: JobRef): LogTarget {
  return ref.kind === 'RayJob'
    ? { namespace: ref.namespace, labelSelector: `job-name=${ref.name}`, container: 'ray-job-submitter' }
    : { namespace: ref.namespace, labelSelector: `training.kubeflow.org/job-name=${ref.name},training.kubeflow.org/replica-type=master`, container: 'pytorch' };
}
