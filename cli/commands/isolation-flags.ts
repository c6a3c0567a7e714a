/**
 * `service create` flags for isolation, mounts and stopping, in Docker's syntax: --read-only,
 * --cap-add/--cap-drop, --sysctl, --ulimit, --init, --stop-signal, --stop-grace-period, --mount.
 * Errors name the flag and the value; the manager checks the spec again with the same rules.
 */
import { normalizeCapability, parseSignal, sysctlProblem, ulimitProblem } from '../../common/container-options.js';
import type { ContainerSpec, Mount, ServiceSpec, Ulimit } from '../../proto/skiff/v1/specs.js';
import { FlagError, parseBytes, parseDuration } from './service-flags.js';

export interface IsolationFlags {
  readOnly?: boolean;
  capAdd?: string[];
  capDrop?: string[];
  /** `--sysctl KEY=VALUE`, repeatable. */
  sysctl?: string[];
  /** `--ulimit NAME=SOFT[:HARD]`, repeatable. */
  ulimit?: string[];
  init?: boolean;
  stopSignal?: string;
  stopGracePeriod?: string;
  /** `--mount type=volume|bind|tmpfs,source=…,target=…[,readonly][,tmpfs-size=…][,tmpfs-mode=…]`, repeatable. */
  mount?: string[];
}

/** The container fields these flags set (only those given, so the caller's defaults stay). */
export function isolationFromFlags(flags: IsolationFlags): Partial<Pick<ContainerSpec, 'readOnly' | 'capAdd' | 'capDrop' | 'sysctls' | 'ulimits' | 'init' | 'stopSignal' | 'stopGracePeriodMs' | 'mounts'>> {
  return {
    ...(flags.readOnly === true ? { readOnly: true } : {}),
    ...(flags.init === true ? { init: true } : {}),
    capAdd: (flags.capAdd ?? []).map((name) => parseCapabilityFlag('--cap-add', name)),
    capDrop: (flags.capDrop ?? []).map((name) => parseCapabilityFlag('--cap-drop', name)),
    sysctls: parseSysctlFlags(flags.sysctl ?? []),
    ulimits: parseUlimitFlags(flags.ulimit ?? []),
    ...(flags.stopSignal === undefined ? {} : { stopSignal: parseStopSignalFlag(flags.stopSignal) }),
    ...(flags.stopGracePeriod === undefined ? {} : { stopGracePeriodMs: parseDuration('--stop-grace-period', flags.stopGracePeriod) }),
    mounts: (flags.mount ?? []).map((value) => parseMountFlag(value)),
  };
}

export function parseCapabilityFlag(flag: string, value: string): string {
  const checked = normalizeCapability(value);
  if (!checked.ok) throw new FlagError(`invalid value "${value}" for ${flag}: ${checked.error}`);
  return value.trim().toUpperCase();
}

export function parseStopSignalFlag(value: string, flag = '--stop-signal'): string {
  const checked = parseSignal(value);
  if (!checked.ok) throw new FlagError(`invalid value "${value}" for ${flag}: ${checked.error}`);
  return value.trim();
}

/** `--sysctl net.core.somaxconn=1024`; a key given twice keeps the last value, as in Docker. */
export function parseSysctlFlags(values: readonly string[], flag = '--sysctl'): Record<string, string> {
  const result: Record<string, string> = {};
  for (const entry of values) {
    const equals = entry.indexOf('=');
    if (equals <= 0) throw new FlagError(`invalid value "${entry}" for ${flag}: must be KEY=VALUE`);
    const key = entry.slice(0, equals).trim();
    const value = entry.slice(equals + 1);
    const problem = sysctlProblem(key, value);
    if (problem !== undefined) throw new FlagError(`invalid value "${entry}" for ${flag}: ${problem}`);
    result[key] = value;
  }
  return result;
}

