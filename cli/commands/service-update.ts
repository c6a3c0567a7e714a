/**
 * `skiff service update` and `skiff service rollback`: a changed spec is rolled out by the
 * manager's updater under the update config; without --detach the CLI follows the rollout and
 * exits non-zero, with the reason, when it pauses or rolls back.
 */
import type { Command } from 'commander';
import type { Service, Task } from '../../proto/skiff/v1/objects.js';
import { TaskState } from '../../proto/skiff/v1/types.js';
import { taskStateName } from '../../proto/task-states.js';
import type { HealthCheck, PortConfig, ServiceSpec, TaskSpec } from '../../proto/skiff/v1/specs.js';
import { addHealthOptions, type HealthFlags, healthcheckFromFlags } from './health-flags.js';
import { parseCapabilityFlag, parseMountFlag, parseStopSignalFlag, parseSysctlFlags, parseUlimitFlags } from './isolation-flags.js';
import { collect, type ControlConnection, withConnection } from '../client.js';
import {
  FlagError,
  parseBytes,
  parseConfigFlag,
  parseConstraintFlag,
  parseCount,
  parseDuration,
  parsePlacementPrefFlag,
  parsePublishFlag,
  parseRestartCondition,
  parseSecretFlag,
  splitArgs,
} from './service-flags.js';
import { applyNetworkFlags, lookUpNetworkIds, networkFlagReferences } from './network-flags.js';
import { parseUpdateConfig, updateConfigFlags } from './update-config-flags.js';

/** `--update-strategy`, `--bluegreen-hold`, `--canary-replicas` over the current spec's values. */
export function parseStrategyFlags(flags: { updateStrategy?: string; bluegreenHold?: string; canaryReplicas?: string }, current: Pick<ServiceSpec, 'deployStrategy' | 'bluegreenHoldMs' | 'canaryReplicas'>): Pick<ServiceSpec, 'deployStrategy' | 'bluegreenHoldMs' | 'canaryReplicas'> {
  let deployStrategy = current.deployStrategy;
  if (flags.updateStrategy !== undefined) {
    if (!['rolling', 'blue-green', 'canary'].includes(flags.updateStrategy)) throw new FlagError(`invalid value "${flags.updateStrategy}" for --update-strategy: use rolling, blue-green or canary`);
    deployStrategy = flags.updateStrategy === 'rolling' ? '' : flags.updateStrategy;
  }
  const bluegreenHoldMs = flags.bluegreenHold === undefined ? current.bluegreenHoldMs : parseDuration('--bluegreen-hold', flags.bluegreenHold);
  const canaryReplicas = flags.canaryReplicas === undefined ? current.canaryReplicas : parseCount('--canary-replicas', flags.canaryReplicas);
  if (deployStrategy === 'canary' && canaryReplicas === 0) throw new FlagError('--update-strategy canary needs --canary-replicas K (at least 1)');
  return { deployStrategy, bluegreenHoldMs, canaryReplicas };
}

/** Registers the `--update-*` and `--rollback-*` options on a command (service create and update). */
export function addUpdateConfigOptions(command: Command): Command {
  command
    .option('--update-strategy <strategy>', 'rolling (default), blue-green or canary')
    .option('--bluegreen-hold <duration>', 'blue-green: how long the old set stays after the switch (default 1m)')
    .option('--canary-replicas <k>', 'canary: new-version tasks started beside the old ones');
  for (const prefix of ['update', 'rollback'] as const) {
    const what = prefix === 'update' ? 'update' : 'rollback';
    command
      .option(`--${prefix}-parallelism <n>`, `tasks ${what}d at once (0 = all)`)
      .option(`--${prefix}-delay <duration>`, `delay between ${what} batches`)
      .option(`--${prefix}-failure-action <action>`, prefix === 'update' ? 'on failure: pause, continue or rollback' : 'on failure: pause or continue')
      .option(`--${prefix}-monitor <duration>`, `how long each new task is watched for failure`)
      .option(`--${prefix}-max-failure-ratio <ratio>`, 'failures tolerated, 0 to 1')
      .option(`--${prefix}-order <order>`, 'stop-first or start-first');
  }
  return command;
}

