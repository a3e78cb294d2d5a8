import { join } from 'node:path';
import { SERVICE_ENVS, type ServiceEnv } from '@xyp/config';

export const ControlPlaneEnv = SERVICE_ENVS['control-plane'];
export type ControlPlaneEnv = ServiceEnv<'control-plane'>;
export const CONTROL_PLANE_ENV = Symbol('CONTROL_PLANE_ENV');

/** The bundled sample corpus, input of runs submitted without one. */
export function sampleCorpusPath(env: ControlPlaneEnv): string {
  return env.XYP_SAMPLE_CORPUS ?? join(__dirname, '..', '..', '..', 'data', 'sample', 'corpus.jsonl');
}

/** The bundled recipe (a run spec), what a run submitted with neither a spec nor stages runs. */
export function recipeSpecPath(): string {
  return join(__dirname, '..', '..', '..', 'recipes', 'xuanyuan3.yaml');
}