/** `--ulimit nofile=1024:2048` or `--ulimit nofile=1024` (soft = hard); -1 is unlimited. */
export function parseUlimitFlags(values: readonly string[], flag = '--ulimit'): Ulimit[] {
  const result: Ulimit[] = [];
  for (const entry of values) {
    const match = /^([a-z]+)=(-?\d+)(?::(-?\d+))?$/.exec(entry.trim());
    if (match === null) throw new FlagError(`invalid value "${entry}" for ${flag}: use NAME=SOFT[:HARD], e.g. nofile=1024:2048`);
    const ulimit = { name: match[1] ?? '', soft: Number(match[2]), hard: Number(match[3] ?? match[2]) };
    const problem = ulimitProblem(ulimit) ?? (result.some((other) => other.name === ulimit.name) ? `${ulimit.name} is given twice` : undefined);
    if (problem !== undefined) throw new FlagError(`invalid value "${entry}" for ${flag}: ${problem}`);
    result.push(ulimit);
  }
  return result;
}

const MOUNT_KEYS: Readonly<Record<string, string>> = {
  type: 'type', source: 'source', src: 'source', target: 'target', destination: 'target', dst: 'target',
  readonly: 'readonly', ro: 'readonly', 'tmpfs-size': 'tmpfs-size', 'tmpfs-mode': 'tmpfs-mode',
};

/**
 * One `--mount`: comma-separated KEY=VALUE fields (type, source|src, target|destination|dst,
 * tmpfs-size, tmpfs-mode) and `readonly`/`ro` alone or `=true|false|1|0`. The type defaults to
 * volume, as in Docker.
 */
export function parseMountFlag(value: string, flag = '--mount'): Mount {
  const bad = (reason: string): FlagError => new FlagError(`invalid value "${value}" for ${flag}: ${reason}`);
  const fields = new Map<string, string>();
  for (const part of value.split(',')) {
    const equals = part.indexOf('=');
    const rawKey = (equals < 0 ? part : part.slice(0, equals)).trim().toLowerCase();
    const key = MOUNT_KEYS[rawKey];
    if (key === undefined) throw bad(`unknown field "${rawKey}" (use type, source, target, readonly, tmpfs-size or tmpfs-mode)`);
    if (fields.has(key)) throw bad(`${key} is given twice`);
    if (equals < 0 && key !== 'readonly') throw bad(`"${part}" must be KEY=VALUE`);
    fields.set(key, equals < 0 ? 'true' : part.slice(equals + 1).trim());
  }
  const type = fields.get('type') ?? 'volume';
  if (type !== 'bind' && type !== 'volume' && type !== 'tmpfs') throw bad(`type "${type}" must be bind, volume or tmpfs`);
  const target = fields.get('target') ?? '';
  if (target === '') throw bad('target is missing (target=/path inside the container)');
  const readonlyText = (fields.get('readonly') ?? 'false').toLowerCase();
  if (!['true', 'false', '1', '0'].includes(readonlyText)) throw bad('readonly must be true or false');
  const sizeText = fields.get('tmpfs-size');
  const modeText = fields.get('tmpfs-mode');
  if (type !== 'tmpfs' && (sizeText !== undefined || modeText !== undefined)) throw bad('tmpfs-size and tmpfs-mode are for type=tmpfs');
  let tmpfsMode = 0;
  if (modeText !== undefined) {
    const match = /^(?:0o?)?([0-7]{1,4})$/.exec(modeText);
    if (match?.[1] === undefined) throw bad('tmpfs-mode must be an octal mode such as 1777 or 0700');
    tmpfsMode = parseInt(match[1], 8);
  }
  const source = fields.get('source') ?? '';
  if (type === 'bind' && source === '') throw bad('source is missing (source=/absolute/host/path)');
  if (type === 'tmpfs' && source !== '') throw bad('a tmpfs mount takes no source');
  return {
    type,
    source,
    target,
    readOnly: readonlyText === 'true' || readonlyText === '1',
    tmpfsSizeBytes: sizeText === undefined ? 0 : parseBytes(`${flag} tmpfs-size`, sizeText),
    tmpfsMode,
  };
}

/** `spec` with the container fields these flags set. */
export function applyIsolationFlags(spec: ServiceSpec, flags: IsolationFlags): ServiceSpec {
  const container = spec.taskTemplate?.container;
  if (spec.taskTemplate === undefined || container === undefined) return spec;
  return { ...spec, taskTemplate: { ...spec.taskTemplate, container: { ...container, ...isolationFromFlags(flags) } } };
}
