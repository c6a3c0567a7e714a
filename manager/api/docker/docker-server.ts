/**
 * The Docker-compatible API (DESIGN.md §1): the swarm subset of the Docker Engine HTTP API on a
 * manager's root-only unix socket, so that the stock `docker` CLI drives the cluster
 * (`DOCKER_HOST=unix:///run/skiff/docker.sock docker service ls`). It translates: every call goes
 * to the manager's own Control API, so validation, forwarding to the leader and errors are the
 * ones the skiff CLI gets. Covered: ping, version, info; nodes (ls, inspect, update, rm);
 * services (create, ls, inspect, update, rollback, rm, logs); tasks (ls, inspect, logs); secrets and configs
 * (create, ls, inspect, update of labels, rm); overlay networks (create, ls, inspect, rm): with the
 * label filters and network aliases `docker stack deploy|ls|ps|services|rm` use. Anything else is
 * answered 404 with the path it did not know.
 */
import { chmod, mkdir, rm } from 'node:fs/promises';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import { arch, hostname, release } from 'node:os';
import { dirname } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { SKIFF_VERSION } from '../../../common/version.js';
import { checkUnixSocketPath } from '../../../common/address.js';
import type { Logger } from '../../../common/log.js';
import type { LogMessage, LogsOptions } from '../../../proto/skiff/v1/attach.js';
import type { ControlClient, ServiceReplicaCounts } from '../../../proto/skiff/v1/control.js';
import type { Config, Network, Node, Secret, Service, Task } from '../../../proto/skiff/v1/objects.js';
import type { ConfigSpec, NetworkSpec, SecretSpec, ServiceSpec } from '../../../proto/skiff/v1/specs.js';
import { NodeAvailability, NodeRole, TaskState } from '../../../proto/skiff/v1/types.js';
import {
  type DataSpec, dockerDataObject, dockerNetwork, dockerNode, dockerService, dockerTask, dockerTaskState, isZero, keepSkiffSettings, skiffDataSpec, skiffNetworkSpec, skiffServiceSpec,
} from './docker-objects.js';

/** The Engine API version this adapter speaks (Docker 24); the CLI negotiates down to it at /_ping. */
export const DOCKER_API_VERSION = '1.43';
/** The oldest version a client may ask for. */
export const DOCKER_MIN_API_VERSION = '1.24';
/** Largest request body read (a service spec is a few KiB). */
export const MAX_DOCKER_BODY_BYTES = 1024 * 1024;

/** The Control API calls the adapter makes (ControlClient's, as promises). */
export interface DockerControl {
  listNodes(): Promise<Node[]>;
  getNode(node: string): Promise<Node>;
  updateNode(node: string, version: number, spec: NonNullable<Node['spec']>): Promise<void>;
  removeNode(node: string, force: boolean): Promise<void>;
  listServices(): Promise<{ services: Service[]; counts: ServiceReplicaCounts[] }>;
  getService(service: string): Promise<Service>;
  createService(spec: ServiceSpec): Promise<Service>;
  updateService(service: string, version: number, spec: ServiceSpec): Promise<void>;
  rollbackService(service: string): Promise<void>;
  removeService(service: string): Promise<void>;
  listTasks(): Promise<Task[]>;
  listSecrets(): Promise<Secret[]>;
  getSecret(secret: string): Promise<Secret>;
  createSecret(spec: SecretSpec): Promise<Secret>;
  removeSecret(secret: string): Promise<void>;
  /** Labels only; the name and the data (when not empty) must be the stored ones. */
  updateSecret(secret: string, version: number, spec: SecretSpec): Promise<void>;
  listConfigs(): Promise<Config[]>;
  getConfig(config: string): Promise<Config>;
  createConfig(spec: ConfigSpec): Promise<Config>;
  removeConfig(config: string): Promise<void>;
  updateConfig(config: string, version: number, spec: ConfigSpec): Promise<void>;
  listNetworks(): Promise<Network[]>;
  getNetwork(network: string): Promise<Network>;
  createNetwork(spec: NetworkSpec): Promise<Network>;
  removeNetwork(network: string): Promise<void>;
  /** Streams the log lines of a service's or a task's containers to `onMessage`; settles when the stream ends, fails or `signal` aborts it. */
  taskLogs(target: { service: string; task: string }, options: LogsOptions, onMessage: (message: LogMessage) => void, signal: AbortSignal): Promise<void>;
}

export interface DockerApiOptions {
  socketPath: string;
  control: DockerControl;
  /** This manager's node id (Info.Swarm.NodeID: `docker node ls` marks it with `*`). */
  selfNodeId: string;
  clusterId: string;
  /** Pins a tag to its digest for POST /distribution/{name}/json (the CLI's digest lookup); absent: 404. */
  resolveImage?: (image: string) => Promise<string>;
  log: Logger;
}

