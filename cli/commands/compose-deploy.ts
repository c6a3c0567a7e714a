/**
 * A Compose service's `deploy:` section as the ServiceSpec fields it fills: mode and replicas,
 * service labels, placement, resources, restart policy, update and rollback configs, endpoint
 * mode. Values go through the `service create` flag parsers, named by their Compose path. Pure.
 */
import type { Placement, ResourceRequirements, RestartPolicy, ServiceSpec, UpdateConfig } from '../../proto/skiff/v1/specs.js';
import type { Resources } from '../../proto/skiff/v1/types.js';
import { at, count, labels, list, mapping, numberText, onlyKeys, parsed, refuse, stringList, text } from './compose-values.js';
import { parseBytes, parseConstraintFlag, parseDuration, parsePlacementPrefFlag, parsePositiveNumber, parseRestartCondition } from './service-flags.js';
import { parseUpdateConfig, type UpdateConfigFlags } from './update-config-flags.js';

/** What `deploy:` sets; everything absent is Skiff's default. */
export interface DeploySettings {
  mode: ServiceSpec['mode'];
  labels: Record<string, string>;
  placement: Placement | undefined;
  resources: ResourceRequirements | undefined;
  restartPolicy: RestartPolicy | undefined;
  updateConfig: UpdateConfig | undefined;
  rollbackConfig: UpdateConfig | undefined;
  /** vip, dnsrr, or '' (vip). */
  endpointMode: string;
}

const DEPLOY_KEYS = ['mode', 'replicas', 'labels', 'placement', 'resources', 'restart_policy', 'update_config', 'rollback_config', 'endpoint_mode'];

export function composeDeploy(value: unknown, path: string): DeploySettings {
  const deploy = mapping(value, path);
  onlyKeys(deploy, path, DEPLOY_KEYS);
  const mode = deploy['mode'] === undefined ? 'replicated' : text(deploy['mode'], at(path, 'mode'));
  if (mode !== 'replicated' && mode !== 'global') throw refuse(at(path, 'mode'), `"${mode}" must be replicated or global`);
  if (mode === 'global' && deploy['replicas'] !== undefined) throw refuse(at(path, 'replicas'), 'cannot be used with mode: global');
  const replicas = deploy['replicas'] === undefined ? 1 : count(deploy['replicas'], at(path, 'replicas'));
  const endpointMode = deploy['endpoint_mode'] === undefined ? '' : text(deploy['endpoint_mode'], at(path, 'endpoint_mode'));
  if (endpointMode !== '' && endpointMode !== 'vip' && endpointMode !== 'dnsrr') throw refuse(at(path, 'endpoint_mode'), `"${endpointMode}" must be vip or dnsrr`);
  const section = <T>(key: string, read: (value: unknown, keyPath: string) => T): T | undefined => (deploy[key] === undefined ? undefined : read(deploy[key], at(path, key)));
  return {
    mode: mode === 'global' ? { $case: 'global', value: {} } : { $case: 'replicated', value: { replicas } },
    labels: section('labels', labels) ?? {},
    placement: section('placement', placement),
    resources: section('resources', resources),
    restartPolicy: section('restart_policy', restartPolicy),
    updateConfig: section('update_config', (config, keyPath) => updateConfig('update', config, keyPath)),
    rollbackConfig: section('rollback_config', (config, keyPath) => updateConfig('rollback', config, keyPath)),
    endpointMode,
  };
}

function placement(value: unknown, path: string): Placement {
  const given = mapping(value, path);
  onlyKeys(given, path, ['constraints', 'preferences', 'max_replicas_per_node']);
  const constraintsPath = at(path, 'constraints');
  const preferencesPath = at(path, 'preferences');
  return {
    constraints: given['constraints'] === undefined ? [] : stringList(given['constraints'], constraintsPath).map((constraint, index) => parsed(() => parseConstraintFlag(constraint, at(constraintsPath, index)))),
    preferences: given['preferences'] === undefined ? [] : list(given['preferences'], preferencesPath).map((entry, index) => {
      const preferencePath = at(preferencesPath, index);
      const preference = mapping(entry, preferencePath);
      onlyKeys(preference, preferencePath, ['spread']);
      if (preference['spread'] === undefined) throw refuse(at(preferencePath, 'spread'), 'is required');
      return parsed(() => parsePlacementPrefFlag(`spread=${text(preference['spread'], at(preferencePath, 'spread'))}`, preferencePath));
    }),
    maxReplicasPerNode: given['max_replicas_per_node'] === undefined ? 0 : count(given['max_replicas_per_node'], at(path, 'max_replicas_per_node')),
  };
}

/** `limits` (cpus, memory, pids) and `reservations` (cpus, memory). */
function resources(value: unknown, path: string): ResourceRequirements {
  const given = mapping(value, path);
  onlyKeys(given, path, ['limits', 'reservations']);
  const amounts = (key: 'limits' | 'reservations'): Resources | undefined => {
    if (given[key] === undefined) return undefined;
    const keyPath = at(path, key);
    const amount = mapping(given[key], keyPath);
    onlyKeys(amount, keyPath, key === 'limits' ? ['cpus', 'memory', 'pids'] : ['cpus', 'memory']);
    const cpus = amount['cpus'] === undefined ? undefined : numberText(amount['cpus'], at(keyPath, 'cpus'));
    const memory = amount['memory'] === undefined ? undefined : numberText(amount['memory'], at(keyPath, 'memory'));
    return {
      nanoCpus: cpus === undefined ? 0 : Math.round(parsed(() => parsePositiveNumber(at(keyPath, 'cpus'), cpus)) * 1e9),
      memoryBytes: memory === undefined ? 0 : parsed(() => parseBytes(at(keyPath, 'memory'), memory)),
      pids: amount['pids'] === undefined ? 0 : count(amount['pids'], at(keyPath, 'pids')),
    };
  };
  return { limits: amounts('limits'), reservations: amounts('reservations') };
}

function restartPolicy(value: unknown, path: string): RestartPolicy {
  const given = mapping(value, path);
  onlyKeys(given, path, ['condition', 'delay', 'max_attempts', 'window']);
  const duration = (key: string): number => (given[key] === undefined ? 0 : parsed(() => parseDuration(at(path, key), text(given[key], at(path, key)))));
  return {
    condition: given['condition'] === undefined ? '' : parsed(() => parseRestartCondition(at(path, 'condition'), text(given['condition'], at(path, 'condition')))),
    delayMs: duration('delay'),
    maxAttempts: given['max_attempts'] === undefined ? 0 : count(given['max_attempts'], at(path, 'max_attempts')),
    windowMs: duration('window'),
  };
}

const UPDATE_KEYS: ReadonlyArray<readonly [compose: string, flag: keyof UpdateConfigFlags]> = [
  ['parallelism', 'parallelism'], ['delay', 'delay'], ['failure_action', 'failureAction'], ['monitor', 'monitor'], ['max_failure_ratio', 'maxFailureRatio'], ['order', 'order'],
];

/** `update_config` / `rollback_config`, through the --update-* / --rollback-* parser; its errors name the Compose key. */
function updateConfig(prefix: 'update' | 'rollback', value: unknown, path: string): UpdateConfig | undefined {
  const given = mapping(value, path);
  onlyKeys(given, path, UPDATE_KEYS.map(([key]) => key));
  const flags: UpdateConfigFlags = {};
  for (const [key, flag] of UPDATE_KEYS) if (given[key] !== undefined) flags[flag] = numberText(given[key], at(path, key));
  return parsed(() => parseUpdateConfig(prefix, flags, undefined, (field) => at(path, field.replaceAll('-', '_'))));
}
