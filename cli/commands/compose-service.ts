/**
 * One Compose service as a Skiff ServiceSpec, the way `docker stack deploy` converts it: named
 * STACK_KEY, labelled with the stack, its networks the stack's (with the service's key as an alias
 * on each), its secrets, configs and named volumes resolved to the stack's names. Values go through
 * the `service create` flag parsers, given the Compose path as their name. Pure: no I/O.
 */
import { resolve } from 'node:path';
import { serviceNameProblem } from '../../common/object-names.js';
import type { ConfigReference, ContainerSpec, HealthCheck, Mount, NetworkAliases, PortConfig, SecretReference, ServiceSpec, Ulimit } from '../../proto/skiff/v1/specs.js';
import { composeDeploy } from './compose-deploy.js';
import type { Lookup } from './compose-interpolate.js';
import { at, boolean, count, isMap, keyValues, labels, list, mapping, numberText, onlyKeys, parsed, refuse, stringList, text, textOrList } from './compose-values.js';
import { parseCapabilityFlag, parseMountFlag, parseStopSignalFlag, parseSysctlFlags, parseUlimitFlags } from './isolation-flags.js';
import { parseConfigFlag, parseDuration, parsePublishFlag, parseSecretFlag, splitArgs } from './service-flags.js';

/** The label that makes an object part of a stack (Swarm's, so `docker stack` sees Skiff's stacks and the other way round). */
export const NAMESPACE_LABEL = 'com.docker.stack.namespace';
/** The image as the Compose file names it, on the service (Swarm's; `docker stack deploy --resolve-image changed` reads it). */
export const IMAGE_LABEL = 'com.docker.stack.image';

/** What the services of a stack refer to, each Compose key to its object's name. */
export interface StackScope {
  stack: string;
  /** Relative paths (binds, secret files) are resolved against it: the first Compose file's directory. */
  directory: string;
  /** For `~/…` paths; undefined refuses them. */
  home: string | undefined;
  networks: ReadonlyMap<string, string>;
  secrets: ReadonlyMap<string, string>;
  configs: ReadonlyMap<string, string>;
  volumes: ReadonlyMap<string, string>;
  /** Environment entries without a value (`- DEBUG`) take the variable from here, or are left out. */
  environment: Lookup;
}

const SERVICE_KEYS = [
  'image', 'command', 'entrypoint', 'environment', 'labels', 'user', 'working_dir', 'hostname', 'read_only', 'init', 'cap_add', 'cap_drop',
  'sysctls', 'ulimits', 'stop_signal', 'stop_grace_period', 'healthcheck', 'ports', 'networks', 'secrets', 'configs', 'volumes', 'deploy',
];

/** `./data`, `~/data` or `/srv/data` as an absolute host path. */
export function hostPath(source: string, path: string, scope: Pick<StackScope, 'directory' | 'home'>): string {
  if (source === '~' || source.startsWith('~/')) {
    if (scope.home === undefined) throw refuse(path, `"${source}": the home directory is not known`);
    return resolve(scope.home, `.${source.slice(1)}`);
  }
  return resolve(scope.directory, source);
}

/** The service `key` of the file as the ServiceSpec skiff stack deploy creates or updates. */
export function composeService(key: string, value: unknown, scope: StackScope): ServiceSpec {
  const path = at('services', key);
  const service = mapping(value, path);
  onlyKeys(service, path, SERVICE_KEYS, true);
  const name = `${scope.stack}_${key}`;
  const nameProblem = serviceNameProblem(name);
  if (nameProblem !== undefined) throw refuse(path, `the service name "${name}" ${nameProblem}`);
  if (service['image'] === undefined) throw refuse(at(path, 'image'), 'is required (skiff stack deploy does not build images)');
  const image = text(service['image'], at(path, 'image')).trim();
  if (image === '') throw refuse(at(path, 'image'), 'must not be empty');
  const deploy = composeDeploy(service['deploy'], at(path, 'deploy'));
  const ports = service['ports'] === undefined ? [] : list(service['ports'], at(path, 'ports')).map((port, index) => publishedPort(port, at(at(path, 'ports'), index)));
  return {
    name,
    labels: { ...deploy.labels, [NAMESPACE_LABEL]: scope.stack, [IMAGE_LABEL]: image },
    taskTemplate: {
      container: containerSpec(service, path, image, scope),
      resources: deploy.resources,
      restartPolicy: deploy.restartPolicy,
      placement: deploy.placement,
      ...serviceNetworks(service['networks'], at(path, 'networks'), key, scope),
      forceUpdate: 0,
    },
    mode: deploy.mode,
    updateConfig: deploy.updateConfig,
    rollbackConfig: deploy.rollbackConfig,
    endpoint: ports.length === 0 && deploy.endpointMode === '' ? undefined : { mode: deploy.endpointMode, ports },
    deployStrategy: '',
    rebalance: '',
    bluegreenHoldMs: 0,
    canaryReplicas: 0,
  };
}

