import { describe, expect, it } from 'vitest';
import { EngineEnv, engineBackendOptions, loadConfig } from './index';

describe('EngineEnv', () => {
  it('defaults to the automatic backend with the native addon on and no thread count', () => {
    expect(engineBackendOptions(loadConfig(EngineEnv, {}))).toEqual({ backend: 'auto', native: true });
  });

  it('passes every set variable to the backend options', () => {
    const env = loadConfig(EngineEnv, { XYP_ENGINE_BACKEND: 'cpu', XYP_ENGINE_THREADS: '2', XYP_ENGINE_NATIVE: '0', XYP_ENGINE_NATIVE_PATH: '/opt/xyp_blas.node' });
    expect(engineBackendOptions(env)).toEqual({ backend: 'cpu', threads: 2, native: false, nativePath: '/opt/xyp_blas.node' });
  });

  it('names the variable of a bad value', () => {
    expect(() => loadConfig(EngineEnv, { XYP_ENGINE_BACKEND: 'gpu' })).toThrow(/^invalid configuration: XYP_ENGINE_BACKEND: must be auto, wasm or cpu \(got "gpu"\)$/);
    expect(() => loadConfig(EngineEnv, { XYP_ENGINE_THREADS: '0' })).toThrow(/XYP_ENGINE_THREADS: must be at least 1/);
  });
});
