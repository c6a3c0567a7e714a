import { describe, expect, it } from 'vitest';
import type { HealthCheck } from '../../proto/skiff/v1/specs.js';
import { ApiError } from './errors.js';
import { fakeServiceSpec } from './testing/fake-cluster.js';
import { validateServiceSpec } from './validate-service.js';

function check(overrides: Partial<HealthCheck>): HealthCheck {
  return { test: [], intervalMs: 0, timeoutMs: 0, retries: 0, startPeriodMs: 0, http: undefined, tcpPort: 0, ...overrides };
}

/** What validateServiceSpec says about a service whose health check is `healthcheck`. */
function refusal(healthcheck: Partial<HealthCheck>): string {
  const spec = fakeServiceSpec('web', 1);
  spec.taskTemplate!.container!.healthcheck = check(healthcheck);
  try {
    validateServiceSpec(spec);
  } catch (error) {
    if (error instanceof ApiError) return `${error.code}: ${error.message.replace('cannot accept service spec: taskTemplate.container.healthcheck', 'HC')}`;
    throw error;
  }
  return 'accepted';
}

describe('validate health check', () => {
  it('validate health check accepts command, shell, http, tcp and NONE checks and timings alone', () => {
    expect(refusal({ test: ['CMD', 'test', '-f', '/tmp/ok'], intervalMs: 200, timeoutMs: 1_000, retries: 2, startPeriodMs: 5_000 })).toBe('accepted');
    expect(refusal({ test: ['CMD-SHELL', 'wget -q -O- http://localhost/ || exit 1'] })).toBe('accepted');
    expect(refusal({ http: { port: 80, path: '/index.html' }, intervalMs: 1 })).toBe('accepted');
    expect(refusal({ tcpPort: 6379 })).toBe('accepted');
    expect(refusal({ test: ['NONE'] })).toBe('accepted');
    expect(refusal({ intervalMs: 250 })).toBe('accepted');
  });

  it('validate health check refuses malformed tests, naming the field', () => {
    expect(refusal({ test: ['RUN', 'true'] })).toBe('invalid_argument: HC.test[0]: "RUN" must be CMD, CMD-SHELL or NONE');
    expect(refusal({ test: ['CMD'] })).toBe('invalid_argument: HC.test: CMD needs a command to run');
    expect(refusal({ test: ['CMD-SHELL', 'a', 'b'] })).toBe('invalid_argument: HC.test: CMD-SHELL takes exactly one non-empty shell command');
    expect(refusal({ test: ['CMD-SHELL', ' '] })).toBe('invalid_argument: HC.test: CMD-SHELL takes exactly one non-empty shell command');
    expect(refusal({ test: ['NONE', 'true'] })).toBe('invalid_argument: HC.test: NONE takes no command');
  });

  it('validate health check refuses negative or fractional durations and retries', () => {
    expect(refusal({ test: ['CMD', 'true'], intervalMs: -1 })).toBe('invalid_argument: HC.intervalMs: must be a whole number of milliseconds from 1 to 86400000, or 0 for the default');
    expect(refusal({ test: ['CMD', 'true'], timeoutMs: 0.5 })).toMatch(/^invalid_argument: HC\.timeoutMs: must be a whole number of milliseconds/);
    expect(refusal({ test: ['CMD', 'true'], startPeriodMs: 25 * 3_600_000 })).toMatch(/^invalid_argument: HC\.startPeriodMs: /);
    expect(refusal({ test: ['CMD', 'true'], retries: -1 })).toBe('invalid_argument: HC.retries: must be an integer from 1 to 1000, or 0 for the default (3)');
  });

  it('validate health check refuses bad ports and paths and more than one probe', () => {
    expect(refusal({ http: { port: 0, path: '/' } })).toBe('invalid_argument: HC.http.port: must be a port from 1 to 65535');
    expect(refusal({ http: { port: 70_000, path: '/' } })).toBe('invalid_argument: HC.http.port: must be a port from 1 to 65535');
    expect(refusal({ http: { port: 80, path: 'index.html' } })).toBe('invalid_argument: HC.http.path: "index.html" must start with /');
    expect(refusal({ http: { port: 80, path: '/a b' } })).toBe('invalid_argument: HC.http.path: must be at most 2048 characters without spaces or control characters');
    expect(refusal({ tcpPort: 65_536 })).toBe('invalid_argument: HC.tcpPort: must be a port from 1 to 65535, or 0 for none');
    expect(refusal({ test: ['CMD', 'true'], tcpPort: 80 })).toBe('invalid_argument: HC: test and tcpPort are both set; use one of a test command, an HTTP probe and a TCP probe');
    expect(refusal({ test: ['NONE'], http: { port: 80, path: '/' } })).toBe('invalid_argument: HC: test and http are both set; use one of a test command, an HTTP probe and a TCP probe');
  });
});
