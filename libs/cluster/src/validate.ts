/**
 * Validation of rendered manifests before anything reaches a cluster.
 *
 * - Pod templates and object metadata: the official Kubernetes OpenAPI schemas, through
 *   `kubernetes-models` (JSON schemas generated from the Kubernetes API's OpenAPI document; the
 *   package states Kubernetes 1.27). They check types, required fields and enums; like the API
 *   server's schema they accept unknown fields in core types.
 * - The custom resources (no schema package ships them): zod schemas that mirror the CRDs' Go
 *   types field for field — KubeRay `ray.io/v1` RayJob (`rayjob_types.go`, `raycluster_types.go`)
 *   and Kubeflow training-operator `kubeflow.org/v1` PyTorchJob (`pytorch_types.go`,
 *   `common_types.go`). They are strict: an unknown field is an error, as `kubectl apply` with
 *   `--validate=strict` reports it. Fields are required where the Go types lack `omitempty`.
 * - The controllers' own admission rules: PyTorchJob (`pytorch_validation.go`): DNS-1035 name, only
 *   `Master`/`Worker` replicas, each with a container named `pytorch` that has an image, one
 *   Master; RayJob: KubeRay refuses names longer than 47 characters (the RayCluster and its
 *   services derive their names from it).
 */
import { z } from 'zod';
import { PodTemplateSpec } from 'kubernetes-models/v1/PodTemplateSpec';
import type { KubernetesObject } from '@xyp/contracts';

export class ManifestValidationError extends Error {
  constructor(
    readonly object: string,
    readonly problems: string[],
  ) {
    super(`${object} is not valid: ${problems.join('; ')}`);
    this.name = 'ManifestValidationError';
  }
}

const int32 = z.number().int().min(-(2 ** 31)).max(2 ** 31 - 1);
const stringMap = z.record(z.string(), z.string());
/** Pod templates are checked against the Kubernetes schema separately; here they only need to be objects. */
const podTemplate = z.record(z.string(), z.unknown());

const RayWorkerGroupSpec = z.strictObject({
  groupName: z.string().min(1),
  replicas: int32.optional(),
  minReplicas: int32,
  maxReplicas: int32,
  numOfHosts: int32.optional(),
  rayStartParams: stringMap,
  template: podTemplate,
  scaleStrategy: z.strictObject({ workersToDelete: z.array(z.string()).optional() }).optional(),
});

const RayClusterSpec = z.strictObject({
  headGroupSpec: z.strictObject({
    serviceType: z.string().optional(),
    enableIngress: z.boolean().optional(),
    rayStartParams: stringMap,
    template: podTemplate,
  }),
  workerGroupSpecs: z.array(RayWorkerGroupSpec).optional(),
  rayVersion: z.string().optional(),
  enableInTreeAutoscaling: z.boolean().optional(),
  headServiceAnnotations: stringMap.optional(),
  suspend: z.boolean().optional(),
});

export const RayJobSpec = z.strictObject({
  activeDeadlineSeconds: int32.positive().optional(),
  backoffLimit: int32.nonnegative().optional(),
  rayClusterSpec: RayClusterSpec.optional(),
  submitterPodTemplate: podTemplate.optional(),
  metadata: stringMap.optional(),
  clusterSelector: stringMap.optional(),
  submitterConfig: z.strictObject({ backoffLimit: int32.optional() }).optional(),
  managedBy: z.enum(['ray.io/kuberay-operator', 'kueue.x-k8s.io/multikueue']).optional(),
  entrypoint: z.string().optional(),
  runtimeEnvYAML: z.string().optional(),
  jobId: z.string().optional(),
  submissionMode: z.enum(['K8sJobMode', 'HTTPMode', 'InteractiveMode']).optional(),
  entrypointResources: z.string().optional(),
  entrypointNumCpus: z.number().nonnegative().optional(),
  entrypointNumGpus: z.number().nonnegative().optional(),
  ttlSecondsAfterFinished: int32.nonnegative().optional(),
  shutdownAfterJobFinishes: z.boolean().optional(),
  suspend: z.boolean().optional(),
});

const ReplicaSpec = z.strictObject({
  replicas: int32.optional(),
  template: podTemplate,
  restartPolicy: z.enum(['Always', 'OnFailure', 'Never', 'ExitCode']).optional(),
});

export const PyTorchJobSpec = z.strictObject({
  runPolicy: z
    .strictObject({
      cleanPodPolicy: z.enum(['All', 'Running', 'None']).optional(),
      ttlSecondsAfterFinished: int32.optional(),
      activeDeadlineSeconds: z.number().int().positive().optional(),
      backoffLimit: int32.optional(),
      schedulingPolicy: z
        .strictObject({
          minAvailable: int32.optional(),
          queue: z.string().optional(),
          priorityClass: z.string().optional(),
          scheduleTimeoutSeconds: int32.optional(),
        })
        .optional(),
    })
    .optional(),
  elasticPolicy: z.record(z.string(), z.unknown()).optional(),
  pytorchReplicaSpecs: z.record(z.string(), ReplicaSpec),
  nprocPerNode: z.string().regex(/^(auto|cpu|gpu|[1-9][0-9]*)$/, 'auto, cpu, gpu or a positive integer').optional(),
});

const DNS1035 = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

function zodProblems(error: z.ZodError, prefix: string): string[] {
  return error.issues.map((i) => `${[prefix, ...i.path.map(String)].filter(Boolean).join('.')}: ${i.message}`);
}

