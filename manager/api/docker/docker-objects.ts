/**
 * Skiff's objects in the Docker Engine API's shapes (swarm: Node, Service, Task) and a Docker
 * ServiceSpec as Skiff's, for the Docker-compatible API (docker-server.ts). Pure: no I/O.
 *
 * A Docker spec field Skiff has no equivalent for is refused when it asks for something (any
 * value but its zero value: null, false, 0, "", an empty list or object), naming its path, so
 * nothing a user asked for is dropped in silence; the stock CLI's defaults (an empty DNSConfig,
 * Isolation "default", Runtime "container", ...) pass.
 */
import type { Network, Node, Service, Task } from '../../../proto/skiff/v1/objects.js';
import type {
  ContainerSpec, EndpointSpec, HealthCheck, Mount, NetworkAliases, NetworkSpec, PortConfig, ResourceRequirements, ServiceSpec, TaskSpec, UpdateConfig,
} from '../../../proto/skiff/v1/specs.js';
import { HealthState, NodeAvailability, NodeRole, NodeState, TaskState, type Meta, type Resources } from '../../../proto/skiff/v1/types.js';
import { healthStateName, taskStateName } from '../../../proto/task-states.js';
import { ApiError } from '../errors.js';

/** A JSON value as the Docker API sends it. */
type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const NS_PER_MS = 1_000_000;

// ----- Skiff -> Docker -----

function timestamp(ms: number): string {
  return new Date(ms > 0 ? ms : 0).toISOString();
}

function objectHeader(meta: Meta | undefined): JsonObject {
  return { ID: meta?.id ?? '', Version: { Index: meta?.version ?? 0 }, CreatedAt: timestamp(meta?.createdAtMs ?? 0), UpdatedAt: timestamp(meta?.updatedAtMs ?? 0) };
}

const NODE_STATES: Record<NodeState, string> = {
  [NodeState.NODE_STATE_UNKNOWN]: 'unknown',
  [NodeState.NODE_STATE_DOWN]: 'down',
  [NodeState.NODE_STATE_READY]: 'ready',
  [NodeState.NODE_STATE_DISCONNECTED]: 'disconnected',
  [NodeState.UNRECOGNIZED]: 'unknown',
};
const AVAILABILITIES: Record<NodeAvailability, string> = {
  [NodeAvailability.NODE_AVAILABILITY_ACTIVE]: 'active',
  [NodeAvailability.NODE_AVAILABILITY_PAUSE]: 'pause',
  [NodeAvailability.NODE_AVAILABILITY_DRAIN]: 'drain',
  [NodeAvailability.UNRECOGNIZED]: 'active',
};

function roleName(role: NodeRole): string {
  return role === NodeRole.NODE_ROLE_MANAGER ? 'manager' : 'worker';
}

export function dockerNode(node: Node): JsonObject {
  const description = node.description;
  const manager = node.managerStatus;
  return {
    ...objectHeader(node.meta),
    Spec: {
      Labels: { ...(node.spec?.labels ?? {}) },
      Role: roleName(node.spec?.desiredRole ?? node.role),
      Availability: AVAILABILITIES[node.spec?.availability ?? NodeAvailability.NODE_AVAILABILITY_ACTIVE],
    },
    Description: {
      Hostname: description?.hostname ?? '',
      Platform: { Architecture: description?.platform?.architecture ?? '', OS: description?.platform?.os ?? '' },
      Resources: { NanoCPUs: description?.resources?.nanoCpus ?? 0, MemoryBytes: description?.resources?.memoryBytes ?? 0 },
      Engine: { EngineVersion: description?.engineVersion ?? '' },
    },
    Status: { State: NODE_STATES[node.status?.state ?? NodeState.NODE_STATE_UNKNOWN], Message: node.status?.message ?? '', Addr: node.status?.addr ?? '' },
    ...(node.role === NodeRole.NODE_ROLE_MANAGER && manager !== undefined
      ? { ManagerStatus: { Leader: manager.leader, Reachability: manager.reachability || 'unknown', Addr: manager.addr } }
      : {}),
  };
}

function nanos(ms: number): number {
  return ms * NS_PER_MS;
}

