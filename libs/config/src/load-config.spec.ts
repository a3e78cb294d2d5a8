import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, PlatformEnv, redisSettings, storeSettings } from './index';

describe('loadConfig', () => {
  it('fills defaults when nothing is set', () => {
    const config = loadConfig(PlatformEnv, {});
    expect(config.XYP_REDIS_URL).toBe('redis://127.0.0.1:6379');
    expect(config.XYP_JOB_ATTEMPTS).toBe(3);
    expect(storeSettings(config)).toEqual({ kind: 'local', root: '.xyp/store' });
  });

  it('names the variable and the value in one line when a value is bad', () => {
    expect(() => loadConfig(PlatformEnv, { XYP_JOB_ATTEMPTS: 'many' })).toThrowError(
      /^invalid configuration: XYP_JOB_ATTEMPTS: must be a number \(got "many"\)$/,
    );
    const error = (() => {
      try {
        loadConfig(PlatformEnv, { XYP_REDIS_URL: 'http://x' });
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).variable).toBe('XYP_REDIS_URL');
    expect((error as Error).message.split('\n')).toHaveLength(1);
  });

  it('reads redis and s3 endpoints from URLs', () => {
    expect(redisSettings('redis://:p%40ss@10.0.0.2:6380/2')).toEqual({
      host: '10.0.0.2',
      port: 6380,
      password: 'p@ss',
      username: undefined,
      db: 2,
      tls: false,
    });
    const s3 = storeSettings(loadConfig(PlatformEnv, { XYP_STORE: 's3', XYP_S3_ENDPOINT: 'https://minio.svc:9443' }));
    expect(s3).toMatchObject({ kind: 's3', endPoint: 'minio.svc', port: 9443, useSSL: true });
  });
});
