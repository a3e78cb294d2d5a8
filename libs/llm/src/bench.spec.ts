import { describe, expect, it } from 'vitest';
import { benchGateway } from './bench';

describe('benchGateway', () => {
  it('reports efficiency per level, the overhead and no lost item (a small run)', async () => {
    const report = await benchGateway({ latencyMs: 20, levels: [1, 8], rounds: 2, overheadCalls: 50 });
    expect(Object.keys(report.efficiency)).toEqual(['1', '8']);
    expect(report.levels['8']).toMatchObject({ concurrency: 8, requests: 16, idealCallsPerSecond: 400 });
    expect(report.efficiency['8']).toBeGreaterThan(0.3);
    expect(report.efficiency['8']).toBeLessThanOrEqual(1.05);
    expect(report.lostItems).toBe(0);
    // The code-path warm-up (200), the levels' warm-ups (1 + 8) and timed calls (2 + 16), the overhead's (3 × (50 + 50)).
    expect(report.requests).toBe(200 + 9 + 18 + 300);
    expect(Number.isFinite(report.overheadMsPerCall)).toBe(true);
  });
});