function dockerResources(resources: Resources | undefined): JsonObject {
  return { NanoCPUs: resources?.nanoCpus ?? 0, MemoryBytes: resources?.memoryBytes ?? 0, ...(resources?.pids ? { Pids: resources.pids } : {}) };
}

function dockerHealthcheck(check: HealthCheck): JsonObject {
  // Docker has no HTTP or TCP probe: such a check is shown as a command naming Skiff's probe.
  const probe = check.http !== undefined ? `skiff http probe :${check.http.port}${check.http.path}` : check.tcpPort !== 0 ? `skiff tcp probe :${check.tcpPort}` : undefined;
  const test = probe === undefined ? [...check.test] : ['CMD-SHELL', probe];
  return { Test: test, Interval: nanos(check.intervalMs), Timeout: nanos(check.timeoutMs), Retries: check.retries, StartPeriod: nanos(check.startPeriodMs) };
}

function dockerMount(mount: Mount): JsonObject {
  return {
    Type: mount.type,
    Source: mount.source,
    Target: mount.target,
    ReadOnly: mount.readOnly,
    ...(mount.type === 'tmpfs' ? { TmpfsOptions: { SizeBytes: mount.tmpfsSizeBytes, Mode: mount.tmpfsMode } } : {}),
  };
}

function dockerContainerSpec(container: ContainerSpec | undefined): JsonObject {
  if (container === undefined) return {};
  return {
    Image: container.image,
    Labels: { ...container.labels },
    ...(container.command.length > 0 ? { Command: [...container.command] } : {}),
    ...(container.args.length > 0 ? { Args: [...container.args] } : {}),
    ...(container.env.length > 0 ? { Env: [...container.env] } : {}),
    ...(container.hostname !== '' ? { Hostname: container.hostname } : {}),
    ...(container.user !== '' ? { User: container.user } : {}),
    ...(container.workdir !== '' ? { Dir: container.workdir } : {}),
    ...(container.mounts.length > 0 ? { Mounts: container.mounts.map(dockerMount) } : {}),
    ...(container.healthcheck !== undefined ? { Healthcheck: dockerHealthcheck(container.healthcheck) } : {}),
    ...(container.secrets.length > 0
      ? { Secrets: container.secrets.map((secret) => ({ SecretID: secret.secretId, SecretName: secret.secretName, File: { Name: secret.target || secret.secretName, UID: String(secret.uid), GID: String(secret.gid), Mode: secret.mode || 0o444 } })) }
      : {}),
    ...(container.configs.length > 0
      ? { Configs: container.configs.map((config) => ({ ConfigID: config.configId, ConfigName: config.configName, File: { Name: config.target || config.configName, UID: String(config.uid), GID: String(config.gid), Mode: config.mode || 0o444 } })) }
      : {}),
    ReadOnly: container.readOnly,
    ...(container.capAdd.length > 0 ? { CapabilityAdd: [...container.capAdd] } : {}),
    ...(container.capDrop.length > 0 ? { CapabilityDrop: [...container.capDrop] } : {}),
    ...(Object.keys(container.sysctls).length > 0 ? { Sysctls: { ...container.sysctls } } : {}),
    ...(container.ulimits.length > 0 ? { Ulimits: container.ulimits.map((limit) => ({ Name: limit.name, Soft: limit.soft, Hard: limit.hard })) } : {}),
    Init: container.init,
    ...(container.stopSignal !== '' ? { StopSignal: container.stopSignal } : {}),
    ...(container.stopGracePeriodMs > 0 ? { StopGracePeriod: nanos(container.stopGracePeriodMs) } : {}),
  };
}

