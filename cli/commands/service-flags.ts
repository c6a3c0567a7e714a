/**
 * Parsing `service create` flags into a ServiceSpec. Bad values get an error naming the flag;
 * the server validates the spec again (the CLI is not the only client).
 */
import type { ConfigReference, SecretReference, ServiceSpec } from '../../proto/skiff/v1/specs.js';

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
  /** `--secret NAME[,target=…,uid=…,gid=…,mode=…]`, repeatable. */
  secret?: string[];
  /** `--config NAME[,target=…,uid=…,gid=…,mode=…]`, repeatable. */
  config?: string[];
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

interface FileReference {
  name: string;
  target: string;
  uid: number;
  gid: number;
  mode: number;
}

const REFERENCE_FIELDS = new Set(['source', 'src', 'target', 'uid', 'gid', 'mode']);

/**
 * `NAME[,target=T,uid=U,gid=G,mode=M]`, or Docker's `source=NAME,…` (`src` too). The mode is
 * octal (0400, 400 or 0o400); 0 is not a mode a file can be given here. The manager checks names
 * and targets; this only checks the syntax.
 */
function parseFileReference(flag: string, value: string): FileReference {
  const bad = (reason: string): FlagError => new FlagError(`invalid value "${value}" for ${flag}: ${reason}`);
  const fields = new Map<string, string>();
  const parts = value.split(',');
  for (const [index, part] of parts.entries()) {
    const equals = part.indexOf('=');
    if (equals < 0 && index === 0) {
      fields.set('source', part);
      continue;
    }
    if (equals < 0) throw bad(`"${part}" must be KEY=VALUE`);
    const key = part.slice(0, equals).trim().toLowerCase();
    const canonical = key === 'src' ? 'source' : key;
    if (!REFERENCE_FIELDS.has(key)) throw bad(`unknown field "${key}" (use source, target, uid, gid or mode)`);
    if (fields.has(canonical)) throw bad(`${canonical} is given twice`);
    fields.set(canonical, part.slice(equals + 1));
  }
  const name = fields.get('source') ?? '';
  if (name === '') throw bad('the name is missing (NAME or source=NAME)');
  const id = (field: 'uid' | 'gid'): number => {
    const text = fields.get(field);
    if (text === undefined) return 0;
    if (!/^\d+$/.test(text) || Number(text) > 2 ** 32 - 1) throw bad(`${field} must be an integer from 0 to ${2 ** 32 - 1}`);
    return Number(text);
  };
  const modeText = fields.get('mode');
  let mode = 0;
  if (modeText !== undefined) {
    const match = /^(?:0o?)?([0-7]{1,3})$/.exec(modeText);
    mode = match?.[1] === undefined ? 0 : parseInt(match[1], 8);
    if (mode === 0) throw bad('mode must be an octal file mode from 1 to 0777, e.g. 0400');
  }
  return { name, target: fields.get('target') ?? '', uid: id('uid'), gid: id('gid'), mode };
}

/** One `--secret` value; the manager fills in the secret's id from its name. */
export function parseSecretFlag(value: string): SecretReference {
  const { name, ...rest } = parseFileReference('--secret', value);
  return { secretId: '', secretName: name, ...rest };
}

/** One `--config` value; the manager fills in the config's id from its name. */
export function parseConfigFlag(value: string): ConfigReference {
  const { name, ...rest } = parseFileReference('--config', value);
  return { configId: '', configName: name, ...rest };
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
        labels: {},
        secrets: (flags.secret ?? []).map(parseSecretFlag),
        configs: (flags.config ?? []).map(parseConfigFlag),
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
