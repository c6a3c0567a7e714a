/**
 * Validation of service specs at the API edge. Everything past this point trusts the spec.
 * Every error names the field, in the CLI's and the spec's terms.
 */
import { NAME_LABEL, serviceNameProblem } from '../../common/object-names.js';
import type { EndpointSpec, NetworkAliases, Placement, ServiceSpec, UpdateConfig } from '../../proto/skiff/v1/specs.js';
import type { Resources } from '../../proto/skiff/v1/types.js';
import { parseConstraint, parsePreference, PLACEMENT_STRATEGY_LABEL } from '../../scheduler/index.js';
import { invalid } from './errors.js';
import { MAX_SERVICE_NETWORKS } from './network-handlers.js';
import { validateHealthCheck } from './validate-healthcheck.js';
import { validateIsolation, validateResourceBounds } from './validate-isolation.js';
import { validateReferences } from './validate-references.js';

/** Replicas of one service at most. */
export const MAX_REPLICAS = 10_000;
const MAX_IMAGE_REFERENCE_LENGTH = 512;
const MAX_ARGV_ENTRIES = 1024;
const MAX_ENV_ENTRIES = 4096;
const MAX_LABELS = 256;
const MAX_STRING_LENGTH = 64 * 1024;
const MAX_DNS_NAME_LENGTH = 253;
/** Aliases of one service on one network at most: every resolver on the network answers them. */
export const MAX_ALIASES_PER_NETWORK = 32;
// Docker's reference grammar, loosely: [host[:port]/]path[:tag][@digest], lower-case path.
const IMAGE_REFERENCE = /^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?\/)?[a-z0-9]+(?:[._-][a-z0-9]+|__)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$/;
const RESTART_CONDITIONS = new Set(['', 'none', 'on-failure', 'any']);
/** Constraints of one service at most: each is checked on every node for every batch. */
export const MAX_CONSTRAINTS = 64;
/** Placement preference levels at most: each is one level of the scheduler's tree. */
export const MAX_PREFERENCES = 8;
/** Published ports of one service at most. */
export const MAX_PORTS = 256;
const MAX_PORT = 65_535;
const PLACEMENT_STRATEGIES = new Set(['spread', 'binpack']);

const refuse = (field: string, reason: string) => invalid(`cannot accept service spec: ${field}: ${reason}`);

/** Constraints and preferences go through the scheduler's own parser, so both say the same thing. */
function validatePlacement(placement: Placement | undefined): void {
  if (placement === undefined) return;
  const field = 'taskTemplate.placement';
  if (placement.constraints.length > MAX_CONSTRAINTS) throw refuse(`${field}.constraints`, `${placement.constraints.length} entries, more than ${MAX_CONSTRAINTS}`);
  for (const [index, text] of placement.constraints.entries()) {
    const parsed = parseConstraint(text);
    if (!parsed.ok) throw refuse(`${field}.constraints[${index}]`, parsed.error);
  }
  if (placement.preferences.length > MAX_PREFERENCES) throw refuse(`${field}.preferences`, `${placement.preferences.length} entries, more than ${MAX_PREFERENCES}`);
  for (const [index, preference] of placement.preferences.entries()) {
    const parsed = parsePreference(preference.spread);
    if (!parsed.ok) throw refuse(`${field}.preferences[${index}].spread`, parsed.error);
  }
  if (!Number.isSafeInteger(placement.maxReplicasPerNode) || placement.maxReplicasPerNode < 0) {
    throw refuse(`${field}.maxReplicasPerNode`, 'must be a non-negative integer (0 = no limit)');
  }
}

function validateReservations(reservations: Resources | undefined): void {
  for (const [name, value] of Object.entries({ nanoCpus: reservations?.nanoCpus, memoryBytes: reservations?.memoryBytes })) {
    if (value !== undefined && (!Number.isSafeInteger(value) || value < 0)) throw refuse(`taskTemplate.resources.reservations.${name}`, 'must be a non-negative integer');
  }
}