function dockerTaskSpec(spec: TaskSpec | undefined): JsonObject {
  return {
    ContainerSpec: dockerContainerSpec(spec?.container),
    Resources: { Limits: dockerResources(spec?.resources?.limits), Reservations: dockerResources(spec?.resources?.reservations) },
    RestartPolicy: {
      Condition: spec?.restartPolicy?.condition || 'any',
      Delay: nanos(spec?.restartPolicy?.delayMs ?? 0),
      MaxAttempts: spec?.restartPolicy?.maxAttempts ?? 0,
      Window: nanos(spec?.restartPolicy?.windowMs ?? 0),
    },
    Placement: {
      ...(spec?.placement?.constraints.length ? { Constraints: [...spec.placement.constraints] } : {}),
      ...(spec?.placement?.preferences.length ? { Preferences: spec.placement.preferences.map((preference) => ({ Spread: { SpreadDescriptor: preference.spread } })) } : {}),
      ...(spec?.placement?.maxReplicasPerNode ? { MaxReplicas: spec.placement.maxReplicasPerNode } : {}),
    },
    ...(spec?.networks.length ? { Networks: spec.networks.map((network) => dockerNetworkAttachment(network, spec.networkAliases)) } : {}),
    ForceUpdate: spec?.forceUpdate ?? 0,
    Runtime: 'container',
  };
}

function dockerUpdateConfig(config: UpdateConfig | undefined): JsonObject | undefined {
  if (config === undefined) return undefined;
  return {
    Parallelism: config.parallelism,
    Delay: nanos(config.delayMs),
    FailureAction: config.failureAction || 'pause',
    Monitor: nanos(config.monitorMs),
    MaxFailureRatio: config.maxFailureRatio,
    Order: config.order || 'stop-first',
  };
}

function dockerPort(port: PortConfig): JsonObject {
  return { ...(port.name !== '' ? { Name: port.name } : {}), Protocol: port.protocol || 'tcp', TargetPort: port.targetPort, PublishedPort: port.publishedPort, PublishMode: port.publishMode || 'ingress' };
}

function dockerEndpointSpec(endpoint: EndpointSpec | undefined): JsonObject {
  return { Mode: endpoint?.mode || 'vip', ...(endpoint?.ports.length ? { Ports: endpoint.ports.map(dockerPort) } : {}) };
}

export function dockerServiceSpec(spec: ServiceSpec): JsonObject {
  const update = dockerUpdateConfig(spec.updateConfig);
  const rollback = dockerUpdateConfig(spec.rollbackConfig);
  return {
    Name: spec.name,
    Labels: { ...spec.labels },
    TaskTemplate: dockerTaskSpec(spec.taskTemplate),
    Mode: spec.mode?.$case === 'global' ? { Global: {} } : { Replicated: { Replicas: spec.mode?.$case === 'replicated' ? spec.mode.value.replicas : 1 } },
    ...(update === undefined ? {} : { UpdateConfig: update }),
    ...(rollback === undefined ? {} : { RollbackConfig: rollback }),
    EndpointSpec: dockerEndpointSpec(spec.endpoint),
  };
}

/** Docker's update states are updating | paused | completed | rollback_started | rollback_paused | rollback_completed. */
function dockerUpdateState(state: string): string {
  return state === 'canary' ? 'updating' : state;
}

export function dockerService(service: Service, counts?: { running: number; desired: number; completed?: number }): JsonObject {
  const endpoint = service.endpoint;
  return {
    ...objectHeader(service.meta),
    Spec: service.spec === undefined ? {} : dockerServiceSpec(service.spec),
    ...(service.previousSpec === undefined ? {} : { PreviousSpec: dockerServiceSpec(service.previousSpec) }),
    Endpoint: {
      Spec: dockerEndpointSpec(endpoint?.spec ?? service.spec?.endpoint),
      ...(endpoint?.ports.length ? { Ports: endpoint.ports.map(dockerPort) } : {}),
      ...(endpoint?.virtualIps.length ? { VirtualIPs: endpoint.virtualIps.map((vip) => ({ NetworkID: vip.networkId, Addr: vip.addr })) } : {}),
    },
    ...(service.updateStatus !== undefined && service.updateStatus.state !== ''
      ? {
          UpdateStatus: {
            State: dockerUpdateState(service.updateStatus.state),
            StartedAt: timestamp(service.updateStatus.startedAtMs),
            ...(service.updateStatus.completedAtMs > 0 ? { CompletedAt: timestamp(service.updateStatus.completedAtMs) } : {}),
            Message: service.updateStatus.message,
          },
        }
      : {}),
    ...(counts === undefined ? {} : { ServiceStatus: { RunningTasks: counts.running, DesiredTasks: counts.desired, CompletedTasks: counts.completed ?? 0 } }),
  };
}

