/**
 * A Kubernetes API server for tests, over real HTTP, speaking the REST protocol the cluster engine
 * uses for its two job kinds and their pods — what `@kubernetes/client-node` sends and reads:
 *
 * - discovery: `GET /apis/ray.io/v1`, `GET /apis/kubeflow.org/v1` (`APIResourceList`, which
 *   `KubernetesObjectApi` reads to find a kind's plural and scope);
 * - `/apis/ray.io/v1/namespaces/{ns}/rayjobs[/{name}]` and
 *   `/apis/kubeflow.org/v1/namespaces/{ns}/pytorchjobs[/{name}]`: `POST` create (`409 AlreadyExists`
 *   on an existing name), `PATCH` server-side apply (`application/apply-patch+yaml`, `fieldManager`
 *   required; another manager's different values without `force=true` are a `409 Conflict`, as in
 *   the API server's field ownership), `GET`, `GET ?watch=true` (newline-delimited
 *   `{"type":"ADDED|MODIFIED|DELETED|ERROR","object":…}` from `resourceVersion`; a version older
 *   than the compacted history gets the `ERROR` event with a `410 Expired` `Status`), `DELETE` (the
 *   `propagationPolicy` is recorded);
 * - `GET /api/v1/namespaces/{ns}/pods?labelSelector=` and
 *   `GET /api/v1/namespaces/{ns}/pods/{name}/log?container=&follow=true` (chunked text).
 *
 * Every request needs `Authorization: Bearer <token>`; errors are `Status` objects. The operator's
 * part is played by the test: a created job gets the pod its operator would make (the RayJob's
 * submitter `job-name=<name>`, the PyTorchJob's master), and `setStatus`, `log`, `endLog`,
 * `dropWatches` and `compact` script the rest.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parse as parseYaml } from 'yaml';

interface Resource {
  group: string;
  version: string;
  kind: string;
  plural: string;
}

const RESOURCES: Resource[] = [
  { group: 'ray.io', version: 'v1', kind: 'RayJob', plural: 'rayjobs' },
  { group: 'kubeflow.org', version: 'v1', kind: 'PyTorchJob', plural: 'pytorchjobs' },
];

type Json = Record<string, unknown>;

export interface FakeObject extends Json {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string; uid: string; resourceVersion: string; generation: number; creationTimestamp: string; labels?: Record<string, string>; [k: string]: unknown };
  spec?: Json;
  status?: Json;
}

interface StoredEvent {
  rv: number;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  plural: string;
  namespace: string;
  object: FakeObject;
}

interface Watcher {
  plural: string;
  namespace: string;
  name?: string;
  response: ServerResponse;
}

interface FakePod {
  namespace: string;
  name: string;
  labels: Record<string, string>;
  container: string;
  lines: string[];
  ended: boolean;
  followers: Set<ServerResponse>;
}

/** One request the server answered, for assertions. */
export interface FakeRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  contentType?: string;
  status: number;
}

export interface FakeKubeApi {
  url: string;
  token: string;
  /** A kubeconfig (YAML) for this server: http (`insecure-skip-tls-verify`, which client-node requires for http), bearer token, namespace `default`. */
  kubeconfig: string;
  requests: FakeRequest[];
  /** `DELETE` requests with the propagation policy each asked for. */
  deletes: { plural: string; namespace: string; name: string; propagationPolicy?: string }[];
  get(plural: string, namespace: string, name: string): FakeObject | undefined;
  /** Resolves once the object exists (the engine submitted it). */
  waitFor(plural: string, namespace: string, name: string, timeoutMs?: number): Promise<FakeObject>;
  /** Replaces the object's `status` (as its operator would) and sends `MODIFIED` to the watchers. */
  setStatus(plural: string, namespace: string, name: string, status: Json): FakeObject;
  /** Puts an object in place as another client would (e.g. a job of another run under the same name). */
  seed(object: { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> }; spec?: Json }): FakeObject;
  pods(): { namespace: string; name: string; labels: Record<string, string>; container: string }[];
  /** Appends log lines to the job's pod (its followers get them at once). */
  log(namespace: string, pod: string, ...lines: string[]): void;
  /** The pod's container exits: followers' streams end. */
  endLog(namespace: string, pod: string): void;
  /** Closes every open watch connection mid-stream, as a load balancer or API server restart does. */
  dropWatches(): number;
  /** Forgets the event history up to now: a watch resuming from an older `resourceVersion` gets `410 Expired`. */
  compact(): void;
  openWatches(): number;
  stop(): Promise<void>;
}