export interface UpdateFlags {
  image?: string;
  replicas?: string;
  envAdd: string[];
  envRm: string[];
  labelAdd: string[];
  labelRm: string[];
  args?: string;
  entrypoint?: string;
  user?: string;
  workdir?: string;
  hostname?: string;
  limitCpu?: string;
  limitMemory?: string;
  limitPids?: string;
  reserveCpu?: string;
  reserveMemory?: string;
  restartCondition?: string;
  restartDelay?: string;
  restartMaxAttempts?: string;
  restartWindow?: string;
  constraintAdd: string[];
  constraintRm: string[];
  placementPrefAdd: string[];
  placementPrefRm: string[];
  maxReplicasPerNode?: string;
  publishAdd: string[];
  publishRm: string[];
  secretAdd: string[];
  secretRm: string[];
  configAdd: string[];
  configRm: string[];
  networkAdd: string[];
  networkRm: string[];
  rebalance?: string;
  readOnly?: boolean;
  init?: boolean;
  capAdd?: string[];
  capDrop?: string[];
  sysctlAdd?: string[];
  sysctlRm?: string[];
  ulimitAdd?: string[];
  ulimitRm?: string[];
  mountAdd?: string[];
  mountRm?: string[];
  stopSignal?: string;
  stopGracePeriod?: string;
  force: boolean;
  [flag: string]: unknown;
}

/** Update flags that change nothing: every list empty, no scalar given (callers set what they change). */
export function noUpdateFlags(): UpdateFlags {
  return {
    envAdd: [], envRm: [], labelAdd: [], labelRm: [], constraintAdd: [], constraintRm: [], placementPrefAdd: [], placementPrefRm: [],
    publishAdd: [], publishRm: [], secretAdd: [], secretRm: [], configAdd: [], configRm: [], networkAdd: [], networkRm: [], force: false,
  };
}

function envKey(entry: string): string {
  return entry.split('=')[0] ?? entry;
}

function positiveNumber(flag: string, value: string): number {
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed < 0) throw new FlagError(`invalid value "${value}" for ${flag}: must be a non-negative number`);
  return parsed;
}

const portKey = (port: PortConfig): string => `${port.publishedPort}/${port.protocol || 'tcp'}`;

/** `--publish-rm` takes a published port, `8080` or `8080/udp`. */
function publishRmKey(value: string): string {
  const match = /^(\d+)(?:\/(tcp|udp))?$/.exec(value.trim());
  if (match === null) throw new FlagError(`invalid value "${value}" for --publish-rm: use PUBLISHED[/PROTOCOL], e.g. 8080 or 53/udp`);
  return `${match[1]}/${match[2] ?? 'tcp'}`;
}

/**
 * The health check after `service update`: a probe flag replaces the probe, a timing flag only
 * that timing, `--no-healthcheck` turns checks off; no health flag keeps the current check.
 */
export function mergedHealthcheck(current: HealthCheck | undefined, flags: HealthFlags): HealthCheck | undefined {
  const given = healthcheckFromFlags(flags);
  if (given === undefined) return current;
  if (flags.healthcheck === false || current === undefined) return given;
  const probe = flags.healthCmd !== undefined || flags.healthHttp !== undefined || flags.healthTcp !== undefined;
  return {
    test: probe ? given.test : current.test,
    http: probe ? given.http : current.http,
    tcpPort: probe ? given.tcpPort : current.tcpPort,
    intervalMs: flags.healthInterval === undefined ? current.intervalMs : given.intervalMs,
    timeoutMs: flags.healthTimeout === undefined ? current.timeoutMs : given.timeoutMs,
    retries: flags.healthRetries === undefined ? current.retries : given.retries,
    startPeriodMs: flags.healthStartPeriod === undefined ? current.startPeriodMs : given.startPeriodMs,
  };
}

