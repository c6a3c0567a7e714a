/**
 * A Compose file (already parsed, interpolated and merged: compose-file.ts) as the plan of a stack:
 * the networks, secrets and configs to create or update and the services to create or update, all
 * named and labelled as `docker stack deploy` does, so that either CLI sees the other's stacks.
 * The whole file is checked here, before anything is written: a refused file creates nothing.
 * Pure: no I/O (secret and config files are named, not read).
 */
import { dataNameProblem, networkNameProblem, serviceNameProblem } from '../../common/object-names.js';
import type { NetworkSpec, ServiceSpec } from '../../proto/skiff/v1/specs.js';
import { CliError } from '../cli-error.js';
import type { Lookup } from './compose-interpolate.js';
import { composeService, hostPath, NAMESPACE_LABEL, type StackScope } from './compose-service.js';
import { at, boolean, labels, list, mapping, onlyKeys, refuse, text } from './compose-values.js';

export { IMAGE_LABEL, NAMESPACE_LABEL } from './compose-service.js';

export type DataKind = 'secret' | 'config';

/** A secret or config the stack creates (or updates with the same data), read from `file`. */
export interface PlannedData {
  key: string;
  name: string;
  labels: Record<string, string>;
  /** Absolute path of the file holding its data. */
  file: string;
}

export interface StackPlan {
  stack: string;
  /** The stack's networks that its services use, to create when missing. */
  networks: NetworkSpec[];
  /** Networks, secrets and configs declared `external: true`: they must exist; never created or removed. */
  externalNetworks: string[];
  secrets: PlannedData[];
  externalSecrets: string[];
  configs: PlannedData[];
  externalConfigs: string[];
  /** Sorted by name. */
  services: ServiceSpec[];
}

export interface ComposeOptions {
  stack: string;
  /** Relative paths are resolved against it: the first Compose file's directory. */
  directory: string;
  home: string | undefined;
  environment: Lookup;
}

const TOP_LEVEL_KEYS = ['version', 'name', 'services', 'networks', 'secrets', 'configs', 'volumes'];

/** Why `stack` cannot name a stack, or undefined: its objects are named STACK_KEY. */
export function stackNameProblem(stack: string): string | undefined {
  const problem = serviceNameProblem(`${stack}_x`);
  return problem === undefined && stack !== '' ? undefined : "must be letters, digits, '-' or '_', starting with a letter or digit, short enough for STACK_SERVICE to have at most 63 characters";
}

/** The plan of stack `options.stack` from the merged Compose `document`; refuses the first problem, naming its path. */
export function translateCompose(document: unknown, options: ComposeOptions): StackPlan {
  const { stack } = options;
  const nameProblem = stackNameProblem(stack);
  if (nameProblem !== undefined) throw new CliError(`cannot deploy stack "${stack}": its name ${nameProblem}`);
  const top = mapping(document, '');
  onlyKeys(top, '', TOP_LEVEL_KEYS, true);
  if (top['version'] !== undefined) text(top['version'], 'version');
  if (top['name'] !== undefined) text(top['name'], 'name');
  const networks = definitions(top['networks'], 'networks', (key, value, path) => networkDefinition(stack, key, value, path));
  // A service without `networks:` joins the stack's default network, declared or not.
  if (!networks.has('default')) networks.set('default', { name: `${stack}_default`, external: false, spec: networkSpec(stack, `${stack}_default`, {}, 'networks.default') });
  const secrets = definitions(top['secrets'], 'secrets', (key, value, path) => dataDefinition('secret', stack, key, value, path, options));
  const configs = definitions(top['configs'], 'configs', (key, value, path) => dataDefinition('config', stack, key, value, path, options));
  const volumes = definitions(top['volumes'], 'volumes', (key, value, path) => volumeName(stack, key, value, path));
  const scope: StackScope = {
    stack,
    directory: options.directory,
    home: options.home,
    networks: new Map([...networks].map(([key, network]) => [key, network.name])),
    secrets: new Map([...secrets].map(([key, secret]) => [key, secret.name])),
    configs: new Map([...configs].map(([key, config]) => [key, config.name])),
    volumes,
    environment: options.environment,
  };
  const serviceMap = mapping(top['services'], 'services');
  if (Object.keys(serviceMap).length === 0) throw refuse('services', 'at least one service is required');
  const services = Object.keys(serviceMap).sort().map((key) => composeService(key, serviceMap[key], scope));
  const used = new Set(services.flatMap((service) => service.taskTemplate?.networks ?? []));
  const usedNetworks = [...networks.values()].filter((network) => used.has(network.name));
  return {
    stack,
    networks: usedNetworks.flatMap((network) => (network.spec === undefined ? [] : [network.spec])),
    externalNetworks: usedNetworks.filter((network) => network.external).map((network) => network.name),
    secrets: [...secrets.entries()].flatMap(([key, secret]) => (secret.external ? [] : [{ key, name: secret.name, labels: secret.labels, file: secret.file }])),
    externalSecrets: [...secrets.values()].filter((secret) => secret.external).map((secret) => secret.name),
    configs: [...configs.entries()].flatMap(([key, config]) => (config.external ? [] : [{ key, name: config.name, labels: config.labels, file: config.file }])),
    externalConfigs: [...configs.values()].filter((config) => config.external).map((config) => config.name),
    services,
  };
}