/** Docker's name for a task state, as `docker service ps` and the `desired-state` filter use them (Skiff's are the same). */
export function dockerTaskState(state: TaskState): string {
  return taskStateName(state);
}

export function dockerTask(task: Task): JsonObject {
  const status = task.status;
  return {
    ...objectHeader(task.meta),
    Labels: {},
    Spec: dockerTaskSpec(task.spec),
    ServiceID: task.serviceId,
    ...(task.slot > 0 ? { Slot: task.slot } : {}),
    ...(task.nodeId !== '' ? { NodeID: task.nodeId } : {}),
    Status: {
      Timestamp: timestamp(status?.timestampMs ?? 0),
      State: dockerTaskState(status?.state ?? TaskState.TASK_STATE_NEW),
      Message: status?.message ?? '',
      ...(status?.err ? { Err: status.err } : {}),
      ...(status?.containerId ? { ContainerStatus: { ContainerID: status.containerId, PID: status.pid, ExitCode: status.exitCode } } : {}),
      ...(status !== undefined && status.health !== HealthState.HEALTH_STATE_NONE ? { Health: healthStateName(status.health) } : {}),
    },
    DesiredState: dockerTaskState(task.desiredState),
    ...(task.networks.length > 0 ? { NetworksAttachments: task.networks.map((attachment) => ({ Network: { ID: attachment.network }, Addresses: [...attachment.addresses] })) } : {}),
  };
}

// ----- Docker -> Skiff -----

/** True for a value that asks for nothing: null, false, 0, "", and lists and objects of such values only. */
export function isZero(value: Json | undefined): boolean {
  if (value === undefined || value === null || value === false || value === 0 || value === '') return true;
  if (Array.isArray(value)) return value.every(isZero);
  if (typeof value === 'object') return Object.values(value).every(isZero);
  return false;
}

/** Reads one JSON object of a Docker spec, refusing wrong types and every field it is not told about that asks for something. */
class Fields {
  private readonly seen = new Set<string>();

  constructor(
    private readonly value: JsonObject,
    private readonly path: string,
  ) {}

  static of(value: Json | undefined, path: string): Fields {
    if (value === undefined || value === null) return new Fields({}, path);
    if (typeof value !== 'object' || Array.isArray(value)) throw invalid(path, 'must be an object');
    return new Fields(value, path);
  }

  private take(key: string): Json | undefined {
    this.seen.add(key);
    const value = this.value[key];
    return value === null ? undefined : value;
  }

  at(key: string): string {
    return this.path === '' ? key : `${this.path}.${key}`;
  }

  string(key: string): string {
    const value = this.take(key);
    if (value === undefined) return '';
    if (typeof value !== 'string') throw invalid(this.at(key), 'must be a string');
    return value;
  }

  number(key: string): number {
    const value = this.take(key);
    if (value === undefined) return 0;
    if (typeof value !== 'number' || !Number.isFinite(value)) throw invalid(this.at(key), 'must be a number');
    return value;
  }

  /** A non-negative integer (a count, bytes, a port). */
  count(key: string): number {
    const value = this.number(key);
    if (!Number.isSafeInteger(value) || value < 0) throw invalid(this.at(key), `must be a non-negative integer, not ${value}`);
    return value;
  }

  /** A Docker duration (nanoseconds) in whole milliseconds. */
  durationMs(key: string): number {
    const value = this.count(key);
    return Math.round(value / NS_PER_MS);
  }

  boolean(key: string): boolean {
    const value = this.take(key);
    if (value === undefined) return false;
    if (typeof value !== 'boolean') throw invalid(this.at(key), 'must be true or false');
    return value;
  }

