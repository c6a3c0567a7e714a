/**
 * Parsing `service create` flags into a ServiceSpec. Bad values get an error naming the flag;
 * the server validates the spec again (the CLI is not the only client).
 */
import type { ConfigReference, EndpointSpec, Placement, PlacementPreference, PortConfig, SecretReference, ServiceSpec } from '../../proto/skiff/v1/specs.js';
import type { Resources } from '../../proto/skiff/v1/types.js';
import { parseConstraint, parsePreference } from '../../scheduler/index.js';
import { FlagError, parseDuration } from './duration-flag.js';
import { parseNetworks } from './network-flags.js';

// Re-exported: the command modules take every flag parser from here.
export { FlagError, parseDuration };

export interface CreateFlags {
  name?: string;
  replicas: string;
  /** replicated (default) or global: one task on every eligible node. */
  mode?: string;
  /** auto: move tasks to nodes that joined or recovered; manual (default): only on `service rebalance`. */
  rebalance?: string;
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
  /** `--constraint node.labels.zone==a`, repeatable. */
  constraint?: string[];
  /** `--placement-pref spread=node.labels.zone`, repeatable, outermost first. */
  placementPref?: string[];
  reserveCpu?: string;
  reserveMemory?: string;
  maxReplicasPerNode?: string;
  /** `--publish published=P,target=T[,protocol=…][,mode=…]` or `-p P:T[/protocol]`, repeatable. */
  publish?: string[];
  /** `--network NAME` or `--network name=NAME,alias=A,…`, repeatable (network-flags.ts). */
  network?: string[];
  /** `--endpoint-mode vip|dnsrr`. */
  endpointMode?: string;
  /** `--ingress-traffic cluster|local`: the service label skiff.ingress.traffic. */
  ingressTraffic?: string;
}


/** A restart condition: none, on-failure or any. */
export function parseRestartCondition(flag: string, value: string): string {
  if (!['none', 'on-failure', 'any'].includes(value)) throw new FlagError(`invalid value "${value}" for ${flag}: use none, on-failure or any`);
  return value;
}

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

/** One `--secret` value; the manager fills in the secret's id from its name. `flag` names the value's origin in errors. */
export function parseSecretFlag(value: string, flag = '--secret'): SecretReference {
  const { name, ...rest } = parseFileReference(flag, value);
  return { secretId: '', secretName: name, ...rest };
}

/** One `--config` value; the manager fills in the config's id from its name. */
export function parseConfigFlag(value: string, flag = '--config'): ConfigReference {
  const { name, ...rest } = parseFileReference(flag, value);
  return { configId: '', configName: name, ...rest };
}

/** One `--constraint`, checked with the scheduler's own parser so the CLI and the manager agree. */
export function parseConstraintFlag(value: string, flag = '--constraint'): string {
  const parsed = parseConstraint(value);
  if (!parsed.ok) throw new FlagError(`invalid value "${value}" for ${flag}: ${parsed.error}`);
  return parsed.value.text;
}

/** `spread=node.labels.KEY`: spreading is the only preference there is. */
export function parsePlacementPrefFlag(value: string, flag = '--placement-pref'): PlacementPreference {
  const equals = value.indexOf('=');
  const kind = value.slice(0, Math.max(0, equals)).trim();
  if (equals < 0 || kind !== 'spread') throw new FlagError(`invalid value "${value}" for ${flag}: use spread=node.labels.KEY`);
  const parsed = parsePreference(value.slice(equals + 1));
  if (!parsed.ok) throw new FlagError(`invalid value "${value}" for ${flag}: ${parsed.error}`);
  return { spread: parsed.value.text };
}

const PORT_FIELDS = new Set(['published', 'target', 'protocol', 'mode']);

/**
 * `published=8080,target=80[,protocol=tcp|udp][,mode=ingress|host]`, or the short
 * `8080:80[/udp]` (ingress). The published port may be left out of the long form (0: none).
 */