function status(code: number, reason: string, message: string, details?: Json): Json {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, ...(details ? { details } : {}), code };
}

function send(response: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  response.end(text);
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function parseSelector(selector: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const term of (selector ?? '').split(',').filter(Boolean)) {
    const [key, value] = term.split('=');
    out[key] = value ?? '';
  }
  return out;
}

function matches(labels: Record<string, string>, selector: Record<string, string>): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

function clone<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

/** The fields a manager sets, as dotted paths with their values (a much smaller model of managedFields). */
function ownedFields(value: unknown, prefix = ''): Map<string, string> {
  const out = new Map<string, string>();
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value as Json)) for (const [p, x] of ownedFields(v, prefix ? `${prefix}.${k}` : k)) out.set(p, x);
  } else {
    out.set(prefix, JSON.stringify(value));
  }
  return out;
}

export async function startFakeKubeApi(options: { token?: string } = {}): Promise<FakeKubeApi> {
  const token = options.token ?? randomBytes(16).toString('hex');
  const objects = new Map<string, FakeObject>();
  const managers = new Map<string, Map<string, Map<string, string>>>();
  let history: StoredEvent[] = [];
  let compactedThrough = 0;
  let revision = 100;
  const watchers = new Set<Watcher>();
  const pods = new Map<string, FakePod>();
  const requests: FakeRequest[] = [];
  const deletes: FakeKubeApi['deletes'] = [];
  const waiters: { key: string; resolve: (o: FakeObject) => void }[] = [];
  const keyOf = (plural: string, namespace: string, name: string) => `${plural}/${namespace}/${name}`;

  function emit(type: StoredEvent['type'], plural: string, object: FakeObject): void {
    const event: StoredEvent = { rv: Number(object.metadata.resourceVersion), type, plural, namespace: object.metadata.namespace, object: clone(object) };
    history.push(event);
    for (const w of watchers) {
      if (w.plural === plural && w.namespace === event.namespace && (!w.name || w.name === object.metadata.name)) {
        w.response.write(JSON.stringify({ type, object: event.object }) + '\n');
      }
    }
  }

  function addPodFor(object: FakeObject): void {
    const { namespace, name } = object.metadata;
    const pod: FakePod =
      object.kind === 'RayJob'
        ? { namespace, name: `${name}-${randomBytes(3).toString('hex').slice(0, 5)}`, labels: { 'job-name': name, 'batch.kubernetes.io/job-name': name }, container: 'ray-job-submitter', lines: [], ended: false, followers: new Set() }
        : {
            namespace,
            name: `${name}-master-0`,
            labels: { 'training.kubeflow.org/job-name': name, 'training.kubeflow.org/replica-type': 'master', 'training.kubeflow.org/replica-index': '0' },
            container: 'pytorch',
            lines: [],
            ended: false,
            followers: new Set(),
          };
    pods.set(`${namespace}/${pod.name}`, pod);
  }

  function create(resource: Resource, namespace: string, body: Json, fieldManager: string | undefined): FakeObject {
    const meta = (body.metadata ?? {}) as Json;
    const object = {
      ...clone(body),
      apiVersion: `${resource.group}/${resource.version}`,
      kind: resource.kind,
      metadata: {
        ...clone(meta),
        name: String(meta.name),
        namespace,
        uid: randomUUID(),
        resourceVersion: String(++revision),
        generation: 1,
        creationTimestamp: new Date().toISOString(),
      },
    } as FakeObject;
    delete object.status;
    const key = keyOf(resource.plural, namespace, object.metadata.name);
    objects.set(key, object);
    managers.set(key, new Map([[fieldManager ?? 'unknown', ownedFields({ metadata: { labels: meta.labels ?? {} }, spec: body.spec ?? {} })]]));
    emit('ADDED', resource.plural, object);
    addPodFor(object);
    for (const w of waiters.filter((x) => x.key === key)) w.resolve(clone(object));
    return object;
  }

  function matchPath(path: string): { resource?: Resource; discovery?: Resource[]; namespace?: string; name?: string; pods?: true; podName?: string; podLog?: true } | undefined {
    const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
    if (parts[0] === 'apis') {
      const group = parts[1];
      const version = parts[2];
      const inGroup = RESOURCES.filter((r) => r.group === group && r.version === version);
      if (inGroup.length === 0) return undefined;
      if (parts.length === 3) return { discovery: inGroup };
      if (parts[3] !== 'namespaces' || parts.length < 6 || parts.length > 7) return undefined;
      const resource = inGroup.find((r) => r.plural === parts[5]);
      return resource ? { resource, namespace: parts[4], name: parts[6] } : undefined;
    }
    if (parts[0] === 'api' && parts[1] === 'v1' && parts[2] === 'namespaces' && parts[4] === 'pods') {
      if (parts.length === 5) return { pods: true, namespace: parts[3] };
      if (parts.length === 6) return { pods: true, namespace: parts[3], podName: parts[5] };
      if (parts.length === 7 && parts[6] === 'log') return { podLog: true, namespace: parts[3], podName: parts[5] };
    }
    return undefined;
  }

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://fake');
    const query = Object.fromEntries(url.searchParams.entries());
    const method = request.method ?? 'GET';
    // Recorded on arrival (watches and log follows stay open); the status is filled in once sent.
    const record: FakeRequest = { method, path: url.pathname, query, contentType: request.headers['content-type'], status: 0 };
    requests.push(record);
    const sent = () => (record.status = response.statusCode);
    response.on('finish', sent);
    response.on('close', sent);
    if (request.headers.authorization !== `Bearer ${token}`) return send(response, 401, status(401, 'Unauthorized', 'Unauthorized'));
    const route = matchPath(url.pathname);
    if (!route) return send(response, 404, status(404, 'NotFound', `the server could not find the requested resource (${method} ${url.pathname})`));

    if (route.discovery) {
      const [first] = route.discovery;
      return send(response, 200, {
        kind: 'APIResourceList',
        apiVersion: 'v1',
        groupVersion: `${first.group}/${first.version}`,
        resources: route.discovery.map((r) => ({ name: r.plural, singularName: r.kind.toLowerCase(), namespaced: true, kind: r.kind, verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'] })),
      });
    }

    if (route.pods && !route.podName) {
      if (method !== 'GET') return send(response, 405, status(405, 'MethodNotAllowed', `${method} is not supported on pods here`));
      const selector = parseSelector(query.labelSelector);
      const items = [...pods.values()]
        .filter((p) => p.namespace === route.namespace && matches(p.labels, selector))
        .map((p) => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name: p.name, namespace: p.namespace, labels: p.labels }, spec: { containers: [{ name: p.container, image: 'fake' }] }, status: { phase: p.ended ? 'Succeeded' : 'Running' } }));
      return send(response, 200, { kind: 'PodList', apiVersion: 'v1', metadata: { resourceVersion: String(revision) }, items });
    }

    if (route.podLog) {
      const pod = pods.get(`${route.namespace}/${route.podName}`);
      if (!pod) return send(response, 404, status(404, 'NotFound', `pods "${route.podName}" not found`, { name: route.podName, kind: 'pods' }));
      if (query.container && query.container !== pod.container) {
        return send(response, 400, status(400, 'BadRequest', `container ${query.container} is not valid for pod ${pod.name}`));
      }
      response.writeHead(200, { 'content-type': 'text/plain', 'transfer-encoding': 'chunked' });
      response.flushHeaders();
      if (pod.lines.length > 0) response.write(pod.lines.map((l) => `${l}\n`).join(''));
      if (query.follow !== 'true' || pod.ended) return void response.end();
      pod.followers.add(response);
      response.on('close', () => pod.followers.delete(response));
      return;
    }

    const resource = route.resource;
    if (!resource || !route.namespace) return send(response, 404, status(404, 'NotFound', `no route for ${url.pathname}`));
    const namespace = route.namespace;
    const notFound = (name: string) => status(404, 'NotFound', `${resource.plural}.${resource.group} "${name}" not found`, { name, group: resource.group, kind: resource.plural });

    if (!route.name) {
      if (method === 'POST') {
        const body = JSON.parse(await readBody(request)) as Json;
        const name = String((body.metadata as Json | undefined)?.name ?? '');
        if (!name) return send(response, 422, status(422, 'Invalid', `${resource.kind}.${resource.group} "": metadata.name: Required value`));
        if (objects.has(keyOf(resource.plural, namespace, name))) {
          return send(response, 409, status(409, 'AlreadyExists', `${resource.plural}.${resource.group} "${name}" already exists`, { name, group: resource.group, kind: resource.plural }));
        }
        return send(response, 201, create(resource, namespace, body, query.fieldManager));
      }
      if (method !== 'GET') return send(response, 405, status(405, 'MethodNotAllowed', `${method} on a collection`));
      const fieldSelector = parseSelector(query.fieldSelector);
      const name = fieldSelector['metadata.name'];
      if (query.watch === 'true' || query.watch === '1') {
        response.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
        // The API server answers a watch at once, before any event.
        response.flushHeaders();
        const selected = (o: FakeObject) => o.metadata.namespace === namespace && (!name || o.metadata.name === name);
        if (query.resourceVersion === undefined || query.resourceVersion === '') {
          for (const [key, o] of objects) if (key.startsWith(`${resource.plural}/`) && selected(o)) response.write(JSON.stringify({ type: 'ADDED', object: o }) + '\n');
        } else {
          const from = Number(query.resourceVersion);
          if (from < compactedThrough) {
            response.write(JSON.stringify({ type: 'ERROR', object: status(410, 'Expired', `too old resource version: ${from} (${compactedThrough})`) }) + '\n');
            return void response.end();
          }
          for (const e of history) if (e.rv > from && e.plural === resource.plural && selected(e.object)) response.write(JSON.stringify({ type: e.type, object: e.object }) + '\n');
        }
        const watcher: Watcher = { plural: resource.plural, namespace, name, response };
        watchers.add(watcher);
        response.on('close', () => watchers.delete(watcher));
        return;
      }
      const items = [...objects.entries()].filter(([key, o]) => key.startsWith(`${resource.plural}/`) && o.metadata.namespace === namespace && (!name || o.metadata.name === name)).map(([, o]) => o);
      return send(response, 200, { apiVersion: `${resource.group}/${resource.version}`, kind: `${resource.kind}List`, metadata: { resourceVersion: String(revision) }, items });
    }

    const key = keyOf(resource.plural, namespace, route.name);
    const existing = objects.get(key);
    if (method === 'GET') return existing ? send(response, 200, existing) : send(response, 404, notFound(route.name));
    if (method === 'DELETE') {
      const body = await readBody(request);
      const options = body ? (JSON.parse(body) as Json) : {};
      deletes.push({ plural: resource.plural, namespace, name: route.name, propagationPolicy: query.propagationPolicy ?? (options.propagationPolicy as string | undefined) });
      if (!existing) return send(response, 404, notFound(route.name));
      objects.delete(key);
      managers.delete(key);
      existing.metadata.resourceVersion = String(++revision);
      emit('DELETED', resource.plural, existing);
      for (const [podKey, pod] of pods) {
        if (pod.namespace === namespace && Object.values(pod.labels).includes(route.name)) {
          for (const f of pod.followers) f.end();
          pods.delete(podKey);
        }
      }
      return send(response, 200, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: { name: route.name, group: resource.group, kind: resource.plural, uid: existing.metadata.uid } });
    }
    if (method === 'PATCH') {
      const contentType = (request.headers['content-type'] ?? '').split(';')[0].trim();
      if (contentType !== 'application/apply-patch+yaml') {
        return send(response, 415, status(415, 'UnsupportedMediaType', `the fake API server takes server-side apply only (got ${contentType || 'no content type'})`));
      }
      const manager = query.fieldManager;
      if (!manager) return send(response, 400, status(400, 'BadRequest', 'PATCH, fieldManager is required for apply requests'));
      const body = parseYaml(await readBody(request)) as Json;
      const meta = (body.metadata ?? {}) as Json;
      if (meta.name !== route.name) return send(response, 400, status(400, 'BadRequest', `the name of the object (${String(meta.name)}) does not match the name on the URL (${route.name})`));
      if (!existing) return send(response, 201, create(resource, namespace, body, manager));
      const applied = ownedFields({ metadata: { labels: meta.labels ?? {} }, spec: body.spec ?? {} });
      const owners = managers.get(key) ?? new Map<string, Map<string, string>>();
      const conflicts: string[] = [];
      for (const [other, fields] of owners) {
        if (other === manager) continue;
        for (const [path, value] of applied) if (fields.has(path) && fields.get(path) !== value) conflicts.push(`.${path} (owned by "${other}")`);
      }
      if (conflicts.length > 0 && query.force !== 'true') {
        return send(response, 409, status(409, 'Conflict', `Apply failed with ${conflicts.length} conflict${conflicts.length === 1 ? '' : 's'}: conflicts with ${conflicts.slice(0, 5).join(', ')}`));
      }
      const before = JSON.stringify({ spec: existing.spec, labels: existing.metadata.labels });
      existing.spec = clone((body.spec ?? {}) as Json);
      existing.metadata.labels = { ...(existing.metadata.labels ?? {}), ...((meta.labels as Record<string, string>) ?? {}) };
      owners.set(manager, applied);
      managers.set(key, owners);
      if (JSON.stringify({ spec: existing.spec, labels: existing.metadata.labels }) !== before) {
        existing.metadata.generation += 1;
        existing.metadata.resourceVersion = String(++revision);
        emit('MODIFIED', resource.plural, existing);
      }
      return send(response, 200, existing);
    }
    return send(response, 405, status(405, 'MethodNotAllowed', `${method} is not supported`));
  }

  const server: Server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      if (!response.headersSent) send(response, 500, status(500, 'InternalError', error instanceof Error ? error.message : String(error)));
      else response.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const kubeconfig = [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '  - name: fake',
    '    cluster:',
    `      server: ${url}`,
    // client-node refuses plain http unless TLS verification is off for the cluster.
    '      insecure-skip-tls-verify: true',
    'users:',
    '  - name: tester',
    '    user:',
    `      token: ${token}`,
    'contexts:',
    '  - name: fake',
    '    context:',
    '      cluster: fake',
    '      user: tester',
    '      namespace: default',
    'current-context: fake',
    '',
  ].join('\n');

  const requireObject = (plural: string, namespace: string, name: string): FakeObject => {
    const object = objects.get(keyOf(plural, namespace, name));
    if (!object) throw new Error(`fake kube API: no ${plural} ${namespace}/${name}`);
    return object;
  };
  const requirePod = (namespace: string, name: string): FakePod => {
    const pod = pods.get(`${namespace}/${name}`);
    if (!pod) throw new Error(`fake kube API: no pod ${namespace}/${name}`);
    return pod;
  };

  return {
    url,
    token,
    kubeconfig,
    requests,
    deletes,
    get: (plural, namespace, name) => {
      const o = objects.get(keyOf(plural, namespace, name));
      return o ? clone(o) : undefined;
    },
    waitFor(plural, namespace, name, timeoutMs = 10_000) {
      const key = keyOf(plural, namespace, name);
      const found = objects.get(key);
      if (found) return Promise.resolve(clone(found));
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`fake kube API: ${key} was not created within ${timeoutMs} ms`)), timeoutMs);
        waiters.push({ key, resolve: (o) => (clearTimeout(timer), resolve(o)) });
      });
    },
    setStatus(plural, namespace, name, next) {
      const object = requireObject(plural, namespace, name);
      object.status = clone(next);
      object.metadata.resourceVersion = String(++revision);
      emit('MODIFIED', plural, object);
      return clone(object);
    },
    seed(input) {
      const resource = RESOURCES.find((r) => r.kind === input.kind && `${r.group}/${r.version}` === input.apiVersion);
      if (!resource) throw new Error(`fake kube API: ${input.apiVersion} ${input.kind} is not served`);
      return clone(create(resource, input.metadata.namespace ?? 'default', input as unknown as Json, 'kubectl'));
    },
    pods: () => [...pods.values()].map((p) => ({ namespace: p.namespace, name: p.name, labels: p.labels, container: p.container })),
    log(namespace, podName, ...lines) {
      const pod = requirePod(namespace, podName);
      pod.lines.push(...lines);
      for (const f of pod.followers) f.write(lines.map((l) => `${l}\n`).join(''));
    },
    endLog(namespace, podName) {
      const pod = requirePod(namespace, podName);
      pod.ended = true;
      for (const f of pod.followers) f.end();
      pod.followers.clear();
    },
    dropWatches() {
      const n = watchers.size;
      for (const w of watchers) w.response.destroy();
      watchers.clear();
      return n;
    },
    compact() {
      compactedThrough = revision;
      history = [];
    },
    openWatches: () => watchers.size,
    async stop() {
      for (const w of watchers) w.response.destroy();
      for (const p of pods.values()) for (const f of p.followers) f.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
