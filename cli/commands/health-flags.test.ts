import { describe, expect, it } from 'vitest';
import { healthcheckFromFlags, parseHealthHttp, withHealthFlags } from './health-flags.js';
import { FlagError, specFromFlags } from './service-flags.js';

const NO_CHECK = { test: [], intervalMs: 0, timeoutMs: 0, retries: 0, startPeriodMs: 0, http: undefined, tcpPort: 0 };

function flagError(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    if (error instanceof FlagError) return error.message;
    throw error;
  }
  return 'no error';
}

describe('health flags', () => {
  it('health flags give no check when none is set, so the image HEALTHCHECK applies', () => {
    expect(healthcheckFromFlags({})).toBeUndefined();
    expect(healthcheckFromFlags({ healthcheck: true })).toBeUndefined();
  });

  it('health flags turn --health-cmd into CMD-SHELL with its timings', () => {
    expect(healthcheckFromFlags({ healthCmd: 'test -f /tmp/ok', healthInterval: '200ms', healthTimeout: '1s', healthRetries: '2', healthStartPeriod: '1m30s' })).toEqual({
      ...NO_CHECK,
      test: ['CMD-SHELL', 'test -f /tmp/ok'],
      intervalMs: 200,
      timeoutMs: 1_000,
      retries: 2,
      startPeriodMs: 90_000,
    });
    // Timings alone tune the image's check.
    expect(healthcheckFromFlags({ healthInterval: '5s' })).toEqual({ ...NO_CHECK, intervalMs: 5_000 });
  });

  it('health flags parse --health-http PORT[/PATH] and --health-tcp PORT', () => {
    expect(healthcheckFromFlags({ healthHttp: '80/index.html' })).toEqual({ ...NO_CHECK, http: { port: 80, path: '/index.html' } });
    expect(parseHealthHttp('8080')).toEqual({ port: 8080, path: '/' });
    expect(parseHealthHttp('8080/healthz?full=1')).toEqual({ port: 8080, path: '/healthz?full=1' });
    expect(healthcheckFromFlags({ healthTcp: '6379' })).toEqual({ ...NO_CHECK, tcpPort: 6379 });
  });

  it('health flags --no-healthcheck sets NONE and conflicts with other health flags', () => {
    expect(healthcheckFromFlags({ healthcheck: false })).toEqual({ ...NO_CHECK, test: ['NONE'] });
    expect(flagError(() => healthcheckFromFlags({ healthcheck: false, healthInterval: '1s' }))).toBe('--no-healthcheck conflicts with --health-* options');
  });

  it('health flags refuse bad values, naming the flag', () => {
    expect(flagError(() => healthcheckFromFlags({ healthHttp: 'web/index.html' }))).toBe('invalid value "web" for --health-http: the port must be from 1 to 65535');
    expect(flagError(() => healthcheckFromFlags({ healthHttp: '80/a b' }))).toBe('invalid value "80/a b" for --health-http: the path must not contain spaces');
    expect(flagError(() => healthcheckFromFlags({ healthTcp: '0' }))).toBe('invalid value "0" for --health-tcp: the port must be from 1 to 65535');
    expect(flagError(() => healthcheckFromFlags({ healthCmd: 'true', healthTcp: '80' }))).toBe('use only one of --health-cmd, --health-http and --health-tcp');
    expect(flagError(() => healthcheckFromFlags({ healthCmd: ' ' }))).toBe('invalid value " " for --health-cmd: the command is empty');
    expect(flagError(() => healthcheckFromFlags({ healthCmd: 'true', healthInterval: '-1s' }))).toBe('invalid value "-1s" for --health-interval: use a duration such as 5s, 250ms or 1m30s');
    expect(flagError(() => healthcheckFromFlags({ healthCmd: 'true', healthRetries: 'three' }))).toBe('invalid value "three" for --health-retries: must be a non-negative integer');
  });

  it('health flags put the check into the service spec', () => {
    const spec = specFromFlags('demo/web:v1', [], { name: 'web', replicas: '1', env: [], label: [] });
    expect(withHealthFlags(spec, {})).toBe(spec);
    expect(withHealthFlags(spec, { healthTcp: '80' }).taskTemplate?.container?.healthcheck).toEqual({ ...NO_CHECK, tcpPort: 80 });
  });
});
