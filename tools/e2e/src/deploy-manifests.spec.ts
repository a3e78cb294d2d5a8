import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { SERVICE_ENVS, SERVICE_NAMES, httpPortVariable, type ServiceName } from '@xyp/config';
import { WORKSPACE_ROOT } from '@xyp/launcher';

interface EnvVar { name: string }
interface Container { name: string; env?: EnvVar[]; envFrom?: { configMapRef?: { name: string } }[] }
interface Manifest {
  kind: string;
  metadata: { name: string };
  data?: Record<string, string>;
  spec?: { template?: { spec: { containers: Container[] } } };
}

const base = join(WORKSPACE_ROOT, 'deploy', 'k8s', 'base');
const manifests: Manifest[] = readdirSync(base)
  .filter((file) => file.endsWith('.yaml') && file !== 'kustomization.yaml')
  .flatMap((file) =>
    parseAllDocuments(readFileSync(join(base, file), 'utf8')).map((doc) => {
      if (doc.errors.length) throw new Error(`${file}: ${doc.errors[0].message}`);
      return doc.toJSON() as Manifest;
    }),
  );

describe('Kubernetes manifests', () => {
  const configMap = manifests.find((m) => m.kind === 'ConfigMap' && m.metadata.name === 'xyp-platform')!;

  it('deploy every service', () => {
    const deployed = manifests.filter((m) => m.kind === 'Deployment').map((m) => m.metadata.name);
    expect(deployed.sort()).toEqual([...SERVICE_NAMES].sort());
  });

  it('set only variables the services read, with values their schemas accept', () => {
    for (const deployment of manifests.filter((m) => m.kind === 'Deployment')) {
      const service = deployment.metadata.name as ServiceName;
      const schema = SERVICE_ENVS[service];
      const container = deployment.spec!.template!.spec.containers[0];
      const names = [...(container.env ?? []).map((e) => e.name).filter((n) => n !== 'APP'), ...Object.keys(configMap.data ?? {})];
      for (const name of names) expect(Object.keys(schema.shape), `${service} reads ${name}`).toContain(name);
      expect(names).toContain(httpPortVariable(service));
      const values = Object.fromEntries(
        (container.env ?? []).filter((e): e is EnvVar & { value: string } => 'value' in e).map((e) => [e.name, e.value]),
      );
      const parsed = schema.safeParse({ ...configMap.data, ...values, XYP_BOARD_PASSWORD: 'from-the-secret', XYP_S3_ACCESS_KEY: 'k', XYP_S3_SECRET_KEY: 's' });
      expect(parsed.success, `${service}: ${JSON.stringify(parsed.error?.issues)}`).toBe(true);
    }
  });
});