  strings(key: string): string[] {
    const value = this.take(key);
    if (value === undefined) return [];
    if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) throw invalid(this.at(key), 'must be a list of strings');
    return value as string[];
  }

  stringMap(key: string): Record<string, string> {
    const value = this.take(key);
    if (value === undefined) return {};
    if (typeof value !== 'object' || value === null || Array.isArray(value) || !Object.values(value).every((item) => typeof item === 'string')) {
      throw invalid(this.at(key), 'must be an object of strings');
    }
    return { ...(value as Record<string, string>) };
  }

  object(key: string): Fields | undefined {
    const value = this.take(key);
    return value === undefined ? undefined : Fields.of(value, this.at(key));
  }

  objects(key: string): Fields[] {
    const value = this.take(key);
    if (value === undefined) return [];
    if (!Array.isArray(value)) throw invalid(this.at(key), 'must be a list');
    return value.map((item, index) => Fields.of(item, `${this.at(key)}[${index}]`));
  }

  /** Accepts `key` only with its zero value or `allowed` (the stock CLI's defaults for what Skiff does anyway). */
  only(key: string, ...allowed: Json[]): void {
    const value = this.take(key);
    if (isZero(value) || allowed.some((candidate) => JSON.stringify(candidate) === JSON.stringify(value))) return;
    throw unsupported(this.at(key), value);
  }

  /** Refuses every field not read that asks for something. Call last. */
  done(): void {
    for (const [key, value] of Object.entries(this.value)) {
      if (!this.seen.has(key) && !isZero(value)) throw unsupported(this.at(key), value);
    }
  }
}

function invalid(path: string, problem: string): ApiError {
  return new ApiError('invalid_argument', `invalid service spec: ${path} ${problem}`);
}

function unsupported(path: string, value: Json | undefined): ApiError {
  return new ApiError('invalid_argument', `invalid service spec: ${path} (${JSON.stringify(value)}) is not supported by Skiff's Docker API; leave it unset, or use the skiff CLI`);
}

function skiffResources(fields: Fields | undefined): Resources | undefined {
  if (fields === undefined) return undefined;
  const resources = { nanoCpus: fields.count('NanoCPUs'), memoryBytes: fields.count('MemoryBytes'), pids: fields.count('Pids') };
  fields.only('GenericResources');
  fields.done();
  return resources;
}

function skiffHealthcheck(fields: Fields | undefined): HealthCheck | undefined {
  if (fields === undefined) return undefined;
  const check: HealthCheck = {
    test: fields.strings('Test'),
    intervalMs: fields.durationMs('Interval'),
    timeoutMs: fields.durationMs('Timeout'),
    retries: fields.count('Retries'),
    startPeriodMs: fields.durationMs('StartPeriod'),
    http: undefined,
    tcpPort: 0,
  };
  fields.only('StartInterval');
  fields.done();
  return check.test.length === 0 && check.intervalMs === 0 && check.timeoutMs === 0 && check.retries === 0 && check.startPeriodMs === 0 ? undefined : check;
}

function skiffMount(fields: Fields): Mount {
  const type = fields.string('Type') || 'volume';
  const tmpfs = fields.object('TmpfsOptions');
  const mount: Mount = {
    type,
    source: fields.string('Source'),
    target: fields.string('Target'),
    readOnly: fields.boolean('ReadOnly'),
    tmpfsSizeBytes: tmpfs?.count('SizeBytes') ?? 0,
    tmpfsMode: tmpfs?.count('Mode') ?? 0,
  };
  tmpfs?.done();
  fields.only('Consistency', 'default');
  fields.only('BindOptions');
  fields.only('VolumeOptions');
  fields.done();
  return mount;
}

/** A File's UID/GID: Docker sends decimal strings. */
function fileId(fields: Fields, key: string): number {
  const text = fields.string(key);
  if (text === '') return 0;
  if (!/^\d+$/.test(text)) throw invalid(fields.at(key), `must be a decimal number, not "${text}"`);
  return Number(text);
}

function skiffFileReference(fields: Fields, kind: 'Secret' | 'Config'): { id: string; name: string; target: string; uid: number; gid: number; mode: number } {
  const file = fields.object('File');
  const reference = {
    id: fields.string(`${kind}ID`),
    name: fields.string(`${kind}Name`),
    target: file?.string('Name') ?? '',
    uid: file === undefined ? 0 : fileId(file, 'UID'),
    gid: file === undefined ? 0 : fileId(file, 'GID'),
    mode: file?.count('Mode') ?? 0,
  };
  file?.done();
  if (kind === 'Config') fields.only('Runtime');
  fields.done();
  return reference;
}

