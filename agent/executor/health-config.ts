/**
 * The health check a task runs: the service's HealthCheck merged with the image's HEALTHCHECK by
 * Docker's rules, with Docker's defaults. Pure: no I/O.
 *
 * - test ["NONE"] in the service turns off checks, the image's included (`--no-healthcheck`).
 * - A service probe (its test, an HTTP probe or a TCP probe) replaces the image's test; with none,
 *   the image's test is used, so `--health-interval` alone tunes the image's check.
 * - Each timing or retry count left at 0 by the service takes the image's, then Docker's default.
 */
import type { HealthCheck } from '../../proto/skiff/v1/specs.js';
import type { ImageHealthcheck } from '../image/types.js';

/** Docker's defaults (moby daemon/health.go). */
export const DEFAULT_HEALTH_INTERVAL_MS = 30_000;
export const DEFAULT_HEALTH_TIMEOUT_MS = 30_000;
export const DEFAULT_HEALTH_RETRIES = 3;
/** The shell CMD-SHELL runs its command with (Docker's default shell on Linux). */
export const HEALTH_SHELL = ['/bin/sh', '-c'];

export type HealthProbeSpec =
  | { kind: 'exec'; argv: string[] }
  | { kind: 'http'; port: number; path: string }
  | { kind: 'tcp'; port: number };

/** A resolved health check: every value set. */
export interface HealthConfig {
  probe: HealthProbeSpec;
  intervalMs: number;
  timeoutMs: number;
  retries: number;
  startPeriodMs: number;
}

/** The argv a test runs, or undefined for ["NONE"], an empty test or an unknown kind. */
function execProbe(test: readonly string[]): HealthProbeSpec | undefined {
  const [kind, ...rest] = test;
  if (kind === 'CMD' && rest.length > 0 && rest[0] !== '') return { kind: 'exec', argv: rest };
  if (kind === 'CMD-SHELL' && rest.length > 0) return { kind: 'exec', argv: [...HEALTH_SHELL, rest.join(' ')] };
  return undefined;
}

function serviceProbe(spec: HealthCheck): HealthProbeSpec | undefined {
  if (spec.http !== undefined && spec.http.port > 0) return { kind: 'http', port: spec.http.port, path: spec.http.path || '/' };
  if (spec.tcpPort > 0) return { kind: 'tcp', port: spec.tcpPort };
  return spec.test.length > 0 ? execProbe(spec.test) : undefined;
}

const first = (...values: Array<number | undefined>): number => values.find((value) => value !== undefined && value > 0) ?? 0;

/** The check to run for a task, or undefined when it has none. */
export function resolveHealthCheck(spec: HealthCheck | undefined, image: ImageHealthcheck | undefined): HealthConfig | undefined {
  if (spec?.test[0] === 'NONE') return undefined;
  const own = spec === undefined ? undefined : serviceProbe(spec);
  const probe = own ?? (spec !== undefined && spec.test.length > 0 ? undefined : image === undefined ? undefined : execProbe(image.test));
  if (probe === undefined) return undefined;
  return {
    probe,
    intervalMs: first(spec?.intervalMs, image?.intervalMs, DEFAULT_HEALTH_INTERVAL_MS),
    timeoutMs: first(spec?.timeoutMs, image?.timeoutMs, DEFAULT_HEALTH_TIMEOUT_MS),
    retries: first(spec?.retries, image?.retries, DEFAULT_HEALTH_RETRIES),
    startPeriodMs: first(spec?.startPeriodMs, image?.startPeriodMs),
  };
}

/** True when the task's check may come from its image (the service sets no probe of its own and does not turn checks off). */
export function needsImageHealthcheck(spec: HealthCheck | undefined): boolean {
  if (spec === undefined) return true;
  return spec.test.length === 0 && (spec.http === undefined || spec.http.port === 0) && spec.tcpPort === 0;
}

/** "30s", "500ms", "1m30s": the way Docker prints a duration. */
export function formatDurationMs(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  const minutes = Math.floor(ms / 60_000);
  const seconds = (ms % 60_000) / 1000;
  return `${minutes > 0 ? `${minutes}m` : ''}${seconds > 0 || minutes === 0 ? `${seconds}s` : ''}`;
}
