import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '@xyp/config';
import { TelemetryEnv } from './telemetry-env';

describe('TelemetryEnv', () => {
  const dir = mkdtempSync(join(tmpdir(), 'xyp-telemetry-env-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('never shows a bad XYP_METRICS_TOKEN, and reads it from XYP_METRICS_TOKEN_FILE', () => {
    expect(() => loadConfig(TelemetryEnv, { XYP_METRICS_TOKEN: 'short-secret' })).toThrow(
      'invalid configuration: XYP_METRICS_TOKEN: must be at least 16 characters (got a value of 12 characters, not shown)',
    );
    const file = join(dir, 'metrics-token');
    writeFileSync(file, 'a-metrics-token-from-a-mounted-secret\n');
    expect(loadConfig(TelemetryEnv, { XYP_METRICS_TOKEN_FILE: file }).XYP_METRICS_TOKEN).toBe('a-metrics-token-from-a-mounted-secret');
  });

  it('wants an endpoint for OTLP and names the variable', () => {
    expect(() => loadConfig(TelemetryEnv, { XYP_OTEL: 'otlp' })).toThrow(/^invalid configuration: XYP_OTEL_ENDPOINT: must be set when XYP_OTEL=otlp/);
    expect(loadConfig(TelemetryEnv, {})).toMatchObject({ XYP_LOG_FORMAT: 'text', XYP_OTEL: 'off' });
  });
});
