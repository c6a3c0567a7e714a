/**
 * Parsing `service create` flags into a ServiceSpec. Bad values get an error naming the flag;
 * the server validates the spec again (the CLI is not the only client).
 */
import type { ServiceSpec } from '../../proto/skiff/v1/specs.js';

export interface CreateFlags {
  name?: string;
  replicas: string;
  env: string[];
  label: string[];
  workdir?: string;
  user?: string;
  hostname?: string;
  limitMemory?: string;
  limitCpu?: string;
  limitPids?: string;
  restartCondition?: string;
  restartDelay?: string;
  restartMaxAttempts?: string;
  restartWindow?: string;
  entrypoint?: string;
}

export class FlagError extends Error {}

/** A non-negative integer from a flag, or a FlagError naming the flag. */
export function parseCount(flag: string, value: string): number {
  if (!/^\d+$/.test(value.trim())) throw new FlagError(`invalid value "${value}" for ${flag}: must be a non-negative integer`);
  const parsed = Number(value.trim());
  if (!Number.isSafeInteger(parsed)) throw new FlagError(`invalid value "${value}" for ${flag}: too large`);
  return parsed;
}

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, m: 1024 ** 2, mb: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3 };

/** "512m", "1g", "1048576" -> bytes. */
export function parseBytes(flag: string, value: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([a-zA-Z]*)$/.exec(value.trim());
  const unit = SIZE_UNITS[(match?.[2] ?? '').toLowerCase()];
  if (match === null || unit === undefined) throw new FlagError(`invalid value "${value}" for ${flag}: use a size such as 512m or 1g`);
  return Math.round(Number(match[1]) * unit);
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "5s", "250ms", "1m30s" -> milliseconds. */
export function parseDuration(flag: string, value: string): number {
  const parts = [...value.trim().matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((part) => part[0]).join('') !== value.trim()) {
    throw new FlagError(`invalid value "${value}" for ${flag}: use a duration such as 5s, 250ms or 1m30s`);
  }
  return Math.round(parts.reduce((total, part) => total + Number(part[1]) * (DURATION_UNITS[part[2] ?? 's'] ?? 1000), 0));
}

function parseKeyValues(flag: string, values: string[]): Record<string, string> {
  const result: Record<string, string> = {};
  for (const entry of values) {
    const [key, ...rest] = entry.split('=');
    if (key === undefined || key === '') throw new FlagError(`invalid value "${entry}" for ${flag}: must be KEY=VALUE`);
    result[key] = rest.join('=');
  }
  return result;
}

export function specFromFlags(image: string, commandArgs: string[], flags: CreateFlags): ServiceSpec {
  const name = flags.name ?? '';
  if (flags.name === undefined) throw new FlagError('--name is required');
  const replicas = parseCount('--replicas', flags.replicas);
  return {
    name,
    labels: parseKeyValues('--label', flags.label),
    taskTemplate: {
      container: {
        image,
        command: flags.entrypoint === undefined ? [] : [flags.entrypoint],
        args: commandArgs,
        env: flags.env,
        user: flags.user ?? '',
        workdir: flags.workdir ?? '',
        hostname: flags.hostname ?? '',
        mounts: [],
        healthcheck: undefined,
        labels: {}, secrets: [], configs: [],
      },
      resources: {
        limits: {
          nanoCpus: flags.limitCpu === undefined ? 0 : Math.round(parsePositiveNumber('--limit-cpu', flags.limitCpu) * 1e9),
          memoryBytes: flags.limitMemory === undefined ? 0 : parseBytes('--limit-memory', flags.limitMemory),
          pids: flags.limitPids === undefined ? 0 : parseCount('--limit-pids', flags.limitPids),
        },
        reservations: undefined,
      },
      restartPolicy: {
        condition: flags.restartCondition ?? '',
        delayMs: flags.restartDelay === undefined ? 0 : parseDuration('--restart-delay', flags.restartDelay),
        maxAttempts: flags.restartMaxAttempts === undefined ? 0 : parseCount('--restart-max-attempts', flags.restartMaxAttempts),
        windowMs: flags.restartWindow === undefined ? 0 : parseDuration('--restart-window', flags.restartWindow),
      },
      placement: undefined,
      networks: [],
      forceUpdate: 0,
    },
    mode: { $case: 'replicated', value: { replicas } },
    updateConfig: undefined,
    rollbackConfig: undefined,
    endpoint: undefined,
    deployStrategy: '',
  };
}

function parsePositiveNumber(flag: string, value: string): number {
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed <= 0) throw new FlagError(`invalid value "${value}" for ${flag}: must be a positive number`);
  return parsed;
}
