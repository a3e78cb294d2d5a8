import { describe, expect, it } from 'vitest';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { RENDERINGS, label, render, type KubeObject } from './deploy-render';

/**
 * Every object `kubectl kustomize` renders from deploy/k8s, checked against the Kubernetes
 * API schemas: `kubernetes-models` (generated from the API server's OpenAPI document) for the
 * built-in kinds, `@kubernetes-models/keda` (from KEDA's Go types) for ScaledObject. They catch
 * wrong types (`replicas: "2"`, a threshold given as a number), missing required fields and
 * bad enum values. A kind with no schema here fails: add its model below, never skip it.
 */
type Model = new (data: never) => { validate(): void };

async function modelFor(apiVersion: string, kind: string): Promise<Model | undefined> {
  const builtIn: Record<string, Model> = {
    'v1/Namespace': Namespace,
    'v1/ConfigMap': ConfigMap,
    'v1/Secret': Secret,
    'v1/Service': Service,
    'v1/ServiceAccount': ServiceAccount,
    'apps/v1/Deployment': Deployment,
    'batch/v1/Job': Job,
    'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  };
  const key = `${apiVersion}/${kind}`;
  if (key === 'keda.sh/v1alpha1/ScaledObject') {
    // An ES module only: loaded with import(), which this CommonJS-compiled spec keeps as is.
    const { ScaledObject } = await import('@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject');
    return ScaledObject as unknown as Model;
  }
  return builtIn[key];
}

/** Every schema violation of one object, as `Kind/name: path: message`; empty when valid. */
async function schemaProblems(object: KubeObject): Promise<string[]> {
  const model = await modelFor(object.apiVersion, object.kind);
  if (!model) return [`${label(object)}: no schema for ${object.apiVersion} ${object.kind} (add its model to deploy-schemas.spec.ts)`];
  try {
    new model(object as never).validate();
    return [];
  } catch (error) {
    const errors = (error as { errors?: { instancePath?: string; message?: string }[] }).errors;
    if (!Array.isArray(errors)) return [`${label(object)}: ${error instanceof Error ? error.message : String(error)}`];
    return errors.map((e) => `${label(object)}: ${(e.instancePath ?? '').replace(/^\//, '').replace(/\//g, '.') || '(object)'}: ${e.message ?? 'invalid'}`);
  }
}

describe('deploy/k8s against the Kubernetes schemas', () => {
  it.each(RENDERINGS)('every object %s renders is valid for its kind', async (rendering) => {
    const objects = render(rendering);
    expect(objects.length).toBeGreaterThan(0);
    const problems = (await Promise.all(objects.map(schemaProblems))).flat();
    expect(problems, `${rendering}:\n${problems.join('\n')}`).toEqual([]);
  });

  it('refuses a kind it has no schema for', async () => {
    const problems = await schemaProblems({ apiVersion: 'monitoring.coreos.com/v1', kind: 'ServiceMonitor', metadata: { name: 'control-plane' } });
    expect(problems).toEqual(['ServiceMonitor/control-plane: no schema for monitoring.coreos.com/v1 ServiceMonitor (add its model to deploy-schemas.spec.ts)']);
  });

  it('names the field of a typo in a rendered object', async () => {
    const objects = render('base');
    const deployment = structuredClone(objects.find((o) => o.kind === 'Deployment' && o.metadata.name === 'corpus')!);
    (deployment.spec as { replicas: unknown }).replicas = '2';
    expect(await schemaProblems(deployment)).toEqual(['Deployment/corpus: spec.replicas: must be integer']);
    const scaled = structuredClone(objects.find((o) => o.kind === 'ScaledObject' && o.metadata.name === 'corpus')!);
    (scaled.spec as { triggers: { metadata: Record<string, unknown> }[] }).triggers[0].metadata.threshold = 4;
    expect(await schemaProblems(scaled)).toEqual(['ScaledObject/corpus: spec.triggers.0.metadata.threshold: must be string']);
  });
});