function skiffContainerSpec(fields: Fields | undefined): ContainerSpec {
  if (fields === undefined) throw invalid('TaskTemplate.ContainerSpec', 'is required');
  const container: ContainerSpec = {
    image: fields.string('Image'),
    command: fields.strings('Command'),
    args: fields.strings('Args'),
    env: fields.strings('Env'),
    user: fields.string('User'),
    workdir: fields.string('Dir'),
    hostname: fields.string('Hostname'),
    mounts: fields.objects('Mounts').map(skiffMount),
    healthcheck: skiffHealthcheck(fields.object('Healthcheck')),
    labels: fields.stringMap('Labels'),
    secrets: fields.objects('Secrets').map((secret) => {
      const reference = skiffFileReference(secret, 'Secret');
      return { secretId: reference.id, secretName: reference.name, target: reference.target, uid: reference.uid, gid: reference.gid, mode: reference.mode };
    }),
    configs: fields.objects('Configs').map((config) => {
      const reference = skiffFileReference(config, 'Config');
      // Docker places a relative config target under the container's root (docker stack deploy sends the bare key).
      const target = reference.target === '' || reference.target.startsWith('/') ? reference.target : `/${reference.target}`;
      return { configId: reference.id, configName: reference.name, target, uid: reference.uid, gid: reference.gid, mode: reference.mode };
    }),
    readOnly: fields.boolean('ReadOnly'),
    capAdd: fields.strings('CapabilityAdd'),
    capDrop: fields.strings('CapabilityDrop'),
    sysctls: fields.stringMap('Sysctls'),
    ulimits: fields.objects('Ulimits').map((limit) => {
      const ulimit = { name: limit.string('Name'), soft: limit.count('Soft'), hard: limit.count('Hard') };
      limit.done();
      return ulimit;
    }),
    init: fields.boolean('Init'),
    stopSignal: fields.string('StopSignal'),
    stopGracePeriodMs: fields.durationMs('StopGracePeriod'),
  };
  fields.only('Isolation', 'default');
  fields.only('DNSConfig');
  fields.done();
  return container;
}

/** One of a task template's networks as Docker shows it: `Target`, and `Aliases` when it has any. */
function dockerNetworkAttachment(network: string, aliases: readonly NetworkAliases[]): { Target: string; Aliases?: string[] } {
  const names = aliases.find((entry) => entry.network === network)?.aliases ?? [];
  return names.length > 0 ? { Target: network, Aliases: [...names] } : { Target: network };
}

function skiffTaskSpec(fields: Fields | undefined): TaskSpec {
  if (fields === undefined) throw invalid('TaskTemplate', 'is required');
  const resources = fields.object('Resources');
  const restart = fields.object('RestartPolicy');
  const placement = fields.object('Placement');
  const attachments = fields.objects('Networks').map((network) => {
    const attachment = { network: network.string('Target'), aliases: network.strings('Aliases') };
    network.only('DriverOpts');
    network.done();
    return attachment;
  });
  const spec: TaskSpec = {
    container: skiffContainerSpec(fields.object('ContainerSpec')),
    resources: resources === undefined ? undefined : ({ limits: skiffResources(resources.object('Limits')), reservations: skiffResources(resources.object('Reservations')) } satisfies ResourceRequirements),
    restartPolicy: restart === undefined ? undefined : {
      condition: restart.string('Condition'),
      delayMs: restart.durationMs('Delay'),
      maxAttempts: restart.count('MaxAttempts'),
      windowMs: restart.durationMs('Window'),
    },
    placement: placement === undefined ? undefined : {
      constraints: placement.strings('Constraints'),
      preferences: placement.objects('Preferences').map((preference) => {
        const spread = preference.object('Spread');
        const descriptor = spread?.string('SpreadDescriptor') ?? '';
        spread?.done();
        preference.done();
        return { spread: descriptor };
      }),
      maxReplicasPerNode: placement.count('MaxReplicas'),
    },
    networks: attachments.map((attachment) => attachment.network),
    forceUpdate: fields.count('ForceUpdate'),
    networkAliases: attachments.filter((attachment) => attachment.aliases.length > 0),
  };
  resources?.done();
  restart?.done();
  placement?.only('Platforms');
  placement?.done();
  fields.only('Runtime', 'container');
  fields.only('LogDriver');
  fields.done();
  return spec;
}