/** An error with the HTTP status the Docker API answers it with; its message goes out as {"message"}. */
export class DockerApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const GRPC_TO_HTTP: Partial<Record<grpc.status, number>> = {
  [grpc.status.INVALID_ARGUMENT]: 400,
  [grpc.status.NOT_FOUND]: 404,
  [grpc.status.ALREADY_EXISTS]: 409,
  [grpc.status.ABORTED]: 409,
  [grpc.status.FAILED_PRECONDITION]: 412,
  [grpc.status.PERMISSION_DENIED]: 403,
  [grpc.status.RESOURCE_EXHAUSTED]: 413,
  [grpc.status.UNAVAILABLE]: 503,
  [grpc.status.DEADLINE_EXCEEDED]: 503,
};

/** The HTTP status and message of an error from the Control API or the adapter itself. */
export function httpError(error: unknown): { status: number; message: string } {
  if (error instanceof DockerApiError) return { status: error.status, message: error.message };
  if (typeof error === 'object' && error !== null && 'code' in error && typeof (error as grpc.ServiceError).code === 'number') {
    const serviceError = error as grpc.ServiceError;
    return { status: GRPC_TO_HTTP[serviceError.code] ?? 500, message: serviceError.details || serviceError.message };
  }
  if (typeof error === 'object' && error !== null && 'code' in error && (error as { code: unknown }).code === 'invalid_argument') {
    return { status: 400, message: error instanceof Error ? error.message : String(error) };
  }
  return { status: 500, message: error instanceof Error ? error.message : String(error) };
}

