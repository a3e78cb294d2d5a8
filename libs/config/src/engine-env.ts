import { z } from 'zod';
import { envBool, envInt } from './load-config';

/**
 * How a process that runs the training engine picks its TF.js backend. Read once at start-up by
 * the CLI and the services that load checkpoints, and passed to the engine's `initBackend` as
 * explicit options (`engineBackendOptions`): the engine itself reads no environment.
 */
export const EngineEnv = z.object({
  /** `auto` tries WASM and falls back to the CPU backend; `wasm` or `cpu` forces one. */
  XYP_ENGINE_BACKEND: z.enum(['auto', 'wasm', 'cpu'], { error: 'must be auto, wasm or cpu' }).default('auto'),
  /** Compute threads (OpenBLAS and fused-kernel workers, or XNNPACK threads); default the core count, at most 8. */
  XYP_ENGINE_THREADS: envInt(1, 256).optional(),
  /** Run matrix products and fused kernels on the native OpenBLAS addon when it is built. */
  XYP_ENGINE_NATIVE: envBool().default(true),
  /** Another build of the native addon (`xyp_blas.node`). */
  XYP_ENGINE_NATIVE_PATH: z.string().min(1).optional(),
});
export type EngineEnv = z.output<typeof EngineEnv>;

/** The engine's backend options (`initBackend`), field for field, from the validated environment. */
export interface EngineBackendSettings {
  backend: 'auto' | 'wasm' | 'cpu';
  threads?: number;
  native: boolean;
  nativePath?: string;
}

export function engineBackendOptions(env: EngineEnv): EngineBackendSettings {
  return {
    backend: env.XYP_ENGINE_BACKEND,
    ...(env.XYP_ENGINE_THREADS === undefined ? {} : { threads: env.XYP_ENGINE_THREADS }),
    native: env.XYP_ENGINE_NATIVE,
    ...(env.XYP_ENGINE_NATIVE_PATH === undefined ? {} : { nativePath: env.XYP_ENGINE_NATIVE_PATH }),
  };
}