function containerSpec(service: Record<string, unknown>, path: string, image: string, scope: StackScope): ContainerSpec {
  const optional = <T>(key: string, read: (value: unknown, keyPath: string) => T, fallback: T): T => (service[key] === undefined ? fallback : read(service[key], at(path, key)));
  const capabilities = (value: unknown, keyPath: string): string[] => stringList(value, keyPath).map((name, index) => parsed(() => parseCapabilityFlag(at(keyPath, index), name)));
  return {
    image,
    // As Docker converts it: the entrypoint is the container's command, the Compose command its arguments.
    command: optional('entrypoint', commandLine, []),
    args: optional('command', commandLine, []),
    env: optional('environment', (value, keyPath) => environment(value, keyPath, scope.environment), []),
    user: optional('user', text, ''),
    workdir: optional('working_dir', text, ''),
    hostname: optional('hostname', text, ''),
    mounts: optional('volumes', (value, keyPath) => list(value, keyPath).map((entry, index) => volumeMount(entry, at(keyPath, index), scope)), []),
    healthcheck: optional('healthcheck', healthcheck, undefined),
    labels: { ...optional('labels', labels, {}), [NAMESPACE_LABEL]: scope.stack },
    secrets: optional('secrets', (value, keyPath) => fileReferences('secret', value, keyPath, scope.secrets), []) as SecretReference[],
    configs: optional('configs', (value, keyPath) => fileReferences('config', value, keyPath, scope.configs), []) as ConfigReference[],
    readOnly: optional('read_only', boolean, false),
    capAdd: optional('cap_add', capabilities, []),
    capDrop: optional('cap_drop', capabilities, []),
    sysctls: optional('sysctls', (value, keyPath) => parsed(() => parseSysctlFlags([...keyValues(value, keyPath)].map(([name, setting]) => `${name}=${setting ?? ''}`), keyPath)), {}),
    ulimits: optional('ulimits', ulimits, []),
    init: optional('init', boolean, false),
    stopSignal: optional('stop_signal', (value, keyPath) => parsed(() => parseStopSignalFlag(text(value, keyPath), keyPath)), ''),
    stopGracePeriodMs: optional('stop_grace_period', duration, 0),
  };
}

/** `command: npm start` (split as a shell would, without expansions) or `command: [npm, start]`. */
function commandLine(value: unknown, path: string): string[] {
  const given = textOrList(value, path);
  return 'list' in given ? given.list : parsed(() => splitArgs(given.text, path));
}

function duration(value: unknown, path: string): number {
  return parsed(() => parseDuration(path, text(value, path)));
}

/** KEY=VALUE entries, sorted as Docker sends them; a KEY without a value takes the variable, or is left out when unset. */
function environment(value: unknown, path: string, lookup: Lookup): string[] {
  const entries: string[] = [];
  for (const [name, setting] of keyValues(value, path)) {
    const resolved = setting ?? lookup(name);
    if (resolved !== undefined) entries.push(`${name}=${resolved}`);
  }
  return entries.sort();
}

function ulimits(value: unknown, path: string): Ulimit[] {
  const entries = Object.entries(mapping(value, path)).map(([name, setting]) => {
    const settingPath = at(path, name);
    if (!isMap(setting)) return `${name}=${numberText(setting, settingPath)}`;
    onlyKeys(setting, settingPath, ['soft', 'hard']);
    const bound = (which: 'soft' | 'hard'): string => {
      if (setting[which] === undefined) throw refuse(at(settingPath, which), 'is required');
      return numberText(setting[which], at(settingPath, which));
    };
    return `${name}=${bound('soft')}:${bound('hard')}`;
  });
  return parsed(() => parseUlimitFlags(entries, path)).sort((a, b) => a.name.localeCompare(b.name));
}

const HEALTH_TESTS = new Set(['CMD', 'CMD-SHELL', 'NONE']);