/** Docker's `filters` query parameter: `{"name":{"web":true}}`, or the older `{"name":["web"]}`. */
export function parseFilters(text: string | null, allowed: readonly string[]): Map<string, string[]> {
  const filters = new Map<string, string[]>();
  if (text === null || text === '') return filters;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new DockerApiError(400, `invalid filters: not JSON: ${text}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new DockerApiError(400, 'invalid filters: expected an object of filter names');
  for (const [name, values] of Object.entries(parsed)) {
    if (!allowed.includes(name)) throw new DockerApiError(400, `invalid filter '${name}' (this endpoint filters by ${allowed.join(', ')})`);
    let list: string[];
    if (Array.isArray(values) && values.every((value) => typeof value === 'string')) list = values as string[];
    else if (typeof values === 'object' && values !== null && !Array.isArray(values)) list = Object.entries(values).filter(([, on]) => on === true).map(([value]) => value);
    else throw new DockerApiError(400, `invalid filter '${name}': expected {"value": true} or a list of strings`);
    filters.set(name, list);
  }
  return filters;
}

/** True when filter `name` is absent, or `test` accepts one of its values. */
function matches(filters: Map<string, string[]>, name: string, test: (value: string) => boolean): boolean {
  const values = filters.get(name);
  return values === undefined || values.length === 0 || values.some(test);
}

/** `label=key` or `label=key=value` against an object's labels. */
function labelMatches(labels: Record<string, string>, filter: string): boolean {
  const at = filter.indexOf('=');
  if (at < 0) return filter in labels;
  return labels[filter.slice(0, at)] === filter.slice(at + 1);
}

/** An API version query value (`1.43`) as a comparable number, or undefined when malformed. */
function versionNumber(text: string): number | undefined {
  const match = /^(\d+)\.(\d+)$/.exec(text);
  return match === null ? undefined : Number(match[1]) * 1000 + Number(match[2]);
}

interface Route {
  method: string;
  pattern: RegExp;
  handle: (request: RoutedRequest) => Promise<unknown>;
}

interface RoutedRequest {
  params: string[];
  query: URLSearchParams;
  body: () => Promise<unknown>;
  /** The response, for a handler that streams (it answers with STREAMED). */
  response: ServerResponse;
}

/** An update's `version` query parameter: the Version.Index the client read. */
function version(query: URLSearchParams): number {
  const text = query.get('version');
  if (text === null || !/^\d+$/.test(text)) throw new DockerApiError(400, `invalid version: expected the object's Version.Index as a number, got ${JSON.stringify(text)}`);
  return Number(text);
}

/** What a streaming handler returns once it has written and ended the response itself. */
const STREAMED = Symbol('streamed');

/** The Docker API's routes over `control` (exported for tests without a socket). */
export function dockerRoutes(options: Omit<DockerApiOptions, 'socketPath' | 'log'>): Route[] {
  const { control } = options;
  /** `self` is the node this manager runs on (as the CLI's `docker node inspect self`). */
  const nodeReference = (reference: string | undefined): string => (reference === 'self' ? options.selfNodeId : reference ?? '');
  const findTask = async (reference: string): Promise<Task> => {
    const tasks = await control.listTasks();
    const exact = tasks.find((task) => task.meta?.id === reference);
    if (exact !== undefined) return exact;
    const prefixed = tasks.filter((task) => task.meta?.id.startsWith(reference));
    if (prefixed.length === 1 && prefixed[0] !== undefined) return prefixed[0];
    if (prefixed.length > 1) throw new DockerApiError(400, `task ${reference} is ambiguous (${prefixed.length} matches found)`);
    throw new DockerApiError(404, `no such task: ${reference}`);
  };
  return [
    { method: 'GET', pattern: /^\/_ping$/, handle: async () => 'OK' },
    { method: 'HEAD', pattern: /^\/_ping$/, handle: async () => '' },
    {
      method: 'GET',
      pattern: /^\/version$/,
      handle: async () => ({
        Platform: { Name: 'Skiff' },
        Components: [{ Name: 'Engine', Version: SKIFF_VERSION, Details: { ApiVersion: DOCKER_API_VERSION, MinAPIVersion: DOCKER_MIN_API_VERSION, Os: 'linux', Arch: goArch() } }],
        Version: SKIFF_VERSION,
        ApiVersion: DOCKER_API_VERSION,
        MinAPIVersion: DOCKER_MIN_API_VERSION,
        Os: 'linux',
        Arch: goArch(),
        KernelVersion: release(),
      }),
    },
    {
      method: 'GET',
      pattern: /^\/info$/,
      handle: async () => {
        const nodes = await control.listNodes();
        const managers = nodes.filter((node) => node.role === NodeRole.NODE_ROLE_MANAGER);
        const self = nodes.find((node) => node.meta?.id === options.selfNodeId);
        return {
          ID: options.selfNodeId,
          Name: self?.description?.hostname ?? hostname(),
          ServerVersion: SKIFF_VERSION,
          OperatingSystem: 'Skiff',
          OSType: 'linux',
          Architecture: goArch(),
          KernelVersion: release(),
          Containers: 0,
          Images: 0,
          Driver: 'overlay',
          Swarm: {
            NodeID: options.selfNodeId,
            NodeAddr: self?.managerStatus?.addr ?? '',
            LocalNodeState: 'active',
            ControlAvailable: true,
            Error: '',
            RemoteManagers: managers.map((node) => ({ NodeID: node.meta?.id ?? '', Addr: node.managerStatus?.addr ?? '' })),
            Nodes: nodes.length,
            Managers: managers.length,
            Cluster: { ID: options.clusterId },
          },
        };
      },
    },
    {
      method: 'POST',
      pattern: /^\/distribution\/(.+)\/json$/,
      handle: async ({ params }) => {
        const image = params[0] ?? '';
        const pinned = options.resolveImage === undefined ? image : await options.resolveImage(image);
        const digest = /@(sha256:[0-9a-f]{64})$/.exec(pinned)?.[1];
        if (digest === undefined) throw new DockerApiError(404, `cannot resolve ${image} to a digest: the registry did not say`);
        return { Descriptor: { mediaType: 'application/vnd.oci.image.index.v1+json', digest, size: 0 }, Platforms: [] };
      },
    },
    {
      method: 'GET',
      pattern: /^\/nodes$/,
      handle: async ({ query }) => {
        const filters = parseFilters(query.get('filters'), ['id', 'name', 'role', 'membership', 'node.label']);
        const nodes = (await control.listNodes()).filter((node) =>
          matches(filters, 'id', (value) => node.meta?.id.startsWith(value) === true) &&
          matches(filters, 'name', (value) => node.description?.hostname === value) &&
          matches(filters, 'role', (value) => value === (node.role === NodeRole.NODE_ROLE_MANAGER ? 'manager' : 'worker')) &&
          matches(filters, 'membership', (value) => value === 'accepted') &&
          matches(filters, 'node.label', (value) => labelMatches(node.spec?.labels ?? {}, value)));
        return nodes.map(dockerNode);
      },
    },
    { method: 'GET', pattern: /^\/nodes\/([^/]+)$/, handle: async ({ params }) => dockerNode(await control.getNode(nodeReference(params[0]))) },
    {
      method: 'POST',
      pattern: /^\/nodes\/([^/]+)\/update$/,
      handle: async ({ params, query, body }) => {
        const spec = nodeSpecFromDocker(await body());
        await control.updateNode(nodeReference(params[0]), version(query), spec);
        return undefined;
      },
    },
    {
      method: 'DELETE',
      pattern: /^\/nodes\/([^/]+)$/,
      handle: async ({ params, query }) => {
        await control.removeNode(nodeReference(params[0]), query.get('force') === 'true' || query.get('force') === '1');
        return undefined;
      },
    },
    {
      method: 'GET',
      pattern: /^\/services$/,
      handle: async ({ query }) => {
        const filters = parseFilters(query.get('filters'), ['id', 'name', 'label', 'mode']);
        const { services, counts } = await control.listServices();
        const countOf = new Map(counts.map((count) => [count.serviceId, count]));
        const withStatus = query.get('status') === 'true' || query.get('status') === '1';
        return services
          .filter((service) =>
            matches(filters, 'id', (value) => service.meta?.id.startsWith(value) === true) &&
            matches(filters, 'name', (value) => service.spec?.name.startsWith(value) === true) &&
            matches(filters, 'label', (value) => labelMatches(service.spec?.labels ?? {}, value)) &&
            matches(filters, 'mode', (value) => value === (service.spec?.mode?.$case ?? 'replicated')))
          .map((service) => {
            const count = countOf.get(service.meta?.id ?? '');
            return dockerService(service, withStatus && count !== undefined ? { running: count.running, desired: count.desired } : undefined);
          });
      },
    },
    {
      method: 'POST',
      pattern: /^\/services\/create$/,
      handle: async ({ body }) => {
        const service = await control.createService(skiffServiceSpec((await body()) as never));
        return { ID: service.meta?.id ?? '', Warnings: [] };
      },
    },
    { method: 'GET', pattern: /^\/services\/([^/]+)$/, handle: async ({ params }) => dockerService(await control.getService(params[0] ?? '')) },
    {
      method: 'POST',
      pattern: /^\/services\/([^/]+)\/update$/,
      handle: async ({ params, query, body }) => {
        const reference = params[0] ?? '';
        const rollback = query.get('rollback');
        if (rollback !== null && rollback !== '') {
          if (rollback !== 'previous') throw new DockerApiError(400, `invalid rollback: "${rollback}" (the only value is "previous")`);
          await body(); // read and ignored, as Docker does: the previous spec is the stored one
          await control.rollbackService(reference);
          return { Warnings: [] };
        }
        const spec = skiffServiceSpec((await body()) as never);
        const current = await control.getService(reference);
        await control.updateService(current.meta?.id ?? reference, version(query), keepSkiffSettings(spec, current.spec));
        return { Warnings: [] };
      },
    },
    {
      method: 'DELETE',
      pattern: /^\/services\/([^/]+)$/,
      handle: async ({ params }) => {
        await control.removeService(params[0] ?? '');
        return undefined;
      },
    },
    {
      method: 'GET',
      pattern: /^\/tasks$/,
      handle: async ({ query }) => {
        // `_up-to-date` is the CLI's own, while it waits for a service to converge: only tasks of the service's current spec.
        const filters = parseFilters(query.get('filters'), ['id', 'name', 'service', 'node', 'desired-state', 'label', '_up-to-date']);
        const nodes = filters.has('node') ? await control.listNodes() : [];
        const hostnames = new Map(nodes.map((node) => [node.meta?.id ?? '', node.description?.hostname ?? '']));
        const services = filters.has('_up-to-date') || filters.has('label') ? (await control.listServices()).services : [];
        const specVersions = new Map(services.map((service) => [service.meta?.id ?? '', service.specVersion]));
        // As in Swarm, a task's labels are its service's (`docker stack ps` filters by the stack's label).
        const serviceLabels = new Map(services.map((service) => [service.meta?.id ?? '', service.spec?.labels ?? {}]));
        return (await control.listTasks())
          .filter((task) =>
            matches(filters, 'id', (value) => task.meta?.id.startsWith(value) === true) &&
            matches(filters, 'name', (value) => `${task.serviceName}.${task.slot > 0 ? task.slot : task.nodeId}`.startsWith(value)) &&
            matches(filters, 'service', (value) => task.serviceId === value || task.serviceName === value || (value.length >= 4 && task.serviceId.startsWith(value))) &&
            matches(filters, 'node', (value) => task.nodeId === value || hostnames.get(task.nodeId) === value) &&
            matches(filters, 'desired-state', (value) => value === dockerTaskState(task.desiredState) || (value === 'running' && task.desiredState === TaskState.TASK_STATE_RUNNING)) &&
            matches(filters, 'label', (value) => labelMatches(serviceLabels.get(task.serviceId) ?? {}, value)) &&
            matches(filters, '_up-to-date', (value) => (value === 'true') === (task.specVersion === specVersions.get(task.serviceId))))
          .map(dockerTask);
      },
    },
    { method: 'GET', pattern: /^\/tasks\/([^/]+)$/, handle: async ({ params }) => dockerTask(await findTask(params[0] ?? '')) },
    { method: 'GET', pattern: /^\/services\/([^/]+)\/logs$/, handle: async (request) => streamLogs(control, { service: request.params[0] ?? '', task: '' }, request) },
    { method: 'GET', pattern: /^\/tasks\/([^/]+)\/logs$/, handle: async (request) => streamLogs(control, { service: '', task: request.params[0] ?? '' }, request) },
    ...dataObjectRoutes('secrets', 'secret', { list: control.listSecrets, get: control.getSecret, create: control.createSecret, update: control.updateSecret, remove: control.removeSecret }),
    ...dataObjectRoutes('configs', 'config', { list: control.listConfigs, get: control.getConfig, create: control.createConfig, update: control.updateConfig, remove: control.removeConfig }),
    {
      method: 'GET',
      pattern: /^\/networks$/,
      handle: async ({ query }) => {
        const filters = parseFilters(query.get('filters'), ['id', 'name', 'driver', 'label', 'scope', 'type']);
        return (await control.listNetworks())
          .filter((network) =>
            matches(filters, 'id', (value) => network.meta?.id.startsWith(value) === true) &&
            matches(filters, 'name', (value) => network.spec?.name.includes(value) === true) &&
            matches(filters, 'driver', (value) => value === (network.spec?.driver || 'overlay')) &&
            matches(filters, 'label', (value) => labelMatches(network.spec?.labels ?? {}, value)) &&
            matches(filters, 'scope', (value) => value === 'swarm') &&
            matches(filters, 'type', (value) => value === 'custom'))
          .map(dockerNetwork);
      },
    },
    {
      method: 'POST',
      pattern: /^\/networks\/create$/,
      handle: async ({ body }) => ({ Id: (await control.createNetwork(skiffNetworkSpec((await body()) as never))).meta?.id ?? '', Warning: '' }),
    },
    { method: 'GET', pattern: /^\/networks\/([^/]+)$/, handle: async ({ params }) => dockerNetwork(await control.getNetwork(params[0] ?? '')) },
    {
      method: 'DELETE',
      pattern: /^\/networks\/([^/]+)$/,
      handle: async ({ params }) => {
        await control.removeNetwork(params[0] ?? '');
        return undefined;
      },
    },
  ];
}

/** Docker's `since`: Unix seconds, with an optional fraction ("1733450000.5"); 0 or absent = from the start. */
export function sinceMs(text: string | null): number {
  if (text === null || text === '' || text === '0') return 0;
  if (!/^\d+(\.\d+)?$/.test(text)) throw new DockerApiError(400, `invalid since: ${JSON.stringify(text)} (Unix seconds, as the CLI sends them)`);
  return Math.floor(Number(text) * 1000);
}

function flag(query: URLSearchParams, name: string): boolean {
  const value = query.get(name);
  return value === '1' || value === 'true';
}

/**
 * One log line as a frame of Docker's multiplexed stream: an 8-byte header (1 = stdout, 2 =
 * stderr; the payload's length, big-endian) and the line, after its timestamp and the details the
 * CLI reads the task from (`com.docker.swarm.node.id=…,…service.id=…,…task.id=…`) when asked.
 */
export function logFrame(message: LogMessage, serviceId: string, options: { timestamps: boolean; details: boolean }): Buffer {
  const parts: string[] = [];
  if (options.timestamps) parts.push(message.timestamp);
  if (options.details) parts.push(`com.docker.swarm.node.id=${encodeURIComponent(message.nodeId)},com.docker.swarm.service.id=${encodeURIComponent(serviceId)},com.docker.swarm.task.id=${encodeURIComponent(message.taskId)}`);
  const payload = Buffer.concat([Buffer.from(parts.map((part) => `${part} `).join('')), Buffer.from(message.line), Buffer.from('\n')]);
  const header = Buffer.alloc(8);
  header[0] = message.stream === 'stderr' ? 2 : 1;
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
}

/** GET /services/{id}/logs and /tasks/{id}/logs: the manager's TaskLogs stream, framed as Docker's. */
async function streamLogs(control: DockerControl, target: { service: string; task: string }, request: RoutedRequest): Promise<typeof STREAMED> {
  const { query, response } = request;
  const stdout = flag(query, 'stdout');
  const stderr = flag(query, 'stderr');
  if (!stdout && !stderr) throw new DockerApiError(400, 'Bad parameters: you must choose at least one stream');
  const tailText = query.get('tail') ?? 'all';
  if (tailText !== 'all' && !/^\d+$/.test(tailText)) throw new DockerApiError(400, `invalid tail: ${JSON.stringify(tailText)} (a number of lines, or all)`);
  const options: LogsOptions = { follow: flag(query, 'follow'), tail: tailText === 'all' ? -1 : Number(tailText), sinceMs: sinceMs(query.get('since')) };
  const format = { timestamps: flag(query, 'timestamps'), details: flag(query, 'details') };
  // The service id the details carry: the CLI resolves the service's name from it.
  const serviceId = target.service === '' ? '' : (await control.getService(target.service)).meta?.id ?? target.service;
  const taskServiceId = target.task === '' ? '' : ((await control.listTasks()).find((task) => task.meta?.id === target.task)?.serviceId ?? '');
  const aborter = new AbortController();
  response.on('close', () => aborter.abort());
  let started = false;
  const start = (): void => {
    if (started) return;
    started = true;
    response.writeHead(200, { 'Content-Type': 'application/vnd.docker.multiplexed-stream' });
    response.flushHeaders();
  };
  // Headers go out at once, so a follower with nothing to show yet is not left waiting for them.
  if (options.follow) start();
  try {
    await control.taskLogs(target, options, (message) => {
      if ((message.stream === 'stderr' && !stderr) || (message.stream !== 'stderr' && !stdout)) return;
      start();
      response.write(logFrame(message, serviceId || taskServiceId, format));
    }, aborter.signal);
  } catch (error) {
    if (!started) throw error;
    // Mid-stream, the only way left to say something went wrong is to cut the stream.
    response.destroy();
    return STREAMED;
  }
  start();
  response.end();
  return STREAMED;
}

/** The routes of secrets or configs, which Docker shapes alike (and Skiff keeps immutable). */
function dataObjectRoutes<T extends Secret | Config>(
  path: 'secrets' | 'configs',
  kind: 'secret' | 'config',
  calls: {
    list(): Promise<T[]>;
    get(reference: string): Promise<T>;
    create(spec: DataSpec): Promise<T>;
    update(reference: string, version: number, spec: DataSpec): Promise<void>;
    remove(reference: string): Promise<void>;
  },
): Route[] {
  return [
    {
      method: 'GET',
      pattern: new RegExp(`^/${path}$`),
      handle: async ({ query }) => {
        const filters = parseFilters(query.get('filters'), ['id', 'name', 'names', 'label']);
        return (await calls.list())
          .filter((object) =>
            matches(filters, 'id', (value) => object.meta?.id.startsWith(value) === true) &&
            matches(filters, 'name', (value) => object.spec?.name.startsWith(value) === true) &&
            matches(filters, 'names', (value) => object.spec?.name === value) &&
            matches(filters, 'label', (value) => labelMatches(object.spec?.labels ?? {}, value)))
          .map(dockerDataObject);
      },
    },
    {
      method: 'POST',
      pattern: new RegExp(`^/${path}/create$`),
      handle: async ({ body }) => ({ ID: (await calls.create(skiffDataSpec((await body()) as never, kind))).meta?.id ?? '' }),
    },
    { method: 'GET', pattern: new RegExp(`^/${path}/([^/]+)$`), handle: async ({ params }) => dockerDataObject(await calls.get(params[0] ?? '')) },
    {
      method: 'POST',
      pattern: new RegExp(`^/${path}/([^/]+)/update$`),
      // Labels only, as in Swarm: `docker stack deploy` sends every secret and config again on a redeploy.
      handle: async ({ params, query, body }) => {
        await calls.update(params[0] ?? '', version(query), skiffDataSpec((await body()) as never, kind));
        return undefined;
      },
    },
    {
      method: 'DELETE',
      pattern: new RegExp(`^/${path}/([^/]+)$`),
      handle: async ({ params }) => {
        await calls.remove(params[0] ?? '');
        return undefined;
      },
    },
  ];
}

/** Docker's NodeSpec (Role, Availability, Labels) as Skiff's. */
function nodeSpecFromDocker(body: unknown): NonNullable<Node['spec']> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new DockerApiError(400, 'invalid node spec: expected an object');
  const { Role: role, Availability: availability, Labels: labels, ...rest } = body as Record<string, unknown>;
  for (const [key, value] of Object.entries(rest)) {
    if (!isZero(value as never)) throw new DockerApiError(400, `invalid node spec: ${key} is not supported by Skiff's Docker API`);
  }
  const roles: Record<string, NodeRole> = { manager: NodeRole.NODE_ROLE_MANAGER, worker: NodeRole.NODE_ROLE_WORKER };
  const availabilities: Record<string, NodeAvailability> = {
    active: NodeAvailability.NODE_AVAILABILITY_ACTIVE,
    pause: NodeAvailability.NODE_AVAILABILITY_PAUSE,
    drain: NodeAvailability.NODE_AVAILABILITY_DRAIN,
  };
  const desiredRole = roles[String(role)];
  if (desiredRole === undefined) throw new DockerApiError(400, `invalid node spec: Role must be manager or worker, not ${JSON.stringify(role)}`);
  const wantedAvailability = availabilities[String(availability)];
  if (wantedAvailability === undefined) throw new DockerApiError(400, `invalid node spec: Availability must be active, pause or drain, not ${JSON.stringify(availability)}`);
  if (labels !== undefined && labels !== null && (typeof labels !== 'object' || Array.isArray(labels) || !Object.values(labels).every((value) => typeof value === 'string'))) {
    throw new DockerApiError(400, 'invalid node spec: Labels must be an object of strings');
  }
  return { desiredRole, availability: wantedAvailability, labels: { ...((labels ?? {}) as Record<string, string>) } };
}

