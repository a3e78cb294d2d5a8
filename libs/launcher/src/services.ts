import { join } from 'node:path';

/** Workspace root: every path the launcher uses is relative to it. */
export const WORKSPACE_ROOT = join(__dirname, '..', '..', '..');

/** Each service of the platform, its entry point and the variable that sets its HTTP port. */
export const SERVICES = {
  'control-plane': { httpPortVariable: 'XYP_CONTROL_PLANE_HTTP_PORT', defaultHttpPort: 3000 },
  corpus: { httpPortVariable: 'XYP_CORPUS_HTTP_PORT', defaultHttpPort: 3101 },
  trainer: { httpPortVariable: 'XYP_TRAINER_HTTP_PORT', defaultHttpPort: 3102 },
  synthesis: { httpPortVariable: 'XYP_SYNTHESIS_HTTP_PORT', defaultHttpPort: 3103 },
  reward: { httpPortVariable: 'XYP_REWARD_HTTP_PORT', defaultHttpPort: 3104 },
  rlhf: { httpPortVariable: 'XYP_RLHF_HTTP_PORT', defaultHttpPort: 3105 },
} as const;

export type ServiceName = keyof typeof SERVICES;
export const SERVICE_NAMES = Object.keys(SERVICES) as ServiceName[];

export function serviceEntry(name: ServiceName): string {
  return join(WORKSPACE_ROOT, 'apps', name, 'src', 'main.ts');
}

export const REGISTER_HOOK = join(WORKSPACE_ROOT, 'tools', 'runtime', 'register.js');