function skiffUpdateConfig(fields: Fields | undefined): UpdateConfig | undefined {
  if (fields === undefined) return undefined;
  const config: UpdateConfig = {
    parallelism: fields.count('Parallelism'),
    delayMs: fields.durationMs('Delay'),
    failureAction: fields.string('FailureAction'),
    monitorMs: fields.durationMs('Monitor'),
    maxFailureRatio: fields.number('MaxFailureRatio'),
    order: fields.string('Order'),
  };
  fields.done();
  return config;
}

function skiffEndpointSpec(fields: Fields | undefined): EndpointSpec | undefined {
  if (fields === undefined) return undefined;
  const endpoint: EndpointSpec = {
    mode: fields.string('Mode'),
    ports: fields.objects('Ports').map((port) => {
      const config: PortConfig = {
        name: port.string('Name'),
        protocol: port.string('Protocol'),
        targetPort: port.count('TargetPort'),
        publishedPort: port.count('PublishedPort'),
        publishMode: port.string('PublishMode'),
      };
      port.done();
      return config;
    }),
  };
  fields.done();
  return endpoint;
}

/** A Docker ServiceSpec (the body of POST /services/create and /services/{id}/update) as Skiff's. */
export function skiffServiceSpec(body: Json): ServiceSpec {
  const fields = Fields.of(body, '');
  const mode = fields.object('Mode');
  let specMode: ServiceSpec['mode'] = { $case: 'replicated', value: { replicas: 1 } };
  if (mode !== undefined) {
    const replicated = mode.object('Replicated');
    const global = mode.object('Global');
    if (replicated !== undefined && global !== undefined) throw invalid('Mode', 'must be Replicated or Global, not both');
    if (global !== undefined) {
      global.done();
      specMode = { $case: 'global', value: {} };
    } else if (replicated !== undefined) {
      // Docker's Replicas is optional: absent means 1.
      const replicas = replicated.count('Replicas');
      specMode = { $case: 'replicated', value: { replicas: hasKey(body, ['Mode', 'Replicated', 'Replicas']) ? replicas : 1 } };
      replicated.done();
    }
    mode.done();
  }
  const spec: ServiceSpec = {
    name: fields.string('Name'),
    labels: fields.stringMap('Labels'),
    taskTemplate: skiffTaskSpec(fields.object('TaskTemplate')),
    mode: specMode,
    updateConfig: skiffUpdateConfig(fields.object('UpdateConfig')),
    rollbackConfig: skiffUpdateConfig(fields.object('RollbackConfig')),
    endpoint: skiffEndpointSpec(fields.object('EndpointSpec')),
    deployStrategy: '',
    rebalance: '',
    bluegreenHoldMs: 0,
    canaryReplicas: 0,
  };
  fields.only('Networks');
  fields.done();
  return spec;
}

function hasKey(value: Json, path: string[]): boolean {
  let current: Json | undefined = value;
  for (const key of path) {
    if (current === null || typeof current !== 'object' || Array.isArray(current) || !(key in current)) return false;
    current = current[key];
  }
  return current !== null && current !== undefined;
}

/**
 * Carries Skiff's own settings, which a Docker spec cannot say, from the stored spec into an update
 * made through the Docker API (as `docker service update` sends back what it read, plus changes).
 */
export function keepSkiffSettings(update: ServiceSpec, current: ServiceSpec | undefined): ServiceSpec {
  if (current === undefined) return update;
  const container = update.taskTemplate?.container;
  const currentCheck = current.taskTemplate?.container?.healthcheck;
  const keepProbe = container !== undefined && currentCheck !== undefined && (currentCheck.http !== undefined || currentCheck.tcpPort !== 0)
    && JSON.stringify(container.healthcheck?.test) === JSON.stringify(dockerHealthcheck(currentCheck)['Test']);
  return {
    ...update,
    deployStrategy: current.deployStrategy,
    rebalance: current.rebalance,
    bluegreenHoldMs: current.bluegreenHoldMs,
    canaryReplicas: current.canaryReplicas,
    ...(keepProbe && update.taskTemplate !== undefined && container !== undefined
      ? { taskTemplate: { ...update.taskTemplate, container: { ...container, healthcheck: currentCheck } } }
      : {}),
  };
}