export function parsePublishFlag(value: string, flag = '--publish'): PortConfig {
  const bad = (reason: string): FlagError => new FlagError(`invalid value "${value}" for ${flag}: ${reason}`);
  const port = (field: string, text: string | undefined, required: boolean): number => {
    if (text === undefined && !required) return 0;
    if (text === undefined || !/^\d+$/.test(text) || Number(text) < 1 || Number(text) > 65_535) throw bad(`${field} must be a port from 1 to 65535`);
    return Number(text);
  };
  const short = /^(\d+):(\d+)(?:\/(\w+))?$/.exec(value.trim());
  const fields = new Map<string, string>();
  if (short !== null) {
    fields.set('published', short[1] ?? '').set('target', short[2] ?? '');
    if (short[3] !== undefined) fields.set('protocol', short[3]);
  } else {
    for (const part of value.split(',')) {
      const equals = part.indexOf('=');
      if (equals < 0) throw bad(`"${part}" must be KEY=VALUE (or use the short form PUBLISHED:TARGET[/PROTOCOL])`);
      const key = part.slice(0, equals).trim().toLowerCase();
      if (!PORT_FIELDS.has(key)) throw bad(`unknown field "${key}" (use published, target, protocol or mode)`);
      if (fields.has(key)) throw bad(`${key} is given twice`);
      fields.set(key, part.slice(equals + 1).trim());
    }
  }
  const protocol = (fields.get('protocol') ?? 'tcp').toLowerCase();
  if (protocol !== 'tcp' && protocol !== 'udp') throw bad('protocol must be tcp or udp');
  const publishMode = (fields.get('mode') ?? 'ingress').toLowerCase();
  if (publishMode !== 'ingress' && publishMode !== 'host') throw bad('mode must be ingress or host');
  return { name: '', protocol, targetPort: port('target', fields.get('target'), true), publishedPort: port('published', fields.get('published'), false), publishMode };
}

function placementFromFlags(flags: CreateFlags): Placement | undefined {
  const constraints = (flags.constraint ?? []).map((value) => parseConstraintFlag(value));
  const preferences = (flags.placementPref ?? []).map((value) => parsePlacementPrefFlag(value));
  const maxReplicasPerNode = flags.maxReplicasPerNode === undefined ? 0 : parseCount('--max-replicas-per-node', flags.maxReplicasPerNode);
  if (constraints.length === 0 && preferences.length === 0 && maxReplicasPerNode === 0) return undefined;
  return { constraints, preferences, maxReplicasPerNode };
}

function reservationsFromFlags(flags: CreateFlags): Resources | undefined {
  if (flags.reserveCpu === undefined && flags.reserveMemory === undefined) return undefined;
  return {
    nanoCpus: flags.reserveCpu === undefined ? 0 : Math.round(parsePositiveNumber('--reserve-cpu', flags.reserveCpu) * 1e9),
    memoryBytes: flags.reserveMemory === undefined ? 0 : parseBytes('--reserve-memory', flags.reserveMemory),
    pids: 0,
  };
}

/** `--ingress-traffic local`: published ports reach only the receiving host's tasks (the client's address is kept). */
function ingressTrafficLabel(value: string | undefined): Record<string, string> {
  if (value === undefined) return {};
  const traffic = value.toLowerCase();
  if (traffic !== 'cluster' && traffic !== 'local') throw new FlagError(`invalid value "${value}" for --ingress-traffic: use cluster or local`);
  return { 'skiff.ingress.traffic': traffic };
}

function endpointFromFlags(flags: CreateFlags): EndpointSpec | undefined {
  const ports = (flags.publish ?? []).map((value) => parsePublishFlag(value));
  const mode = (flags.endpointMode ?? '').toLowerCase();
  if (mode !== '' && mode !== 'vip' && mode !== 'dnsrr') throw new FlagError(`invalid value "${flags.endpointMode ?? ''}" for --endpoint-mode: use vip or dnsrr`);
  return ports.length === 0 && mode === '' ? undefined : { mode, ports };
}

