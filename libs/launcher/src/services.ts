import { join } from 'node:path';
import { SERVICE_NAMES, defaultHttpPort, httpPortVariable, type ServiceName } from '@xyp/config';

export { SERVICE_NAMES, defaultHttpPort, httpPortVariable, type ServiceName };

/** Workspace root: every path the launcher uses is relative to it. */
export const WORKSPACE_ROOT = join(__dirname, '..', '..', '..');

export function serviceEntry(name: ServiceName): string {
  return join(WORKSPACE_ROOT, 'apps', name, 'src', 'main.ts');
}

export const REGISTER_HOOK = join(WORKSPACE_ROOT, 'tools', 'runtime', 'register.js');
