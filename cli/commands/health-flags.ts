/**
 * `service create` health-check flags, as Docker spells them, into a HealthCheck. Errors name the
 * flag; the manager validates the result again.
 */
import type { Command } from 'commander';
import type { HealthCheck, ServiceSpec } from '../../proto/skiff/v1/specs.js';
import { FlagError, parseCount, parseDuration } from './service-flags.js';

export interface HealthFlags {
  healthCmd?: string;
  healthInterval?: string;
  healthTimeout?: string;
  healthRetries?: string;
  healthStartPeriod?: string;
  /** `PORT[/PATH]` */
  healthHttp?: string;
  healthTcp?: string;
  /** false with `--no-healthcheck` (commander's negated option); undefined or true otherwise. */
  healthcheck?: boolean;
}

/** Adds the health-check options to `service create`. */
export function addHealthOptions(command: Command): Command {
  return command
    .option('--health-cmd <command>', 'command run inside the container to check health (with /bin/sh -c); exit 0 = healthy')
    .option('--health-http <PORT[/PATH]>', 'check health with an HTTP GET from the node to the task, healthy on 2xx/3xx, e.g. 80/index.html')
    .option('--health-tcp <port>', 'check health by opening a TCP connection from the node to the task')
    .option('--health-interval <duration>', 'time between checks (default 30s)')
    .option('--health-timeout <duration>', 'longest a check may run (default 30s)')
    .option('--health-retries <n>', 'consecutive failures before the task is unhealthy (default 3)')
    .option('--health-start-period <duration>', 'time after the start in which failures do not count (default 0s)')
    .option('--no-healthcheck', 'disable any health check, the image\'s HEALTHCHECK included');
}

function parsePort(flag: string, text: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > 65_535) throw new FlagError(`invalid value "${text}" for ${flag}: the port must be from 1 to 65535`);
  return Number(text);
}

/** `80`, `80/`, `8080/healthz?full=1` -> port and path. */
export function parseHealthHttp(value: string): { port: number; path: string } {
  const slash = value.indexOf('/');
  const port = parsePort('--health-http', slash < 0 ? value.trim() : value.slice(0, slash).trim());
  const path = slash < 0 ? '/' : value.slice(slash);
  if (/\s/.test(path)) throw new FlagError(`invalid value "${value}" for --health-http: the path must not contain spaces`);
  return { port, path };
}

/** The service's health check from the flags, or undefined when none is given (the image's applies). */
export function healthcheckFromFlags(flags: HealthFlags): HealthCheck | undefined {
  const tuning = [flags.healthInterval, flags.healthTimeout, flags.healthRetries, flags.healthStartPeriod];
  const probes = [flags.healthCmd, flags.healthHttp, flags.healthTcp];
  if (flags.healthcheck === false) {
    if ([...tuning, ...probes].some((value) => value !== undefined)) throw new FlagError('--no-healthcheck conflicts with --health-* options');
    return { test: ['NONE'], intervalMs: 0, timeoutMs: 0, retries: 0, startPeriodMs: 0, http: undefined, tcpPort: 0 };
  }
  if ([...tuning, ...probes].every((value) => value === undefined)) return undefined;
  if (probes.filter((value) => value !== undefined).length > 1) throw new FlagError('use only one of --health-cmd, --health-http and --health-tcp');
  if (flags.healthCmd !== undefined && flags.healthCmd.trim() === '') throw new FlagError(`invalid value "${flags.healthCmd}" for --health-cmd: the command is empty`);
  const duration = (flag: string, value: string | undefined): number => (value === undefined ? 0 : parseDuration(flag, value));
  return {
    test: flags.healthCmd === undefined ? [] : ['CMD-SHELL', flags.healthCmd],
    intervalMs: duration('--health-interval', flags.healthInterval),
    timeoutMs: duration('--health-timeout', flags.healthTimeout),
    retries: flags.healthRetries === undefined ? 0 : parseCount('--health-retries', flags.healthRetries),
    startPeriodMs: duration('--health-start-period', flags.healthStartPeriod),
    http: flags.healthHttp === undefined ? undefined : parseHealthHttp(flags.healthHttp),
    tcpPort: flags.healthTcp === undefined ? 0 : parsePort('--health-tcp', flags.healthTcp.trim()),
  };
}

/** `spec` with the health check the flags give (unchanged when they give none). */
export function withHealthFlags(spec: ServiceSpec, flags: HealthFlags): ServiceSpec {
  const healthcheck = healthcheckFromFlags(flags);
  const container = spec.taskTemplate?.container;
  if (healthcheck === undefined || spec.taskTemplate === undefined || container === undefined) return spec;
  return { ...spec, taskTemplate: { ...spec.taskTemplate, container: { ...container, healthcheck } } };
}