/** Go's name for this machine's architecture, as Docker reports it. */
function goArch(): string {
  const names: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386' };
  return names[arch()] ?? arch();
}

/** Reads a JSON body of at most MAX_DOCKER_BODY_BYTES; an empty body is undefined. */
function readJsonBody(request: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_DOCKER_BODY_BYTES) {
        chunks.push(chunk);
        return;
      }
      // Refused at once; the rest is not kept, and the connection closes after the answer.
      reject(new DockerApiError(413, `request body over ${MAX_DOCKER_BODY_BYTES} bytes`));
      chunks.length = 0;
    });
    request.on('error', reject);
    request.on('end', () => {
      if (size > MAX_DOCKER_BODY_BYTES) return reject(new DockerApiError(413, `request body over ${MAX_DOCKER_BODY_BYTES} bytes`));
      const text = Buffer.concat(chunks).toString('utf8');
      if (text.trim() === '') return resolve(undefined);
      try {
        resolve(JSON.parse(text));
      } catch (error) {
        reject(new DockerApiError(400, `invalid JSON body: ${error instanceof Error ? error.message : String(error)}`));
      }
    });
  });
}

/** Answers one request by `routes`: the /vX.Y prefix checked and stripped, errors as {"message"}. */
export async function handleDockerRequest(routes: Route[], request: IncomingMessage, response: ServerResponse, log: Logger): Promise<void> {
  const url = new URL(request.url ?? '/', 'http://docker');
  let path = url.pathname;
  const method = request.method ?? 'GET';
  response.setHeader('Api-Version', DOCKER_API_VERSION);
  response.setHeader('Docker-Experimental', 'false');
  response.setHeader('Ostype', 'linux');
  response.setHeader('Server', `Skiff/${SKIFF_VERSION} (linux)`);
  response.setHeader('Swarm', 'active/manager');
  const send = (status: number, body: unknown): void => {
    if (body === undefined || method === 'HEAD') {
      response.writeHead(status);
      response.end();
      return;
    }
    if (typeof body === 'string') {
      response.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' });
      response.end(body);
      return;
    }
    response.writeHead(status, { 'Content-Type': 'application/json' });
    response.end(`${JSON.stringify(body)}\n`);
  };
  try {
    const versioned = /^\/v([^/]+)(\/.*)$/.exec(path);
    if (versioned !== null) {
      const wanted = versionNumber(versioned[1] ?? '');
      if (wanted === undefined) throw new DockerApiError(400, `invalid API version in ${path}`);
      if (wanted > (versionNumber(DOCKER_API_VERSION) ?? 0)) throw new DockerApiError(400, `client version ${versioned[1]} is too new. Maximum supported API version is ${DOCKER_API_VERSION}`);
      if (wanted < (versionNumber(DOCKER_MIN_API_VERSION) ?? 0)) throw new DockerApiError(400, `client version ${versioned[1]} is too old. Minimum supported API version is ${DOCKER_MIN_API_VERSION}`);
      path = versioned[2] ?? '/';
    }
    const candidates = routes.filter((route) => route.pattern.test(path));
    const route = candidates.find((candidate) => candidate.method === method);
    if (route === undefined) {
      if (candidates.length > 0) throw new DockerApiError(405, `${method} is not allowed on ${path}`);
      throw new DockerApiError(404, `page not found: ${method} ${path} is not part of Skiff's Docker API (nodes, services and tasks of the swarm API)`);
    }
    const params = (route.pattern.exec(path) ?? []).slice(1).map((value) => decodeURIComponent(value));
    const result = await route.handle({ params, query: url.searchParams, body: () => readJsonBody(request), response });
    if (result !== STREAMED) send(200, result);
  } catch (error) {
    const { status, message } = httpError(error);
    if (status >= 500) log.warn('docker api request failed', { method, path, error: message });
    if (status === 413) response.setHeader('Connection', 'close');
    if (!response.headersSent) send(status, { message });
    else response.destroy();
  }
}