export function specFromFlags(image: string, commandArgs: string[], flags: CreateFlags): ServiceSpec {
  const name = flags.name ?? '';
  if (flags.name === undefined) throw new FlagError('--name is required');
  const replicas = parseCount('--replicas', flags.replicas);
  const mode = flags.mode ?? 'replicated';
  if (mode !== 'replicated' && mode !== 'global') throw new FlagError(`invalid value "${mode}" for --mode: use replicated or global`);
  const { networks, networkAliases } = parseNetworks('--network', flags.network ?? []);
  return {
    name,
    labels: { ...parseKeyValues('--label', flags.label), ...ingressTrafficLabel(flags.ingressTraffic) },
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
        healthcheck: undefined, readOnly: false, capAdd: [], capDrop: [], sysctls: {}, ulimits: [], init: false, stopSignal: '', stopGracePeriodMs: 0,
        labels: {},
        secrets: (flags.secret ?? []).map((value) => parseSecretFlag(value)),
        configs: (flags.config ?? []).map((value) => parseConfigFlag(value)),
      },
      resources: {
        limits: {
          nanoCpus: flags.limitCpu === undefined ? 0 : Math.round(parsePositiveNumber('--limit-cpu', flags.limitCpu) * 1e9),
          memoryBytes: flags.limitMemory === undefined ? 0 : parseBytes('--limit-memory', flags.limitMemory),
          pids: flags.limitPids === undefined ? 0 : parseCount('--limit-pids', flags.limitPids),
        },
        reservations: reservationsFromFlags(flags),
      },
      restartPolicy: {
        condition: flags.restartCondition ?? '',
        delayMs: flags.restartDelay === undefined ? 0 : parseDuration('--restart-delay', flags.restartDelay),
        maxAttempts: flags.restartMaxAttempts === undefined ? 0 : parseCount('--restart-max-attempts', flags.restartMaxAttempts),
        windowMs: flags.restartWindow === undefined ? 0 : parseDuration('--restart-window', flags.restartWindow),
      },
      placement: placementFromFlags(flags),
      networks,
      forceUpdate: 0,
      networkAliases,
    },
    mode: mode === 'global' ? { $case: 'global', value: {} } : { $case: 'replicated', value: { replicas } },
    updateConfig: undefined,
    rollbackConfig: undefined,
    endpoint: endpointFromFlags(flags),
    deployStrategy: '',
    rebalance: rebalanceFromFlags(flags.rebalance),
    bluegreenHoldMs: 0,
    canaryReplicas: 0,
  };
}

function rebalanceFromFlags(value: string | undefined): string {
  if (value === undefined || value === 'manual') return '';
  if (value !== 'auto') throw new FlagError(`invalid value "${value}" for --rebalance: use auto or manual`);
  return 'auto';
}

/** A number above 0 (CPUs), or a FlagError naming the flag. */
export function parsePositiveNumber(flag: string, value: string): number {
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed <= 0) throw new FlagError(`invalid value "${value}" for ${flag}: must be a positive number`);
  return parsed;
}

/** Splits `--args "a b c"` like a shell would for plain words and quotes (no expansions); `flag` names the value in errors. */
export function splitArgs(text: string, flag = '--args'): string[] {
  const words: string[] = [];
  let current = '';
  let quote: '"' | "'" | undefined;
  let inWord = false;
  for (const char of text) {
    if (quote !== undefined) {
      if (char === quote) quote = undefined;
      else current += char;
    } else if (char === '"' || char === "'") {
      quote = char;
      inWord = true;
    } else if (/\s/.test(char)) {
      if (inWord) words.push(current);
      current = '';
      inWord = false;
    } else {
      current += char;
      inWord = true;
    }
  }
  if (quote !== undefined) throw new FlagError(`invalid value "${text}" for ${flag}: unterminated ${quote}`);
  if (inWord) words.push(current);
  return words;
}