// ----- secrets, configs, networks -----

/** A secret or config without its data (no Control API call returns data; nor does Docker's for secrets). */
export function dockerDataObject(object: { meta?: Meta | undefined; spec?: { name: string; labels: Record<string, string> } | undefined }): JsonObject {
  return { ...objectHeader(object.meta), Spec: { Name: object.spec?.name ?? '', Labels: { ...(object.spec?.labels ?? {}) } } };
}

/** The body of POST /secrets/create or /configs/create: name, labels and base64 data. */
/** A secret's or config's name, labels and bytes. */
export interface DataSpec {
  name: string;
  labels: Record<string, string>;
  data: Uint8Array;
}

/** Docker's SecretSpec or ConfigSpec as Skiff's (an update may leave `Data` out: empty data, the stored bytes kept). */
export function skiffDataSpec(body: Json, kind: 'secret' | 'config'): DataSpec {
  const fields = Fields.of(body, '');
  const name = fields.string('Name');
  const labels = fields.stringMap('Labels');
  const encoded = fields.string('Data');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(encoded) || encoded.length % 4 !== 0) throw invalid('Data', `must be base64 (the ${kind}'s bytes)`);
  fields.only('Driver');
  fields.only('Templating');
  fields.done();
  return { name, labels, data: new Uint8Array(Buffer.from(encoded, 'base64')) };
}

export function dockerNetwork(network: Network): JsonObject {
  const allocation = network.allocation;
  return {
    Name: network.spec?.name ?? '',
    Id: network.meta?.id ?? '',
    Created: timestamp(network.meta?.createdAtMs ?? 0),
    Scope: 'swarm',
    Driver: network.spec?.driver || 'overlay',
    EnableIPv6: false,
    IPAM: { Driver: 'default', Options: null, Config: allocation === undefined || allocation.subnet === '' ? [] : [{ Subnet: allocation.subnet, Gateway: allocation.gateway }] },
    Internal: network.spec?.internal ?? false,
    Attachable: network.spec?.attachable ?? false,
    Ingress: false,
    ConfigFrom: { Network: '' },
    ConfigOnly: false,
    Containers: {},
    Options: allocation === undefined || allocation.vni === 0 ? {} : { 'com.docker.network.driver.overlay.vxlanid_list': String(allocation.vni) },
    Labels: { ...(network.spec?.labels ?? {}) },
  };
}

/** The body of POST /networks/create as Skiff's NetworkSpec (overlay only; one subnet, its gateway Skiff's). */
export function skiffNetworkSpec(body: Json): NetworkSpec {
  const fields = Fields.of(body, '');
  const ipam = fields.object('IPAM');
  const configs = ipam?.objects('Config') ?? [];
  if (configs.length > 1) throw invalid('IPAM.Config', 'may hold one subnet only');
  const config = configs[0];
  const subnet = config?.string('Subnet') ?? '';
  config?.only('Gateway');
  config?.only('IPRange');
  config?.only('AuxiliaryAddresses');
  config?.done();
  ipam?.only('Driver', 'default');
  ipam?.only('Options');
  ipam?.done();
  const spec: NetworkSpec = {
    name: fields.string('Name'),
    labels: fields.stringMap('Labels'),
    driver: fields.string('Driver'),
    subnet,
    internal: fields.boolean('Internal'),
    attachable: fields.boolean('Attachable'),
  };
  fields.only('CheckDuplicate', true);
  fields.only('Scope', 'swarm');
  fields.only('Ingress');
  fields.only('EnableIPv6');
  fields.only('Options');
  fields.only('ConfigOnly');
  fields.only('ConfigFrom');
  fields.done();
  return spec;
}