/**
 * The current spec with the flags applied. Flags not given leave their field alone. `networkIds`
 * maps the networks `--network-add` and `--network-rm` name to their ids (networkFlagReferences).
 */
export function applyUpdateFlags(current: ServiceSpec, flags: UpdateFlags & HealthFlags, networkIds: ReadonlyMap<string, string> = new Map()): ServiceSpec {
  const template: TaskSpec = current.taskTemplate ?? { container: undefined, resources: undefined, restartPolicy: undefined, placement: undefined, networks: [], forceUpdate: 0, networkAliases: [] };
  const container = template.container;
  if (container === undefined) throw new FlagError('cannot update: the service has no container spec');
  const next = { ...container };
  if (flags.image !== undefined) {
    if (flags.image.trim() === '') throw new FlagError('invalid value "" for --image');
    next.image = flags.image.trim();
  }
  if (flags.envAdd.length > 0 || flags.envRm.length > 0) {
    const removed = new Set([...flags.envRm, ...flags.envAdd.map(envKey)]);
    next.env = [...container.env.filter((entry) => !removed.has(envKey(entry))), ...flags.envAdd];
  }
  if (flags.args !== undefined) next.args = splitArgs(flags.args);
  if (flags.entrypoint !== undefined) next.command = flags.entrypoint === '' ? [] : splitArgs(flags.entrypoint);
  if (flags.user !== undefined) next.user = flags.user;
  if (flags.workdir !== undefined) next.workdir = flags.workdir;
  if (flags.hostname !== undefined) next.hostname = flags.hostname;
  next.healthcheck = mergedHealthcheck(container.healthcheck, flags);
  if (flags.readOnly !== undefined) next.readOnly = flags.readOnly;
  if (flags.init !== undefined) next.init = flags.init;
  // --cap-add / --cap-drop move a capability from one list to the other, as in Docker.
  for (const name of (flags.capAdd ?? []).map((value) => parseCapabilityFlag('--cap-add', value))) {
    next.capDrop = next.capDrop.filter((dropped) => dropped !== name);
    if (!next.capAdd.includes(name)) next.capAdd = [...next.capAdd, name];
  }
  for (const name of (flags.capDrop ?? []).map((value) => parseCapabilityFlag('--cap-drop', value))) {
    next.capAdd = next.capAdd.filter((added) => added !== name);
    if (!next.capDrop.includes(name)) next.capDrop = [...next.capDrop, name];
  }
  if ((flags.sysctlAdd ?? []).length > 0 || (flags.sysctlRm ?? []).length > 0) {
    const sysctls = { ...container.sysctls };
    for (const key of flags.sysctlRm ?? []) delete sysctls[key];
    next.sysctls = { ...sysctls, ...parseSysctlFlags(flags.sysctlAdd ?? []) };
  }
  if ((flags.ulimitAdd ?? []).length > 0 || (flags.ulimitRm ?? []).length > 0) {
    const added = parseUlimitFlags(flags.ulimitAdd ?? []);
    const dropped = new Set([...(flags.ulimitRm ?? []), ...added.map((limit) => limit.name)]);
    next.ulimits = [...container.ulimits.filter((limit) => !dropped.has(limit.name)), ...added];
  }
  if ((flags.mountAdd ?? []).length > 0 || (flags.mountRm ?? []).length > 0) {
    const added = (flags.mountAdd ?? []).map((value) => parseMountFlag(value));
    const dropped = new Set([...(flags.mountRm ?? []), ...added.map((mount) => mount.target)]);
    next.mounts = [...container.mounts.filter((mount) => !dropped.has(mount.target)), ...added];
  }
  if (flags.stopSignal !== undefined) next.stopSignal = parseStopSignalFlag(flags.stopSignal);
  if (flags.stopGracePeriod !== undefined) next.stopGracePeriodMs = parseDuration('--stop-grace-period', flags.stopGracePeriod);
  if (flags.secretAdd.length > 0 || flags.secretRm.length > 0) {
    const added = flags.secretAdd.map((value) => parseSecretFlag(value));
    const dropped = new Set([...flags.secretRm, ...added.map((reference) => reference.secretName)]);
    next.secrets = [...container.secrets.filter((reference) => !dropped.has(reference.secretName)), ...added];
  }
  if (flags.configAdd.length > 0 || flags.configRm.length > 0) {
    const added = flags.configAdd.map((value) => parseConfigFlag(value));
    const dropped = new Set([...flags.configRm, ...added.map((reference) => reference.configName)]);
    next.configs = [...container.configs.filter((reference) => !dropped.has(reference.configName)), ...added];
  }

  // Sub-objects are rebuilt only when one of their flags is given: an unchanged template must stay
  // byte-for-byte equal, or the manager would see a new version and redeploy every task.
  const given = (...values: unknown[]): boolean => values.some((value) => value !== undefined && !(Array.isArray(value) && value.length === 0));
  const limits = { nanoCpus: 0, memoryBytes: 0, pids: 0, ...template.resources?.limits };
  if (flags.limitCpu !== undefined) limits.nanoCpus = Math.round(positiveNumber('--limit-cpu', flags.limitCpu) * 1e9);
  if (flags.limitMemory !== undefined) limits.memoryBytes = parseBytes('--limit-memory', flags.limitMemory);
  if (flags.limitPids !== undefined) limits.pids = parseCount('--limit-pids', flags.limitPids);
  const reservations = { nanoCpus: 0, memoryBytes: 0, pids: 0, ...template.resources?.reservations };
  if (flags.reserveCpu !== undefined) reservations.nanoCpus = Math.round(positiveNumber('--reserve-cpu', flags.reserveCpu) * 1e9);
  if (flags.reserveMemory !== undefined) reservations.memoryBytes = parseBytes('--reserve-memory', flags.reserveMemory);

  const restart = { condition: '', delayMs: 0, maxAttempts: 0, windowMs: 0, ...template.restartPolicy };
  if (flags.restartCondition !== undefined) restart.condition = parseRestartCondition('--restart-condition', flags.restartCondition);
  if (flags.restartDelay !== undefined) restart.delayMs = parseDuration('--restart-delay', flags.restartDelay);
  if (flags.restartMaxAttempts !== undefined) restart.maxAttempts = parseCount('--restart-max-attempts', flags.restartMaxAttempts);
  if (flags.restartWindow !== undefined) restart.windowMs = parseDuration('--restart-window', flags.restartWindow);

  const placement = { constraints: [] as string[], preferences: [] as Array<{ spread: string }>, maxReplicasPerNode: 0, ...template.placement };
  if (flags.constraintAdd.length > 0 || flags.constraintRm.length > 0) {
    const added = flags.constraintAdd.map((value) => parseConstraintFlag(value));
    const dropped = new Set([...flags.constraintRm.map((value) => value.replace(/\s+/g, '')), ...added]);
    placement.constraints = [...placement.constraints.filter((constraint) => !dropped.has(constraint.replace(/\s+/g, ''))), ...added];
  }
  if (flags.placementPrefAdd.length > 0 || flags.placementPrefRm.length > 0) {
    const added = flags.placementPrefAdd.map((value) => parsePlacementPrefFlag(value));
    const dropped = new Set([...flags.placementPrefRm.map((value) => parsePlacementPrefFlag(value).spread), ...added.map((preference) => preference.spread)]);
    placement.preferences = [...placement.preferences.filter((preference) => !dropped.has(preference.spread)), ...added];
  }
  if (flags.maxReplicasPerNode !== undefined) placement.maxReplicasPerNode = parseCount('--max-replicas-per-node', flags.maxReplicasPerNode);

  const { networks, networkAliases } = flags.networkAdd.length > 0 || flags.networkRm.length > 0 ? applyNetworkFlags(template, flags.networkAdd, flags.networkRm, networkIds) : template;

  let endpoint = current.endpoint;
  if (flags.publishAdd.length > 0 || flags.publishRm.length > 0) {
    const added = flags.publishAdd.map((value) => parsePublishFlag(value));
    const dropped = new Set([...flags.publishRm.map(publishRmKey), ...added.map(portKey)]);
    endpoint = { mode: endpoint?.mode ?? '', ports: [...(endpoint?.ports ?? []).filter((port) => !dropped.has(portKey(port))), ...added] };
  }

  let mode = current.mode;
  if (flags.replicas !== undefined) {
    if (mode?.$case !== 'replicated') throw new FlagError('cannot use --replicas: the service is global');
    mode = { $case: 'replicated', value: { replicas: parseCount('--replicas', flags.replicas) } };
  }
  const labels = { ...current.labels };
  for (const key of flags.labelRm) delete labels[key];
  for (const entry of flags.labelAdd) {
    const [key, ...rest] = entry.split('=');
    if (key === undefined || key === '') throw new FlagError(`invalid value "${entry}" for --label-add: must be KEY=VALUE`);
    labels[key] = rest.join('=');
  }
  let rebalance = current.rebalance;
  if (flags.rebalance !== undefined) {
    if (flags.rebalance !== 'auto' && flags.rebalance !== 'manual') throw new FlagError(`invalid value "${flags.rebalance}" for --rebalance: use auto or manual`);
    rebalance = flags.rebalance === 'auto' ? 'auto' : '';
  }
  return {
    ...current,
    ...parseStrategyFlags(flags as { updateStrategy?: string; bluegreenHold?: string; canaryReplicas?: string }, current),
    labels,
    mode,
    endpoint,
    rebalance,
    updateConfig: parseUpdateConfig('update', updateConfigFlags(flags, 'update'), current.updateConfig),
    rollbackConfig: parseUpdateConfig('rollback', updateConfigFlags(flags, 'rollback'), current.rollbackConfig),
    taskTemplate: {
      ...template,
      container: next,
      resources: given(flags.limitCpu, flags.limitMemory, flags.limitPids, flags.reserveCpu, flags.reserveMemory)
        ? { limits, reservations: given(flags.reserveCpu, flags.reserveMemory) || template.resources?.reservations !== undefined ? reservations : undefined }
        : template.resources,
      restartPolicy: given(flags.restartCondition, flags.restartDelay, flags.restartMaxAttempts, flags.restartWindow) ? restart : template.restartPolicy,
      placement: given(flags.constraintAdd, flags.constraintRm, flags.placementPrefAdd, flags.placementPrefRm, flags.maxReplicasPerNode) ? placement : template.placement,
      networks,
      networkAliases,
      // --force redeploys every task even when nothing else changed.
      forceUpdate: flags.force ? template.forceUpdate + 1 : template.forceUpdate,
    },
  };
}

