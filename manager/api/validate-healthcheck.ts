/**
 * A service's health check, checked with the rest of its spec (Docker's rules): a test of
 * ["CMD", argv...], ["CMD-SHELL", command] or ["NONE"]; at most one of a test, an HTTP probe and a
 * TCP probe (none: the timings tune the image's HEALTHCHECK); durations in ms, 0 for the
 * default, never negative (any non-zero whole number of ms meets Docker's 1 ms minimum); retries
 * 0 for the default (3) or more.
 */
import type { HealthCheck } from '../../proto/skiff/v1/specs.js';
import { invalid } from './errors.js';

const FIELD = 'taskTemplate.container.healthcheck';
const MAX_TEST_ENTRIES = 1024;
const MAX_TEST_ENTRY_LENGTH = 64 * 1024;
const MAX_PATH_LENGTH = 2048;
const MAX_PORT = 65_535;
/** A day: a longer interval, timeout or start period is a mistake, not a plan. */
export const MAX_HEALTH_DURATION_MS = 24 * 3_600_000;
/** Retries one check may need before it is unhealthy. */
export const MAX_HEALTH_RETRIES = 1_000;
const TEST_KINDS = ['CMD', 'CMD-SHELL', 'NONE'];

const refuse = (field: string, reason: string) => invalid(`cannot accept service spec: ${FIELD}.${field}: ${reason}`);

function validateTest(test: readonly string[]): void {
  if (test.length === 0) return;
  if (test.length > MAX_TEST_ENTRIES) throw refuse('test', `${test.length} entries, more than ${MAX_TEST_ENTRIES}`);
  if (test.some((entry) => entry.length > MAX_TEST_ENTRY_LENGTH)) throw refuse('test', `an entry is longer than ${MAX_TEST_ENTRY_LENGTH} characters`);
  const [kind, ...rest] = test;
  if (kind === undefined || !TEST_KINDS.includes(kind)) throw refuse('test[0]', `"${kind}" must be CMD, CMD-SHELL or NONE`);
  if (kind === 'NONE' && rest.length > 0) throw refuse('test', 'NONE takes no command');
  if (kind === 'CMD' && (rest.length === 0 || rest[0] === '')) throw refuse('test', 'CMD needs a command to run');
  if (kind === 'CMD-SHELL' && (rest.length !== 1 || rest[0]?.trim() === '')) throw refuse('test', 'CMD-SHELL takes exactly one non-empty shell command');
}

function validatePort(field: string, port: number, allowZero: boolean): void {
  if (!Number.isInteger(port) || port < (allowZero ? 0 : 1) || port > MAX_PORT) throw refuse(field, `must be a port from 1 to ${MAX_PORT}${allowZero ? ', or 0 for none' : ''}`);
}

/** Throws ApiError('invalid_argument') naming the first bad field of the health check. */
export function validateHealthCheck(check: HealthCheck | undefined): void {
  if (check === undefined) return;
  validateTest(check.test);
  for (const [field, value] of Object.entries({ intervalMs: check.intervalMs, timeoutMs: check.timeoutMs, startPeriodMs: check.startPeriodMs })) {
    if (!Number.isSafeInteger(value) || value < 0 || value > MAX_HEALTH_DURATION_MS) {
      throw refuse(field, `must be a whole number of milliseconds from 1 to ${MAX_HEALTH_DURATION_MS}, or 0 for the default`);
    }
  }
  if (!Number.isInteger(check.retries) || check.retries < 0 || check.retries > MAX_HEALTH_RETRIES) throw refuse('retries', `must be an integer from 1 to ${MAX_HEALTH_RETRIES}, or 0 for the default (3)`);
  if (check.http !== undefined) {
    validatePort('http.port', check.http.port, false);
    const { path } = check.http;
    if (!path.startsWith('/')) throw refuse('http.path', `"${path}" must start with /`);
    if (path.length > MAX_PATH_LENGTH || [...path].some((character) => /\s/.test(character) || character.charCodeAt(0) < 0x20 || character.charCodeAt(0) === 0x7f)) throw refuse('http.path', `must be at most ${MAX_PATH_LENGTH} characters without spaces or control characters`);
  }
  validatePort('tcpPort', check.tcpPort, true);
  const probes = [check.test.length > 0 ? 'test' : '', check.http !== undefined ? 'http' : '', check.tcpPort > 0 ? 'tcpPort' : ''].filter((name) => name !== '');
  if (probes.length > 1) {
    throw invalid(`cannot accept service spec: ${FIELD}: ${probes.join(' and ')} are both set; use one of a test command, an HTTP probe and a TCP probe`);
  }
}