/** Serves the Docker API on `socketPath` (root only, like the control socket). */
export async function startDockerApi(options: DockerApiOptions): Promise<{ close(): Promise<void> }> {
  checkUnixSocketPath(options.socketPath, 'the Docker API');
  const routes = dockerRoutes(options);
  const server: Server = createServer((request, response) => {
    void handleDockerRequest(routes, request, response, options.log);
  });
  await mkdir(dirname(options.socketPath), { recursive: true });
  await rm(options.socketPath, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.socketPath, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const close = async (): Promise<void> => {
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
    await rm(options.socketPath, { force: true });
  };
  try {
    await chmod(options.socketPath, 0o600);
  } catch (error) {
    await close();
    throw error;
  }
  return { close };
}

/** The Control API over a gRPC client (the manager's own control socket), as DockerControl. */
export function dockerControlOverGrpc(client: InstanceType<typeof ControlClient>, deadlineMs = 30_000): DockerControl {
  const call = <T>(invoke: (metadata: grpc.Metadata, options: grpc.CallOptions, callback: (error: grpc.ServiceError | null, value?: T) => void) => unknown): Promise<T> =>
    new Promise((resolve, reject) => {
      invoke(new grpc.Metadata(), { deadline: Date.now() + deadlineMs }, (error, value) => {
        if (error !== null || value === undefined) reject(error ?? new Error('empty response'));
        else resolve(value);
      });
    });
  const required = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new DockerApiError(500, `the manager's answer carries no ${what}`);
    return value;
  };
  return {
    listNodes: async () => (await call<{ nodes: Node[] }>((metadata, options, callback) => client.listNodes({}, metadata, options, callback))).nodes,
    getNode: async (node) => required((await call<{ node?: Node | undefined }>((metadata, options, callback) => client.getNode({ node }, metadata, options, callback))).node, 'node'),
    updateNode: async (node, version, spec) => {
      await call((metadata, options, callback) => client.updateNode({ node, version, spec }, metadata, options, callback));
    },
    removeNode: async (node, force) => {
      await call((metadata, options, callback) => client.removeNode({ node, force }, metadata, options, callback));
    },
    listServices: async () => call((metadata, options, callback) => client.listServices({}, metadata, options, callback)),
    getService: async (service) => required((await call<{ service?: Service | undefined }>((metadata, options, callback) => client.getService({ service }, metadata, options, callback))).service, 'service'),
    createService: async (spec) =>
      required((await call<{ service?: Service | undefined }>((metadata, options, callback) => client.createService({ spec, noResolveImage: true }, metadata, options, callback))).service, 'service'),
    updateService: async (service, version, spec) => {
      await call((metadata, options, callback) => client.updateService({ service, version, spec, noResolveImage: true }, metadata, options, callback));
    },
    rollbackService: async (service) => {
      await call((metadata, options, callback) => client.rollbackService({ service }, metadata, options, callback));
    },
    removeService: async (service) => {
      await call((metadata, options, callback) => client.removeService({ service }, metadata, options, callback));
    },
    listTasks: async () => (await call<{ tasks: Task[] }>((metadata, options, callback) => client.listTasks({ service: '', node: '' }, metadata, options, callback))).tasks,
    listSecrets: async () => (await call<{ secrets: Secret[] }>((metadata, options, callback) => client.listSecrets({}, metadata, options, callback))).secrets,
    getSecret: async (secret) => required((await call<{ secret?: Secret | undefined }>((metadata, options, callback) => client.getSecret({ secret }, metadata, options, callback))).secret, 'secret'),
    createSecret: async (spec) => required((await call<{ secret?: Secret | undefined }>((metadata, options, callback) => client.createSecret({ spec }, metadata, options, callback))).secret, 'secret'),
    removeSecret: async (secret) => {
      await call((metadata, options, callback) => client.removeSecret({ secret }, metadata, options, callback));
    },
    updateSecret: async (secret, version, spec) => {
      await call((metadata, options, callback) => client.updateSecret({ secret, version, spec }, metadata, options, callback));
    },
    listConfigs: async () => (await call<{ configs: Config[] }>((metadata, options, callback) => client.listConfigs({}, metadata, options, callback))).configs,
    getConfig: async (config) => required((await call<{ config?: Config | undefined }>((metadata, options, callback) => client.getConfig({ config }, metadata, options, callback))).config, 'config'),
    createConfig: async (spec) => required((await call<{ config?: Config | undefined }>((metadata, options, callback) => client.createConfig({ spec }, metadata, options, callback))).config, 'config'),
    removeConfig: async (config) => {
      await call((metadata, options, callback) => client.removeConfig({ config }, metadata, options, callback));
    },
    updateConfig: async (config, version, spec) => {
      await call((metadata, options, callback) => client.updateConfig({ config, version, spec }, metadata, options, callback));
    },
    listNetworks: async () => (await call<{ networks: Network[] }>((metadata, options, callback) => client.listNetworks({}, metadata, options, callback))).networks,
    getNetwork: async (network) => required((await call<{ network?: Network | undefined }>((metadata, options, callback) => client.getNetwork({ network }, metadata, options, callback))).network, 'network'),
    createNetwork: async (spec) => required((await call<{ network?: Network | undefined }>((metadata, options, callback) => client.createNetwork({ spec }, metadata, options, callback))).network, 'network'),
    removeNetwork: async (network) => {
      await call((metadata, options, callback) => client.removeNetwork({ network }, metadata, options, callback));
    },
    taskLogs: (target, options, onMessage, signal) =>
      new Promise((resolve, reject) => {
        // A followed stream has no deadline: it ends when the client goes.
        const stream = client.taskLogs({ ...target, options }, new grpc.Metadata(), options.follow ? {} : { deadline: Date.now() + deadlineMs });
        const cancel = (): void => stream.cancel();
        signal.addEventListener('abort', cancel, { once: true });
        stream.on('data', (message: LogMessage) => onMessage(message));
        stream.on('error', (error: grpc.ServiceError) => {
          signal.removeEventListener('abort', cancel);
          if (error.code === grpc.status.CANCELLED && signal.aborted) resolve();
          else reject(error);
        });
        stream.on('end', () => {
          signal.removeEventListener('abort', cancel);
          resolve();
        });
      }),
  };
}