/** Final states of a rollout, and whether they count as success (canaries up: the user decides next). */
const FINAL: Record<string, boolean> = { completed: true, canary: true, rollback_completed: false, paused: false, rollback_paused: false };

/**
 * Follows a rollout until it ends: prints the phase and each slot's progress as they change,
 * resolves on completion, throws (non-zero exit) with the reason on pause or rollback.
 */
export async function followUpdate(connection: ControlConnection, serviceId: string, timeoutMs: number, write: (line: string) => void = (line) => process.stdout.write(`${line}\n`)): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastLine = '';
  const slotLines = new Map<string, string>();
  for (;;) {
    const { service } = await connection.call((c) => c.getService, { service: serviceId });
    if (service === undefined) throw new FlagError(`service ${serviceId} was removed during the update`);
    const { tasks } = await connection.call((c) => c.listTasks, { service: serviceId, node: '' });
    const line = progressLine(service, tasks);
    if (line !== lastLine) write(line);
    lastLine = line;
    for (const [slot, slotLine] of slotProgress(service, tasks)) {
      if (slotLines.get(slot) !== slotLine) write(`  ${slotLine}`);
      slotLines.set(slot, slotLine);
    }
    const state = service.updateStatus?.state ?? 'completed';
    // Blue/green succeeds at the switch (the old set stays for the hold); canaries once they all run.
    const switched = service.spec?.deployStrategy === 'blue-green' && state === 'updating' && (service.updateStatus?.switchedAtMs ?? 0) > 0;
    const canariesUp = state === 'canary' && /^canary: (\d+)\/\1 /.test(service.updateStatus?.message ?? '');
    const success = state === 'canary' ? (canariesUp ? true : undefined) : switched ? true : FINAL[state];
    if (success === true) {
      if (switched || state === 'canary') write(service.updateStatus?.message ?? '');
      return;
    }
    if (success === false) {
      throw new FlagError(`update of ${service.spec?.name ?? serviceId} did not complete: ${service.updateStatus?.state}: ${service.updateStatus?.message ?? ''}`);
    }
    if (Date.now() > deadline) throw new FlagError(`update of ${service.spec?.name ?? serviceId} is still in progress after ${timeoutMs} ms (it goes on; see skiff service inspect)`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** Per slot: where its newest task of the new version is, e.g. "web.3: new version running (healthy)". */
export function slotProgress(service: Service, tasks: ReadonlyArray<Pick<Task, 'specVersion' | 'desiredState' | 'slot' | 'nodeId' | 'status' | 'meta'>>): Map<string, string> {
  const name = service.spec?.name ?? '';
  const newest = new Map<string, (typeof tasks)[number]>();
  for (const task of tasks) {
    if (task.specVersion !== service.specVersion) continue;
    const slot = task.slot === 0 ? task.nodeId : String(task.slot);
    const seen = newest.get(slot);
    if (seen === undefined || (seen.meta?.createdAtMs ?? 0) <= (task.meta?.createdAtMs ?? 0)) newest.set(slot, task);
  }
  const lines = new Map<string, string>();
  for (const [slot, task] of [...newest].sort((a, b) => a[0].localeCompare(b[0], undefined, { numeric: true }))) {
    const state = taskStateName(task.status?.state ?? TaskState.TASK_STATE_NEW);
    const health = task.status?.health === 2 ? ' (healthy)' : task.status?.health === 1 ? ' (health: starting)' : task.status?.health === 3 ? ' (unhealthy)' : '';
    const err = task.status?.err ? `: ${task.status.err}` : '';
    lines.set(slot, `${name}.${slot}: new version ${state}${health}${err}`);
  }
  return lines;
}

/** "updating: 3/5 slots on the new version, 1 starting (…)" */
export function progressLine(service: Service, tasks: ReadonlyArray<{ specVersion: number; desiredState: number; slot: number; status?: { state: number } | undefined }>): string {
  const state = service.updateStatus?.state ?? 'completed';
  const live = tasks.filter((task) => task.desiredState <= 7);
  const slots = new Set(live.map((task) => task.slot));
  const fresh = live.filter((task) => task.specVersion === service.specVersion);
  const runningFresh = fresh.filter((task) => task.status?.state === 7).length;
  return `${state}: ${runningFresh}/${slots.size} running the new version, ${fresh.length - runningFresh} starting${service.updateStatus?.message ? ` (${service.updateStatus.message})` : ''}`;
}

export function registerServiceUpdateCommands(service: Command, program: Command): void {
  const update = service
    .command('update')
    .description('change a service; a changed task template rolls out under the update config')
    .argument('<service>', 'service name or id')
    .option('--image <image>', 'new image')
    .option('--replicas <n>', 'number of tasks')
    .option('--env-add <KEY=VALUE>', 'add or change an environment variable (repeatable)', collect, [])
    .option('--env-rm <KEY>', 'remove an environment variable (repeatable)', collect, [])
    .option('--label-add <KEY=VALUE>', 'add or change a service label (repeatable)', collect, [])
    .option('--label-rm <KEY>', 'remove a service label (repeatable)', collect, [])
    .option('--args <command>', 'command arguments, replacing the current ones')
    .option('--entrypoint <cmd>', 'override the image entrypoint ("" for the image\'s)')
    .option('-u, --user <user>', 'user[:group] inside the container')
    .option('-w, --workdir <dir>', 'working directory inside the container')
    .option('--hostname <name>', 'container hostname')
    .option('--limit-cpu <cpus>', 'CPU limit')
    .option('--limit-memory <size>', 'memory limit')
    .option('--limit-pids <n>', 'process limit')
    .option('--reserve-cpu <cpus>', 'CPU reserved for each task')
    .option('--reserve-memory <size>', 'memory reserved for each task')
    .option('--restart-condition <condition>', 'none, on-failure or any')
    .option('--restart-delay <duration>', 'delay between restarts')
    .option('--restart-max-attempts <n>', 'restarts before giving up')
    .option('--restart-window <duration>', 'window in which restarts are counted')
    .option('--constraint-add <expr>', 'add a placement constraint (repeatable)', collect, [])
    .option('--constraint-rm <expr>', 'remove a placement constraint (repeatable)', collect, [])
    .option('--placement-pref-add <spread=node.labels.KEY>', 'add a spread preference (repeatable)', collect, [])
    .option('--placement-pref-rm <spread=node.labels.KEY>', 'remove a spread preference (repeatable)', collect, [])
    .option('--max-replicas-per-node <n>', 'most tasks on one node (0 = no limit)')
    .option('--publish-add <published=P,target=T…|P:T>', 'publish a port (repeatable)', collect, [])
    .option('--publish-rm <P[/protocol]>', 'stop publishing a port (repeatable)', collect, [])
    .option('--secret-add <NAME[,…]>', 'add a secret (repeatable)', collect, [])
    .option('--secret-rm <NAME>', 'remove a secret (repeatable)', collect, [])
    .option('--config-add <NAME[,…]>', 'add a config (repeatable)', collect, [])
    .option('--config-rm <NAME>', 'remove a config (repeatable)', collect, [])
    .option('--network-add <NAME|name=NAME,alias=A…>', 'attach to a network, with aliases on it; replaces the aliases of one attached already (repeatable)', collect, [])
    .option('--network-rm <name>', 'detach from a network, dropping the aliases on it (repeatable)', collect, [])
    .option('--rebalance <when>', 'auto or manual')
    .option('--read-only', 'mount the root filesystem read-only')
    .option('--no-read-only', 'mount the root filesystem read-write')
    .option('--init', 'run tini as PID 1')
    .option('--no-init', 'run the command as PID 1')
    .option('--cap-add <capability>', 'add a capability (repeatable)', collect, [])
    .option('--cap-drop <capability>', 'drop a capability (repeatable)', collect, [])
    .option('--sysctl-add <KEY=VALUE>', 'set a namespaced sysctl (repeatable)', collect, [])
    .option('--sysctl-rm <KEY>', 'remove a sysctl (repeatable)', collect, [])
    .option('--ulimit-add <NAME=SOFT[:HARD]>', 'set a ulimit (repeatable)', collect, [])
    .option('--ulimit-rm <NAME>', 'remove a ulimit (repeatable)', collect, [])
    .option('--mount-add <type=…,src=…,dst=…>', 'add a mount (repeatable)', collect, [])
    .option('--mount-rm <target>', 'remove the mount at a container path (repeatable)', collect, [])
    .option('--stop-signal <signal>', 'signal that stops the container')
    .option('--stop-grace-period <duration>', 'time before SIGKILL')
    .option('--force', 'redeploy every task even if nothing changed', false)
    .option('--no-resolve-image', 'do not pin the image tag to its digest')
    .option('-d, --detach', 'return at once instead of following the rollout', false)
    .option('--timeout <duration>', 'how long to follow the rollout', '10m');
  addHealthOptions(update);
  addUpdateConfigOptions(update).action(async (reference: string, flags: UpdateFlags & HealthFlags & { detach: boolean; timeout: string; resolveImage: boolean }) => {
    const timeoutMs = parseDuration('--timeout', flags.timeout);
    await withConnection(program, async (connection) => {
      const { service: current } = await connection.call((c) => c.getService, { service: reference });
      if (current?.spec === undefined) throw new FlagError(`cannot update ${reference}: no spec`);
      // The spec holds network ids; the flags may name networks.
      const networkIds = await lookUpNetworkIds(connection, networkFlagReferences(flags.networkAdd, flags.networkRm));
      const spec = applyUpdateFlags(current.spec, flags, networkIds);
      const { service: updated } = await connection.call((c) => c.updateService, { service: current.meta?.id ?? '', version: current.meta?.version ?? 0, spec, noResolveImage: !flags.resolveImage });
      process.stdout.write(`${updated?.meta?.id ?? ''}\n`);
      const started = updated !== undefined && updated.specVersion !== current.specVersion;
      if (!flags.detach && started) await followUpdate(connection, updated.meta?.id ?? '', timeoutMs);
    });
  });

  service
    .command('switch')
    .description('blue/green: move the service\'s traffic to blue or green at once (during the hold)')
    .argument('<service>', 'service name or id')
    .argument('<color>', 'blue or green')
    .action(async (reference: string, color: string) => {
      await withConnection(program, async (connection) => {
        const { service: switched } = await connection.call((c) => c.switchService, { service: reference, color });
        process.stdout.write(`${switched?.updateStatus?.message ?? ''}\n`);
      });
    });

  service
    .command('promote')
    .description('canary: carry on from the canaries as a rolling update')
    .argument('<service>', 'service name or id')
    .option('-d, --detach', 'return at once instead of following the rollout', false)
    .option('--timeout <duration>', 'how long to follow the rollout', '10m')
    .action(async (reference: string, flags: { detach: boolean; timeout: string }) => {
      const timeoutMs = parseDuration('--timeout', flags.timeout);
      await withConnection(program, async (connection) => {
        const { service: promoted } = await connection.call((c) => c.promoteService, { service: reference });
        process.stdout.write(`${promoted?.meta?.id ?? ''}\n`);
        if (!flags.detach) await followUpdate(connection, promoted?.meta?.id ?? '', timeoutMs);
      });
    });

  service
    .command('rollback')
    .description('go back to the previous spec, under the rollback config')
    .argument('<service>', 'service name or id')
    .option('-d, --detach', 'return at once instead of following the rollback', false)
    .option('--timeout <duration>', 'how long to follow the rollback', '10m')
    .action(async (reference: string, flags: { detach: boolean; timeout: string }) => {
      const timeoutMs = parseDuration('--timeout', flags.timeout);
      await withConnection(program, async (connection) => {
        const { service: rolled } = await connection.call((c) => c.rollbackService, { service: reference });
        process.stdout.write(`${rolled?.meta?.id ?? ''}\n`);
        if (!flags.detach && rolled?.updateStatus?.state === 'rollback_started') {
          await followRollback(connection, rolled.meta?.id ?? '', timeoutMs);
        }
      });
    });
}

/** A manual rollback succeeds when it completes. */
async function followRollback(connection: ControlConnection, serviceId: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { service } = await connection.call((c) => c.getService, { service: serviceId });
    const state = service?.updateStatus?.state ?? '';
    if (state === 'rollback_completed') return;
    if (state !== 'rollback_started') throw new FlagError(`rollback of ${service?.spec?.name ?? serviceId} did not complete: ${state}: ${service?.updateStatus?.message ?? ''}`);
    if (Date.now() > deadline) throw new FlagError(`rollback of ${service?.spec?.name ?? serviceId} is still in progress after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