/** Each entry of a top-level section, read by `read`, by key. */
function definitions<T>(value: unknown, section: string, read: (key: string, value: unknown, path: string) => T): Map<string, T> {
  const map = mapping(value, section);
  return new Map(Object.keys(map).map((key) => [key, read(key, map[key], at(section, key))]));
}

/** The name of a stack's object: `name:`, else the key itself when external, else STACK_KEY. */
function objectName(stack: string, key: string, given: Record<string, unknown>, external: boolean, path: string): string {
  if (given['name'] !== undefined) return text(given['name'], at(path, 'name'));
  return external ? key : `${stack}_${key}`;
}

/** `external: true` allows `name:` beside it, nothing else. */
function isExternal(given: Record<string, unknown>, path: string): boolean {
  if (given['external'] === undefined || !boolean(given['external'], at(path, 'external'))) return false;
  const other = Object.keys(given).find((key) => key !== 'external' && key !== 'name');
  if (other !== undefined) throw refuse(at(path, other), 'cannot be used with external: true');
  return true;
}

interface NetworkDefinition {
  name: string;
  external: boolean;
  /** Undefined when external. */
  spec: NetworkSpec | undefined;
}

function networkDefinition(stack: string, key: string, value: unknown, path: string): NetworkDefinition {
  const given = mapping(value, path);
  onlyKeys(given, path, ['driver', 'external', 'name', 'labels', 'internal', 'attachable', 'ipam']);
  const external = isExternal(given, path);
  const name = objectName(stack, key, given, external, path);
  const problem = networkNameProblem(name);
  if (problem !== undefined) throw refuse(path, `the network name "${name}" ${problem}`);
  return { name, external, spec: external ? undefined : networkSpec(stack, name, given, path) };
}

function networkSpec(stack: string, name: string, given: Record<string, unknown>, path: string): NetworkSpec {
  const driver = given['driver'] === undefined ? 'overlay' : text(given['driver'], at(path, 'driver'));
  if (driver !== 'overlay') throw refuse(at(path, 'driver'), `"${driver}" is not supported: Skiff's networks are overlay networks`);
  let subnet = '';
  if (given['ipam'] !== undefined) {
    const ipamPath = at(path, 'ipam');
    const ipam = mapping(given['ipam'], ipamPath);
    onlyKeys(ipam, ipamPath, ['driver', 'config']);
    if (ipam['driver'] !== undefined && text(ipam['driver'], at(ipamPath, 'driver')) !== 'default') throw refuse(at(ipamPath, 'driver'), 'only the default IPAM driver is supported');
    const configs = ipam['config'] === undefined ? [] : list(ipam['config'], at(ipamPath, 'config'));
    if (configs.length > 1) throw refuse(at(ipamPath, 'config'), 'may hold one subnet only');
    if (configs[0] !== undefined) {
      const configPath = at(at(ipamPath, 'config'), 0);
      const config = mapping(configs[0], configPath);
      onlyKeys(config, configPath, ['subnet']);
      if (config['subnet'] !== undefined) subnet = text(config['subnet'], at(configPath, 'subnet'));
    }
  }
  return {
    name,
    labels: { ...(given['labels'] === undefined ? {} : labels(given['labels'], at(path, 'labels'))), [NAMESPACE_LABEL]: stack },
    driver: 'overlay',
    subnet,
    internal: given['internal'] === undefined ? false : boolean(given['internal'], at(path, 'internal')),
    attachable: given['attachable'] === undefined ? false : boolean(given['attachable'], at(path, 'attachable')),
  };
}

interface DataDefinition {
  name: string;
  external: boolean;
  labels: Record<string, string>;
  file: string;
}

function dataDefinition(kind: DataKind, stack: string, key: string, value: unknown, path: string, options: ComposeOptions): DataDefinition {
  const given = mapping(value, path);
  onlyKeys(given, path, ['file', 'external', 'name', 'labels']);
  const external = isExternal(given, path);
  const name = objectName(stack, key, given, external, path);
  const problem = dataNameProblem(name);
  if (problem !== undefined) throw refuse(path, `the ${kind} name "${name}" ${problem}`);
  if (external) return { name, external, labels: {}, file: '' };
  if (given['file'] === undefined) throw refuse(at(path, 'file'), `is required (or external: true): the file holding the ${kind}'s data`);
  return {
    name,
    external,
    labels: { ...(given['labels'] === undefined ? {} : labels(given['labels'], at(path, 'labels'))), [NAMESPACE_LABEL]: stack },
    file: hostPath(text(given['file'], at(path, 'file')), at(path, 'file'), options),
  };
}

/** A named volume's name on the nodes; volumes need no creation (the agent creates them on first use). */
function volumeName(stack: string, key: string, value: unknown, path: string): string {
  const given = mapping(value, path);
  onlyKeys(given, path, ['driver', 'external', 'name']);
  if (given['driver'] !== undefined && text(given['driver'], at(path, 'driver')) !== 'local') throw refuse(at(path, 'driver'), 'only the local driver is supported');
  return objectName(stack, key, given, isExternal(given, path), path);
}