/** Ports: valid numbers, known protocol and mode, no published port+protocol twice. */
function validateEndpoint(endpoint: EndpointSpec | undefined): void {
  if (endpoint === undefined) return;
  if (!['', 'vip', 'dnsrr'].includes(endpoint.mode)) throw refuse('endpoint.mode', `"${endpoint.mode}" must be vip or dnsrr`);
  if (endpoint.mode === 'dnsrr' && endpoint.ports.some((port) => port.publishMode !== 'host')) {
    throw refuse('endpoint.mode', 'dnsrr has no virtual IP for the routing mesh: publish its ports with mode=host');
  }
  if (endpoint.ports.length > MAX_PORTS) throw refuse('endpoint.ports', `${endpoint.ports.length} entries, more than ${MAX_PORTS}`);
  const published = new Map<string, number>();
  for (const [index, port] of endpoint.ports.entries()) {
    const field = `endpoint.ports[${index}]`;
    if (!['', 'tcp', 'udp'].includes(port.protocol)) throw refuse(`${field}.protocol`, `"${port.protocol}" must be tcp or udp`);
    if (!['', 'ingress', 'host'].includes(port.publishMode)) throw refuse(`${field}.publishMode`, `"${port.publishMode}" must be ingress or host`);
    if (!Number.isInteger(port.targetPort) || port.targetPort < 1 || port.targetPort > MAX_PORT) throw refuse(`${field}.targetPort`, `must be a port from 1 to ${MAX_PORT}`);
    if (!Number.isInteger(port.publishedPort) || port.publishedPort < 0 || port.publishedPort > MAX_PORT) {
      throw refuse(`${field}.publishedPort`, `must be a port from 1 to ${MAX_PORT}, or 0 for none`);
    }
    if (port.publishedPort === 0) continue;
    const key = `${port.publishedPort}/${port.protocol === '' ? 'tcp' : port.protocol}`;
    const earlier = published.get(key);
    if (earlier !== undefined) throw refuse(`${field}.publishedPort`, `${key} is already published by endpoint.ports[${earlier}]`);
    published.set(key, index);
  }
}

/** Why `name` is not a DNS name (RFC 1123: dot-separated labels, 253 characters in all), or undefined. */
function dnsNameProblem(name: string): string | undefined {
  if (name.length > MAX_DNS_NAME_LENGTH) return `is longer than ${MAX_DNS_NAME_LENGTH} characters`;
  if (name.split('.').every((label) => NAME_LABEL.test(label))) return undefined;
  return "is not a DNS name: labels of 1-63 letters, digits, '-' or '_', each starting and ending with a letter or digit, joined by dots";
}

/**
 * The shape of the aliases: DNS names, each once per network (names are case-insensitive), at
 * most MAX_ALIASES_PER_NETWORK per network. Which network an entry names is checked when the
 * networks are resolved (resolveServiceNetworks): a name and an id may be the same network.
 */
function validateNetworkAliases(entries: readonly NetworkAliases[]): void {
  const field = 'taskTemplate.networkAliases';
  if (entries.length > MAX_SERVICE_NETWORKS) throw refuse(field, `${entries.length} entries, more than the ${MAX_SERVICE_NETWORKS} networks a service may join`);
  for (const [index, entry] of entries.entries()) {
    if (entry.network === '') throw refuse(`${field}[${index}].network`, 'must name one of the service\'s networks');
    if (entry.aliases.length > MAX_ALIASES_PER_NETWORK) throw refuse(`${field}[${index}].aliases`, `${entry.aliases.length} entries, more than ${MAX_ALIASES_PER_NETWORK}`);
    const seen = new Map<string, number>();
    for (const [aliasIndex, alias] of entry.aliases.entries()) {
      const problem = dnsNameProblem(alias);
      if (problem !== undefined) throw refuse(`${field}[${index}].aliases[${aliasIndex}]`, `"${alias}" ${problem}`);
      const earlier = seen.get(alias.toLowerCase());
      if (earlier !== undefined) throw refuse(`${field}[${index}].aliases[${aliasIndex}]`, `"${alias}" is already aliases[${earlier}] (DNS names are case-insensitive)`);
      seen.set(alias.toLowerCase(), aliasIndex);
    }
  }
}

function checkStrings(field: string, values: readonly string[], max: number): void {
  if (values.length > max) throw invalid(`cannot accept service spec: ${field} has ${values.length} entries, more than ${max}`);
  for (const value of values) {
    if (value.length > MAX_STRING_LENGTH) throw invalid(`cannot accept service spec: an entry of ${field} is longer than ${MAX_STRING_LENGTH} characters`);
  }
}

/** Throws ApiError('invalid_argument') naming the first bad field. */
/** An update or rollback config: known actions and orders, non-negative durations, a ratio from 0 to 1. */
function validateUpdateConfig(field: string, config: UpdateConfig | undefined, actions: readonly string[]): void {
  if (config === undefined) return;
  if (!Number.isSafeInteger(config.parallelism) || config.parallelism < 0) throw refuse(`${field}.parallelism`, 'must be a non-negative integer (0 = all at once)');
  for (const [name, value] of [['delayMs', config.delayMs], ['monitorMs', config.monitorMs]] as const) {
    if (!Number.isSafeInteger(value) || value < 0) throw refuse(`${field}.${name}`, 'must be a non-negative number of milliseconds');
  }
  if (config.failureAction !== '' && !actions.includes(config.failureAction)) throw refuse(`${field}.failureAction`, `"${config.failureAction}" must be ${actions.join(', ')}`);
  if (config.order !== '' && config.order !== 'stop-first' && config.order !== 'start-first') throw refuse(`${field}.order`, `"${config.order}" must be stop-first or start-first`);
  if (!(config.maxFailureRatio >= 0 && config.maxFailureRatio <= 1)) throw refuse(`${field}.maxFailureRatio`, 'must be from 0 to 1');
}

