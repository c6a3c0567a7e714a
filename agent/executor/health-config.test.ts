import { describe, expect, it } from 'vitest';
import type { HealthCheck } from '../../proto/skiff/v1/specs.js';
import type { ImageHealthcheck } from '../image/types.js';
import { DEFAULT_HEALTH_INTERVAL_MS, DEFAULT_HEALTH_RETRIES, DEFAULT_HEALTH_TIMEOUT_MS, formatDurationMs, needsImageHealthcheck, resolveHealthCheck } from './health-config.js';

function check(overrides: Partial<HealthCheck> = {}): HealthCheck {
  return { test: [], intervalMs: 0, timeoutMs: 0, retries: 0, startPeriodMs: 0, http: undefined, tcpPort: 0, ...overrides };
}

const IMAGE: ImageHealthcheck = { test: ['CMD-SHELL', 'wget -q -O /dev/null http://localhost/'], intervalMs: 5_000, timeoutMs: 2_000, startPeriodMs: 1_000, retries: 5 };

describe('health check resolution', () => {
  it('health config has none without a service or image check', () => {
    expect(resolveHealthCheck(undefined, undefined)).toBeUndefined();
    expect(resolveHealthCheck(check({ intervalMs: 1_000 }), undefined)).toBeUndefined();
  });

  it('health config runs CMD argv directly and CMD-SHELL through /bin/sh -c, with Docker defaults', () => {
    expect(resolveHealthCheck(check({ test: ['CMD', 'test', '-f', '/tmp/ok'] }), undefined)).toEqual({
      probe: { kind: 'exec', argv: ['test', '-f', '/tmp/ok'] },
      intervalMs: DEFAULT_HEALTH_INTERVAL_MS,
      timeoutMs: DEFAULT_HEALTH_TIMEOUT_MS,
      retries: DEFAULT_HEALTH_RETRIES,
      startPeriodMs: 0,
    });
    expect(resolveHealthCheck(check({ test: ['CMD-SHELL', 'test -f /tmp/ok || exit 1'] }), undefined)?.probe).toEqual({ kind: 'exec', argv: ['/bin/sh', '-c', 'test -f /tmp/ok || exit 1'] });
    expect([DEFAULT_HEALTH_INTERVAL_MS, DEFAULT_HEALTH_TIMEOUT_MS, DEFAULT_HEALTH_RETRIES]).toEqual([30_000, 30_000, 3]);
  });

  it('health config takes http and tcp probes from the service', () => {
    expect(resolveHealthCheck(check({ http: { port: 80, path: '/index.html' }, intervalMs: 200 }), IMAGE)).toMatchObject({ probe: { kind: 'http', port: 80, path: '/index.html' }, intervalMs: 200 });
    expect(resolveHealthCheck(check({ tcpPort: 6379 }), undefined)?.probe).toEqual({ kind: 'tcp', port: 6379 });
  });

  it('health config uses the image check when the service sets no probe, service timings first', () => {
    expect(resolveHealthCheck(undefined, IMAGE)).toEqual({ probe: { kind: 'exec', argv: ['/bin/sh', '-c', 'wget -q -O /dev/null http://localhost/'] }, intervalMs: 5_000, timeoutMs: 2_000, retries: 5, startPeriodMs: 1_000 });
    expect(resolveHealthCheck(check({ intervalMs: 250, retries: 1 }), IMAGE)).toMatchObject({ intervalMs: 250, timeoutMs: 2_000, retries: 1, startPeriodMs: 1_000 });
    expect(resolveHealthCheck(undefined, { ...IMAGE, test: ['NONE'] })).toBeUndefined();
  });

  it('health config NONE in the service turns off the image check too', () => {
    expect(resolveHealthCheck(check({ test: ['NONE'] }), IMAGE)).toBeUndefined();
    expect(needsImageHealthcheck(check({ test: ['NONE'] }))).toBe(false);
    expect(needsImageHealthcheck(check({ tcpPort: 80 }))).toBe(false);
    expect(needsImageHealthcheck(check({ retries: 2 }))).toBe(true);
    expect(needsImageHealthcheck(undefined)).toBe(true);
  });

  it('health config prints durations the way Docker does', () => {
    expect([500, 1_000, 30_000, 90_000, 60_000, 1_500].map(formatDurationMs)).toEqual(['500ms', '1s', '30s', '1m30s', '1m', '1.5s']);
  });
});