function healthcheck(value: unknown, path: string): HealthCheck {
  const check = mapping(value, path);
  onlyKeys(check, path, ['test', 'interval', 'timeout', 'retries', 'start_period', 'disable']);
  const none: HealthCheck = { test: ['NONE'], intervalMs: 0, timeoutMs: 0, retries: 0, startPeriodMs: 0, http: undefined, tcpPort: 0 };
  if (check['disable'] !== undefined && boolean(check['disable'], at(path, 'disable'))) {
    if (check['test'] !== undefined) throw refuse(at(path, 'test'), 'cannot be used with disable: true');
    return none;
  }
  let test: string[] = [];
  if (check['test'] !== undefined) {
    const given = textOrList(check['test'], at(path, 'test'));
    test = 'text' in given ? ['CMD-SHELL', given.text] : given.list;
    if (!HEALTH_TESTS.has(test[0] ?? '')) throw refuse(at(path, 'test'), 'a list must start with CMD, CMD-SHELL or NONE');
  }
  const time = (key: string): number => (check[key] === undefined ? 0 : duration(check[key], at(path, key)));
  return {
    ...none,
    test,
    intervalMs: time('interval'),
    timeoutMs: time('timeout'),
    retries: check['retries'] === undefined ? 0 : count(check['retries'], at(path, 'retries')),
    startPeriodMs: time('start_period'),
  };
}

/** `8080:80`, `80`, `53:53/udp`, or `{target, published, protocol, mode}`, through the --publish parser. */
function publishedPort(value: unknown, path: string): PortConfig {
  const fields: string[] = [];
  if (isMap(value)) {
    onlyKeys(value, path, ['target', 'published', 'protocol', 'mode']);
    if (value['target'] === undefined) throw refuse(at(path, 'target'), 'is required');
    for (const key of ['target', 'published', 'protocol', 'mode']) if (value[key] !== undefined) fields.push(`${key}=${text(value[key], at(path, key))}`);
  } else {
    const short = /^(?:(\d+):)?(\d+)(?:\/(\w+))?$/.exec(text(value, path).trim());
    if (short === null) throw refuse(path, `"${text(value, path)}" must be TARGET, PUBLISHED:TARGET or PUBLISHED:TARGET/PROTOCOL (host addresses and port ranges are not supported)`);
    fields.push(`target=${short[2] ?? ''}`);
    if (short[1] !== undefined) fields.push(`published=${short[1]}`);
    if (short[3] !== undefined) fields.push(`protocol=${short[3]}`);
  }
  return parsed(() => parsePublishFlag(fields.join(','), path));
}

/** `--mount` fields as text; a value holding a comma cannot be written there. */
function mountText(fields: ReadonlyArray<readonly [string, string]>, path: string): string {
  for (const [, value] of fields) if (value.includes(',')) throw refuse(path, `"${value}" must not contain ","`);
  return fields.map(([key, value]) => (value === '' ? key : `${key}=${value}`)).join(',');
}

/** The stack's name of the named volume `source`. */
function namedVolume(source: string, path: string, scope: StackScope): string {
  const name = scope.volumes.get(source);
  if (name === undefined) throw refuse(path, `volume "${source}" is not defined under the top-level volumes`);
  return name;
}

/** A host path (`./x`, `~/x`, `/x`) or else a named volume of the stack: the short syntax's rule. */
function mountSource(source: string, path: string, scope: StackScope): ReadonlyArray<readonly [string, string]> {
  if (/^[./~]/.test(source)) return [['type', 'bind'], ['source', hostPath(source, path, scope)]];
  return [['type', 'volume'], ['source', namedVolume(source, path, scope)]];
}

/** `data:/data`, `./site:/usr/share/nginx/html:ro`, `/cache`, or the long syntax, as a Mount. */
function volumeMount(value: unknown, path: string, scope: StackScope): Mount {
  const fields: Array<readonly [string, string]> = [];
  if (!isMap(value)) {
    const parts = text(value, path).split(':');
    if (parts.length > 3) throw refuse(path, `"${text(value, path)}" must be [SOURCE:]TARGET[:MODE]`);
    const [first = '', second, mode] = parts;
    fields.push(...(second === undefined ? [['type', 'volume'] as const] : mountSource(first, path, scope)), ['target', second ?? first]);
    const options = (mode ?? '').split(',').filter((option) => option !== '');
    const unknown = options.find((option) => option !== 'ro' && option !== 'rw');
    if (unknown !== undefined) throw refuse(path, `mode "${unknown}" is not supported (use ro or rw)`);
    if (options.includes('ro')) fields.push(['readonly', '']);
    return parsed(() => parseMountFlag(mountText(fields, path), path));
  }
  onlyKeys(value, path, ['type', 'source', 'target', 'read_only', 'tmpfs']);
  const type = value['type'] === undefined ? 'volume' : text(value['type'], at(path, 'type'));
  let source = value['source'] === undefined ? '' : text(value['source'], at(path, 'source'));
  if (type === 'bind' && source !== '') source = hostPath(source, at(path, 'source'), scope);
  if (type === 'volume' && source !== '') source = namedVolume(source, at(path, 'source'), scope);
  // A tmpfs given a source, or an unknown type, is refused by the --mount parser.
  fields.push(['type', type], ...(source === '' ? [] : [['source', source] as const]));
  if (value['target'] !== undefined) fields.push(['target', text(value['target'], at(path, 'target'))]);
  if (value['read_only'] !== undefined && boolean(value['read_only'], at(path, 'read_only'))) fields.push(['readonly', '']);
  if (value['tmpfs'] !== undefined) {
    const tmpfs = mapping(value['tmpfs'], at(path, 'tmpfs'));
    onlyKeys(tmpfs, at(path, 'tmpfs'), ['size', 'mode']);
    if (tmpfs['size'] !== undefined) fields.push(['tmpfs-size', numberText(tmpfs['size'], at(path, 'tmpfs.size'))]);
    if (tmpfs['mode'] !== undefined) fields.push(['tmpfs-mode', octal(tmpfs['mode'], at(path, 'tmpfs.mode'))]);
  }
  return parsed(() => parseMountFlag(mountText(fields, path), path));
}