/** Runs a kubernetes-models validator; its errors come from ajv with JSON-pointer paths. */
function schemaProblems(validate: () => void, prefix: string): string[] {
  try {
    validate();
    return [];
  } catch (error) {
    const errors = (error as { errors?: { instancePath?: string; message?: string }[] }).errors;
    if (!Array.isArray(errors)) return [`${prefix}: ${error instanceof Error ? error.message : String(error)}`];
    return errors.map((e) => `${`${prefix}${(e.instancePath ?? '').replace(/\//g, '.')}`.replace(/^\./, '')}: ${e.message ?? 'invalid'}`);
  }
}

function podTemplateProblems(template: unknown, at: string): string[] {
  return schemaProblems(() => new PodTemplateSpec(template as ConstructorParameters<typeof PodTemplateSpec>[0]).validate(), at);
}

function containersOf(template: unknown): { name?: unknown; image?: unknown }[] {
  const spec = (template as { spec?: { containers?: unknown } } | undefined)?.spec;
  return Array.isArray(spec?.containers) ? (spec.containers as { name?: unknown; image?: unknown }[]) : [];
}

function metadataProblems(object: KubernetesObject): string[] {
  // A pod template's metadata is the same ObjectMeta schema; validating one with only metadata set
  // checks the object's metadata without importing kubernetes-models' internal apimachinery package.
  const problems = schemaProblems(() => new PodTemplateSpec({ metadata: object.metadata }).validate(), '');
  if (!DNS1035.test(object.metadata.name) || object.metadata.name.length > 63) {
    problems.push(`metadata.name: "${object.metadata.name}" is not a DNS-1035 label (a-z, 0-9, '-', starting with a letter, at most 63 characters)`);
  }
  return problems;
}

export function rayJobProblems(object: KubernetesObject): string[] {
  const problems = metadataProblems(object);
  if (object.metadata.name.length > 47) problems.push(`metadata.name: KubeRay allows at most 47 characters for a RayJob (got ${object.metadata.name.length})`);
  const parsed = RayJobSpec.safeParse(object.spec);
  if (!parsed.success) return [...problems, ...zodProblems(parsed.error, 'spec')];
  const cluster = parsed.data.rayClusterSpec;
  if (!cluster && !parsed.data.clusterSelector) problems.push('spec.rayClusterSpec: required unless spec.clusterSelector picks an existing cluster');
  if (cluster) {
    problems.push(...podTemplateProblems(cluster.headGroupSpec.template, 'spec.rayClusterSpec.headGroupSpec.template'));
    if (containersOf(cluster.headGroupSpec.template).length === 0) problems.push('spec.rayClusterSpec.headGroupSpec.template.spec.containers: the head needs a container');
    (cluster.workerGroupSpecs ?? []).forEach((group, i) => {
      const at = `spec.rayClusterSpec.workerGroupSpecs[${i}]`;
      problems.push(...podTemplateProblems(group.template, `${at}.template`));
      if (group.minReplicas > group.maxReplicas) problems.push(`${at}: minReplicas ${group.minReplicas} exceeds maxReplicas ${group.maxReplicas}`);
      if (group.replicas !== undefined && (group.replicas < group.minReplicas || group.replicas > group.maxReplicas)) {
        problems.push(`${at}.replicas: ${group.replicas} is outside [minReplicas, maxReplicas]`);
      }
    });
  }
  if (parsed.data.submissionMode !== 'InteractiveMode' && !parsed.data.entrypoint) problems.push('spec.entrypoint: required unless submissionMode is InteractiveMode');
  return problems;
}

export function pyTorchJobProblems(object: KubernetesObject): string[] {
  const problems = metadataProblems(object);
  const parsed = PyTorchJobSpec.safeParse(object.spec);
  if (!parsed.success) return [...problems, ...zodProblems(parsed.error, 'spec')];
  for (const [type, replica] of Object.entries(parsed.data.pytorchReplicaSpecs)) {
    const at = `spec.pytorchReplicaSpecs.${type}`;
    if (type !== 'Master' && type !== 'Worker') problems.push(`${at}: replica type must be Master or Worker`);
    problems.push(...podTemplateProblems(replica.template, `${at}.template`));
    const containers = containersOf(replica.template);
    if (containers.length === 0) problems.push(`${at}.template.spec.containers: containers definition expected`);
    if (containers.some((c) => typeof c.image !== 'string' || c.image === '')) problems.push(`${at}.template.spec.containers: image is undefined in a container`);
    if (!containers.some((c) => c.name === 'pytorch')) problems.push(`${at}.template.spec.containers: there is no container named pytorch`);
    if (type === 'Master' && replica.replicas !== undefined && replica.replicas !== 1) problems.push(`${at}.replicas: there must be only 1 master replica`);
  }
  return problems;
}

/** Checks one rendered object; throws `ManifestValidationError` listing every problem found. */
export function validateManifest(object: KubernetesObject): void {
  const label = `${object.kind}/${object.metadata?.name ?? '(no name)'}`;
  let problems: string[];
  if (object.apiVersion === 'ray.io/v1' && object.kind === 'RayJob') problems = rayJobProblems(object);
  else if (object.apiVersion === 'kubeflow.org/v1' && object.kind === 'PyTorchJob') problems = pyTorchJobProblems(object);
  else problems = [`apiVersion/kind ${object.apiVersion} ${object.kind}: no schema here (RayJob ray.io/v1 and PyTorchJob kubeflow.org/v1 only)`];
  if (problems.length > 0) throw new ManifestValidationError(label, problems);
}