export function validateServiceSpec(spec: ServiceSpec | undefined): asserts spec is ServiceSpec {
  if (spec === undefined) throw invalid('cannot accept service spec: spec is missing');
  if (spec.name === '') throw invalid('cannot accept service spec: name must not be empty');
  const nameProblem = serviceNameProblem(spec.name);
  if (nameProblem !== undefined) throw invalid(`cannot accept service spec: name "${spec.name}" ${nameProblem}`);
  const container = spec.taskTemplate?.container;
  if (container === undefined || container.image === '') throw invalid('cannot accept service spec: image must not be empty');
  if (container.image.length > MAX_IMAGE_REFERENCE_LENGTH || !IMAGE_REFERENCE.test(container.image)) {
    throw invalid(`cannot accept service spec: image "${container.image}" is not a valid image reference`);
  }
  checkStrings('command', container.command, MAX_ARGV_ENTRIES);
  checkStrings('args', container.args, MAX_ARGV_ENTRIES);
  checkStrings('env', container.env, MAX_ENV_ENTRIES);
  for (const entry of container.env) {
    if (entry === '' || entry.startsWith('=')) throw invalid(`cannot accept service spec: env entry "${entry}" must be KEY=VALUE`);
  }
  if (container.workdir !== '' && !container.workdir.startsWith('/')) {
    throw invalid(`cannot accept service spec: workdir "${container.workdir}" must be an absolute path`);
  }
  if (Object.keys(spec.labels).length > MAX_LABELS) throw invalid(`cannot accept service spec: more than ${MAX_LABELS} labels`);
  for (const key of Object.keys(spec.labels)) {
    if (key === '') throw invalid('cannot accept service spec: a label key must not be empty');
  }
  const strategy = spec.labels[PLACEMENT_STRATEGY_LABEL];
  if (strategy !== undefined && !PLACEMENT_STRATEGIES.has(strategy)) throw refuse(`labels["${PLACEMENT_STRATEGY_LABEL}"]`, `"${strategy}" must be spread or binpack`);
  if (spec.rebalance !== '' && spec.rebalance !== 'auto') throw refuse('rebalance', `"${spec.rebalance}" must be auto or empty`);
  switch (spec.mode?.$case) {
    case 'replicated': {
      const replicas = spec.mode.value.replicas;
      if (!Number.isSafeInteger(replicas) || replicas < 0 || replicas > MAX_REPLICAS) {
        throw invalid(`cannot accept service spec: replicas must be an integer from 0 to ${MAX_REPLICAS}, not ${replicas}`);
      }
      break;
    }
    case 'global':
      break;
    case undefined:
      throw invalid('cannot accept service spec: mode must be replicated or global');
    default: {
      const exhaustive: never = spec.mode;
      throw invalid(`cannot accept service spec: unknown mode ${String(exhaustive)}`);
    }
  }
  const limits = spec.taskTemplate?.resources?.limits;
  for (const [field, value] of Object.entries({ 'limits.nanoCpus': limits?.nanoCpus, 'limits.memoryBytes': limits?.memoryBytes, 'limits.pids': limits?.pids })) {
    if (value !== undefined && (!Number.isSafeInteger(value) || value < 0)) throw invalid(`cannot accept service spec: resources.${field} must be a non-negative integer`);
  }
  validateReservations(spec.taskTemplate?.resources?.reservations);
  validatePlacement(spec.taskTemplate?.placement);
  validateNetworkAliases(spec.taskTemplate?.networkAliases ?? []);
  validateEndpoint(spec.endpoint);
  validateUpdateConfig('updateConfig', spec.updateConfig, ['pause', 'continue', 'rollback']);
  if (!['', 'rolling', 'blue-green', 'canary'].includes(spec.deployStrategy)) throw refuse('deployStrategy', `"${spec.deployStrategy}" must be rolling, blue-green or canary`);
  if (!Number.isSafeInteger(spec.bluegreenHoldMs) || spec.bluegreenHoldMs < 0) throw refuse('bluegreenHoldMs', 'must be a non-negative number of milliseconds');
  if (spec.deployStrategy === 'canary') {
    const replicas = spec.mode?.$case === 'replicated' ? spec.mode.value.replicas : Number.POSITIVE_INFINITY;
    if (!Number.isSafeInteger(spec.canaryReplicas) || spec.canaryReplicas < 1 || spec.canaryReplicas > replicas) throw refuse('canaryReplicas', `must be from 1 to the replica count (${replicas}), not ${spec.canaryReplicas}`);
  }
  validateUpdateConfig('rollbackConfig', spec.rollbackConfig, ['pause', 'continue']);
  validateReferences(container);
  validateHealthCheck(container.healthcheck);
  validateIsolation(container);
  validateResourceBounds(spec.taskTemplate?.resources);
  const condition = spec.taskTemplate?.restartPolicy?.condition ?? '';
  if (!RESTART_CONDITIONS.has(condition)) {
    throw invalid(`cannot accept service spec: restart condition "${condition}" must be none, on-failure or any`);
  }
}