/** A file mode: YAML's integer (`0440`, read as octal) or its text, as octal text for the flag parsers. */
function octal(value: unknown, path: string): string {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return `0${value.toString(8)}`;
  return text(value, path);
}

/**
 * A service's `secrets:` or `configs:`, short (`- token`) or long (`{source, target, uid, gid, mode}`),
 * sorted by name as Docker sends them. A secret's file defaults to its key under /run/secrets, a
 * config's to /KEY; a relative config target is taken from / (Docker's rule).
 */
function fileReferences(kind: 'secret' | 'config', value: unknown, path: string, names: ReadonlyMap<string, string>): Array<SecretReference | ConfigReference> {
  const references = list(value, path).map((entry, index) => {
    const entryPath = at(path, index);
    const reference = isMap(entry) ? entry : { source: entry };
    onlyKeys(reference, entryPath, ['source', 'target', 'uid', 'gid', 'mode']);
    if (reference['source'] === undefined) throw refuse(at(entryPath, 'source'), 'is required');
    const source = text(reference['source'], isMap(entry) ? at(entryPath, 'source') : entryPath);
    const name = names.get(source);
    if (name === undefined) throw refuse(entryPath, `${kind} "${source}" is not defined under the top-level ${kind}s`);
    let target = reference['target'] === undefined ? source : text(reference['target'], at(entryPath, 'target'));
    if (kind === 'config' && !target.startsWith('/')) target = `/${target}`;
    const fields = [`source=${name}`, `target=${target}`];
    for (const key of ['uid', 'gid'] as const) if (reference[key] !== undefined) fields.push(`${key}=${text(reference[key], at(entryPath, key))}`);
    if (reference['mode'] !== undefined) fields.push(`mode=${octal(reference['mode'], at(entryPath, 'mode'))}`);
    return parsed(() => (kind === 'secret' ? parseSecretFlag(fields.join(','), entryPath) : parseConfigFlag(fields.join(','), entryPath)));
  });
  const nameOf = (reference: SecretReference | ConfigReference): string => ('secretName' in reference ? reference.secretName : reference.configName);
  return references.sort((a, b) => nameOf(a).localeCompare(nameOf(b)));
}

/**
 * The stack's networks the service joins (`default` without `networks:`), sorted by name as Docker
 * sends them, each with the service's key as an alias after those the file gives.
 */
function serviceNetworks(value: unknown, path: string, key: string, scope: StackScope): { networks: string[]; networkAliases: NetworkAliases[] } {
  const wanted = new Map<string, { path: string; aliases: string[] }>();
  if (value === undefined) wanted.set('default', { path, aliases: [] });
  else if (Array.isArray(value)) stringList(value, path).forEach((network, index) => wanted.set(network, { path: at(path, index), aliases: [] }));
  else {
    for (const [network, settings] of Object.entries(mapping(value, path))) {
      const settingsPath = at(path, network);
      const map = mapping(settings, settingsPath);
      onlyKeys(map, settingsPath, ['aliases']);
      wanted.set(network, { path: settingsPath, aliases: map['aliases'] === undefined ? [] : stringList(map['aliases'], at(settingsPath, 'aliases')) });
    }
  }
  const attachments = [...wanted].map(([network, settings]) => {
    const name = scope.networks.get(network);
    if (name === undefined) throw refuse(settings.path, `network "${network}" is not defined under the top-level networks`);
    return { network: name, aliases: [...settings.aliases.filter((alias) => alias !== key), key] };
  });
  attachments.sort((a, b) => a.network.localeCompare(b.network));
  return { networks: attachments.map((attachment) => attachment.network), networkAliases: attachments };
}
