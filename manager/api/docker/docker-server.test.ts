import { mkdtemp, rm, stat } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../../common/log.js';
import type { LogMessage, LogsOptions } from '../../../proto/skiff/v1/attach.js';
import type { Config, Network, Node, Secret, Service, Task } from '../../../proto/skiff/v1/objects.js';
import type { ConfigSpec, NetworkSpec, SecretSpec, ServiceSpec } from '../../../proto/skiff/v1/specs.js';
import { NodeRole, TaskState } from '../../../proto/skiff/v1/types.js';
import { type DockerControl, MAX_DOCKER_BODY_BYTES, logFrame, parseFilters, sinceMs, startDockerApi } from './docker-server.js';

/** A fake Control API: records what the adapter asked for and answers from fixed objects. */
class FakeDockerControl implements DockerControl {
  calls: Array<[string, ...unknown[]]> = [];
  failWith: grpc.ServiceError | undefined;
  nodes: Node[] = [];
  services: Service[] = [];
  tasks: Task[] = [];

  private answer<T>(name: string, value: T, ...args: unknown[]): Promise<T> {
    this.calls.push([name, ...args]);
    return this.failWith === undefined ? Promise.resolve(value) : Promise.reject(this.failWith);
  }

  listNodes = (): Promise<Node[]> => this.answer('listNodes', this.nodes);
  getNode = (node: string): Promise<Node> => this.answer('getNode', this.nodes[0]!, node);
  updateNode = (node: string, version: number, spec: NonNullable<Node['spec']>): Promise<void> => this.answer('updateNode', undefined, node, version, spec);
  removeNode = (node: string, force: boolean): Promise<void> => this.answer('removeNode', undefined, node, force);
  listServices = (): Promise<{ services: Service[]; counts: [] }> => this.answer('listServices', { services: this.services, counts: [] });
  getService = (service: string): Promise<Service> => this.answer('getService', this.services[0]!, service);
  createService = (spec: ServiceSpec): Promise<Service> => this.answer('createService', { ...this.services[0]!, meta: { id: 'new-id', version: 1, createdAtMs: 0, updatedAtMs: 0 } }, spec);
  updateService = (service: string, version: number, spec: ServiceSpec): Promise<void> => this.answer('updateService', undefined, service, version, spec);
  rollbackService = (service: string): Promise<void> => this.answer('rollbackService', undefined, service);
  removeService = (service: string): Promise<void> => this.answer('removeService', undefined, service);
  listTasks = (): Promise<Task[]> => this.answer('listTasks', this.tasks);
  secrets: Secret[] = [];
  networks: Network[] = [];
  listSecrets = (): Promise<Secret[]> => this.answer('listSecrets', this.secrets);
  getSecret = (secret: string): Promise<Secret> => this.answer('getSecret', this.secrets[0]!, secret);
  createSecret = (spec: SecretSpec): Promise<Secret> => this.answer('createSecret', { meta: { id: 'sec-id', version: 1, createdAtMs: 0, updatedAtMs: 0 }, spec: { ...spec, data: new Uint8Array() } }, spec);
  removeSecret = (secret: string): Promise<void> => this.answer('removeSecret', undefined, secret);
  updateSecret = (secret: string, version: number, spec: SecretSpec): Promise<void> => this.answer('updateSecret', undefined, secret, version, spec);
  listConfigs = (): Promise<Config[]> => this.answer('listConfigs', []);
  getConfig = (config: string): Promise<Config> => this.answer('getConfig', this.secrets[0]!, config);
  createConfig = (spec: ConfigSpec): Promise<Config> => this.answer('createConfig', { meta: { id: 'cfg-id', version: 1, createdAtMs: 0, updatedAtMs: 0 }, spec }, spec);
  removeConfig = (config: string): Promise<void> => this.answer('removeConfig', undefined, config);
  updateConfig = (config: string, version: number, spec: ConfigSpec): Promise<void> => this.answer('updateConfig', undefined, config, version, spec);
  listNetworks = (): Promise<Network[]> => this.answer('listNetworks', this.networks);
  getNetwork = (network: string): Promise<Network> => this.answer('getNetwork', this.networks[0]!, network);
  createNetwork = (spec: NetworkSpec): Promise<Network> => this.answer('createNetwork', { meta: { id: 'net-id', version: 1, createdAtMs: 0, updatedAtMs: 0 }, spec, allocation: undefined }, spec);
  removeNetwork = (network: string): Promise<void> => this.answer('removeNetwork', undefined, network);
  logLines: LogMessage[] = [];
  taskLogs = async (target: { service: string; task: string }, options: LogsOptions, onMessage: (message: LogMessage) => void): Promise<void> => {
    await this.answer('taskLogs', undefined, target, options);
    for (const line of this.logLines) onMessage(line);
  };
}

/** Splits a Docker multiplexed stream into [stream, text] frames. */
function frames(body: Buffer): Array<[number, string]> {
  const out: Array<[number, string]> = [];
  for (let offset = 0; offset < body.length;) {
    const size = body.readUInt32BE(offset + 4);
    out.push([body[offset] ?? 0, body.subarray(offset + 8, offset + 8 + size).toString()]);
    offset += 8 + size;
  }
  return out;
}

const serviceBody = { Name: 'web', TaskTemplate: { ContainerSpec: { Image: 'busybox:latest' } }, Mode: { Replicated: { Replicas: 2 } } };

function service(id: string, name: string): Service {
  return {
    meta: { id, version: 5, createdAtMs: 0, updatedAtMs: 0 },
    spec: { name, labels: { team: 'x' }, taskTemplate: { container: undefined, resources: undefined, restartPolicy: undefined, placement: undefined, networks: [], forceUpdate: 0, networkAliases: [] }, mode: { $case: 'replicated', value: { replicas: 1 } }, updateConfig: undefined, rollbackConfig: undefined, endpoint: undefined, deployStrategy: 'blue-green', rebalance: '', bluegreenHoldMs: 0, canaryReplicas: 0 },
    previousSpec: undefined,
    updateStatus: undefined,
    endpoint: undefined,
    activeColor: '',
    specVersion: 1,
    rebalanceRequestedAtMs: 0,
  };
}

function task(id: string, serviceId: string, desiredState: TaskState): Task {
  return { meta: { id, version: 1, createdAtMs: 0, updatedAtMs: 0 }, serviceId, serviceName: 'web', slot: 1, nodeId: 'n1', spec: undefined, specVersion: 1, imageDigest: '', desiredState, status: undefined, networks: [], color: '', replacesTaskId: '' };
}

let dir = '';
let socketPath = '';
let api: { close(): Promise<void> } | undefined;
const control = new FakeDockerControl();

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function call(method: string, path: string, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ socketPath, method, path, headers: body === undefined ? {} : { 'Content-Type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

function callRaw(path: string): Promise<{ status: number; contentType: string | undefined; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ socketPath, method: 'GET', path }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType: res.headers['content-type'], body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

function message(answer: Answer): string {
  return (JSON.parse(answer.body) as { message: string }).message;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'skiff-docker-api-'));
  socketPath = join(dir, 'docker.sock');
  api = await startDockerApi({ socketPath, control, selfNodeId: 'n1', clusterId: 'c1', log: createLogger({ level: 'error' }) });
});

afterAll(async () => {
  await api?.close();
  await rm(dir, { recursive: true, force: true });
});

beforeEach(() => {
  control.calls = [];
  control.failWith = undefined;
  control.nodes = [{ meta: { id: 'n1', version: 3, createdAtMs: 0, updatedAtMs: 0 }, spec: undefined, description: undefined, status: undefined, managerStatus: { addr: '127.0.0.1:4242', leader: true, reachability: 'reachable', raftId: 0 }, role: NodeRole.NODE_ROLE_MANAGER, certCaDigest: '' }];
  control.services = [service('s1', 'web'), service('s2', 'db')];
  control.secrets = [{ meta: { id: 'sec1', version: 2, createdAtMs: 0, updatedAtMs: 0 }, spec: { name: 'db-password', labels: { app: 'db' }, data: new Uint8Array() } }];
  control.networks = [{ meta: { id: 'net1', version: 2, createdAtMs: 0, updatedAtMs: 0 }, spec: { name: 'backend', labels: {}, driver: 'overlay', subnet: '', internal: true, attachable: false }, allocation: { subnet: '10.0.1.0/24', gateway: '10.0.1.1', vni: 4097 } }];
  control.logLines = [
    { taskId: 't1', taskName: 'web.1', nodeId: 'n1', timestamp: '2026-12-06T03:00:00.000000001Z', stream: 'stdout', line: Buffer.from('hello') },
    { taskId: 't1', taskName: 'web.1', nodeId: 'n1', timestamp: '2026-12-06T03:00:01.000000001Z', stream: 'stderr', line: Buffer.from('oops') },
  ];
  control.tasks = [task('t1', 's1', TaskState.TASK_STATE_RUNNING), task('t2', 's1', TaskState.TASK_STATE_SHUTDOWN), task('t3', 's2', TaskState.TASK_STATE_RUNNING)];
});

describe('the Docker API socket', () => {
  it('is root-only', async () => {
    expect((await stat(socketPath)).mode & 0o777).toBe(0o600);
  });

  it('fails to start, saying why, on a path no unix socket can have', async () => {
    const tooLong = join(dir, 'x'.repeat(120), 'docker.sock');
    await expect(startDockerApi({ socketPath: tooLong, control, selfNodeId: 'n1', clusterId: 'c1', log: createLogger({ level: 'error' }) })).rejects.toThrow('a unix socket path is at most 107 bytes');
  });

  it('answers the ping with its API version, for GET and HEAD', async () => {
    const ping = await call('GET', '/_ping');
    expect(ping).toMatchObject({ status: 200, body: 'OK' });
    expect(ping.headers['api-version']).toBe('1.43');
    expect(ping.headers['swarm']).toBe('active/manager');
    expect((await call('HEAD', '/_ping')).status).toBe(200);
  });

  it('takes a versioned path up to its own version, and refuses newer and malformed ones', async () => {
    expect(JSON.parse((await call('GET', '/v1.43/version')).body)).toMatchObject({ ApiVersion: '1.43', MinAPIVersion: '1.24', Os: 'linux' });
    expect(message(await call('GET', '/v1.49/version'))).toBe('client version 1.49 is too new. Maximum supported API version is 1.43');
    expect(message(await call('GET', '/v1.12/version'))).toMatch(/too old/);
    expect((await call('GET', '/vx/version')).status).toBe(400);
  });

  it('says which path it does not serve, and which method is not allowed', async () => {
    const missing = await call('GET', '/v1.43/containers/json');
    expect(missing.status).toBe(404);
    expect(message(missing)).toContain('GET /containers/json is not part of Skiff\'s Docker API');
    const method = await call('PUT', '/v1.43/services/create');
    expect(method.status).toBe(405);
  });

  it('reports this node and the cluster in info', async () => {
    const info = JSON.parse((await call('GET', '/v1.43/info')).body) as { Swarm: Record<string, unknown> };
    expect(info.Swarm).toMatchObject({ NodeID: 'n1', LocalNodeState: 'active', ControlAvailable: true, Managers: 1, Nodes: 1, Cluster: { ID: 'c1' } });
  });
});

describe('services through the Docker API', () => {
  it('creates a service from a Docker spec, leaving the image as the client resolved it', async () => {
    const answer = await call('POST', '/v1.43/services/create', JSON.stringify(serviceBody));
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toEqual({ ID: 'new-id', Warnings: [] });
    const created = control.calls.find(([name]) => name === 'createService')?.[1] as ServiceSpec;
    expect(created).toMatchObject({ name: 'web', mode: { $case: 'replicated', value: { replicas: 2 } } });
  });

  it('refuses a spec it cannot honour before calling the manager, naming the field', async () => {
    const answer = await call('POST', '/v1.43/services/create', JSON.stringify({ ...serviceBody, Mode: { GlobalJob: { Max: 1 } } }));
    expect(answer.status).toBe(400);
    expect(message(answer)).toContain('Mode.GlobalJob');
    expect(control.calls.map(([name]) => name)).not.toContain('createService');
    const broken = await call('POST', '/v1.43/services/create', '{"Name": ');
    expect(broken.status).toBe(400);
    expect(message(broken)).toMatch(/^invalid JSON body/);
  });

  it('refuses a body over the limit', async () => {
    const answer = await call('POST', '/v1.43/services/create', JSON.stringify({ ...serviceBody, Labels: { big: 'x'.repeat(MAX_DOCKER_BODY_BYTES) } }));
    expect(answer.status).toBe(413);
    expect(control.calls.map(([name]) => name)).not.toContain('createService');
  });

  it('updates with the version the client read, keeping the stored Skiff-only settings', async () => {
    const answer = await call('POST', '/v1.43/services/web/update?version=5', JSON.stringify(serviceBody));
    expect(answer.status).toBe(200);
    const update = control.calls.find(([name]) => name === 'updateService');
    expect(update?.slice(1, 3)).toEqual(['s1', 5]);
    expect((update?.[3] as ServiceSpec).deployStrategy).toBe('blue-green');
    expect((await call('POST', '/v1.43/services/web/update', JSON.stringify(serviceBody))).status).toBe(400);
  });

  it('rolls back on rollback=previous, and refuses any other rollback value', async () => {
    expect((await call('POST', '/v1.43/services/web/update?version=5&rollback=previous', '{}')).status).toBe(200);
    expect(control.calls).toContainEqual(['rollbackService', 'web']);
    expect((await call('POST', '/v1.43/services/web/update?version=5&rollback=first', '{}')).status).toBe(400);
  });

  it('lists services filtered by name prefix and label, with counts when asked', async () => {
    const all = JSON.parse((await call('GET', '/v1.43/services?status=true')).body) as Array<{ Spec: { Name: string } }>;
    expect(all.map((item) => item.Spec.Name)).toEqual(['web', 'db']);
    const filtered = JSON.parse((await call('GET', `/v1.43/services?filters=${encodeURIComponent('{"name":{"we":true}}')}`)).body) as Array<{ Spec: { Name: string } }>;
    expect(filtered.map((item) => item.Spec.Name)).toEqual(['web']);
    const labelled = JSON.parse((await call('GET', `/v1.43/services?filters=${encodeURIComponent('{"label":["team=y"]}')}`)).body) as unknown[];
    expect(labelled).toEqual([]);
  });

  it('passes the manager\'s errors on with the matching HTTP status and its words', async () => {
    control.failWith = Object.assign(new Error('5 NOT_FOUND: cannot find service "nope": no such service'), { code: grpc.status.NOT_FOUND, details: 'cannot find service "nope": no such service', metadata: new grpc.Metadata() });
    const answer = await call('GET', '/v1.43/services/nope');
    expect(answer.status).toBe(404);
    expect(message(answer)).toBe('cannot find service "nope": no such service');
    control.failWith = Object.assign(new Error('14 UNAVAILABLE'), { code: grpc.status.UNAVAILABLE, details: 'cannot write: no quorum', metadata: new grpc.Metadata() });
    expect((await call('DELETE', '/v1.43/services/web')).status).toBe(503);
  });
});

describe('tasks and nodes through the Docker API', () => {
  it('lists the tasks of a service, by desired state', async () => {
    const filters = encodeURIComponent(JSON.stringify({ service: { s1: true }, 'desired-state': { running: true } }));
    const tasks = JSON.parse((await call('GET', `/v1.43/tasks?filters=${filters}`)).body) as Array<{ ID: string; DesiredState: string }>;
    expect(tasks).toEqual([expect.objectContaining({ ID: 't1', DesiredState: 'running' })]);
    // The CLI's own filter while it waits for convergence: tasks of the current spec only.
    control.services[0]!.specVersion = 2;
    control.tasks[0]!.specVersion = 2;
    const upToDate = JSON.parse((await call('GET', `/v1.43/tasks?filters=${encodeURIComponent(JSON.stringify({ service: { s1: true }, '_up-to-date': { true: true } }))}`)).body) as Array<{ ID: string }>;
    expect(upToDate.map((item) => item.ID)).toEqual(['t1']);
    expect((await call('GET', '/v1.43/tasks/t3')).status).toBe(200);
    expect((await call('GET', '/v1.43/tasks/zz')).status).toBe(404);
  });

  it('filters tasks by their service\'s labels, as Swarm does for docker stack ps', async () => {
    control.services[1]!.spec!.labels = { 'com.docker.stack.namespace': 'shop' };
    const byLabel = async (label: string): Promise<string[]> =>
      (JSON.parse((await call('GET', `/v1.43/tasks?filters=${encodeURIComponent(JSON.stringify({ label: { [label]: true } }))}`)).body) as Array<{ ID: string }>).map((item) => item.ID);
    expect(await byLabel('com.docker.stack.namespace=shop')).toEqual(['t3']);
    expect(await byLabel('com.docker.stack.namespace')).toEqual(['t3']);
    expect(await byLabel('team=x')).toEqual(['t1', 't2']);
    expect(await byLabel('com.docker.stack.namespace=other')).toEqual([]);
  });

  it('refuses an unknown or malformed filter', async () => {
    expect(message(await call('GET', `/v1.43/tasks?filters=${encodeURIComponent('{"colour":["blue"]}')}`))).toMatch(/^invalid filter 'colour'/);
    expect(() => parseFilters('{"name": 3}', ['name'])).toThrow(/expected/);
    expect(() => parseFilters('not json', ['name'])).toThrow(/not JSON/);
    expect(parseFilters('{"name":{"a":true,"b":false}}', ['name'])).toEqual(new Map([['name', ['a']]]));
  });

  it('updates a node\'s availability and role, and refuses what Skiff has no place for', async () => {
    expect((await call('POST', '/v1.43/nodes/n1/update?version=3', JSON.stringify({ Role: 'manager', Availability: 'drain', Labels: { zone: 'a' } }))).status).toBe(200);
    expect(control.calls).toContainEqual(['updateNode', 'n1', 3, { desiredRole: NodeRole.NODE_ROLE_MANAGER, availability: 2, labels: { zone: 'a' } }]);
    // `self` is this manager's own node.
    expect((await call('POST', '/v1.43/nodes/self/update?version=4', JSON.stringify({ Role: 'worker', Availability: 'active' }))).status).toBe(200);
    expect(control.calls).toContainEqual(['updateNode', 'n1', 4, { desiredRole: NodeRole.NODE_ROLE_WORKER, availability: 0, labels: {} }]);
    expect(message(await call('POST', '/v1.43/nodes/n1/update?version=3', JSON.stringify({ Role: 'boss', Availability: 'active' })))).toMatch(/Role must be manager or worker/);
    expect(message(await call('POST', '/v1.43/nodes/n1/update?version=3', JSON.stringify({ Role: 'worker', Availability: 'active', Name: 'x' })))).toMatch(/Name is not supported/);
  });
});

describe('secrets, configs and networks through the Docker API', () => {
  it('creates a secret from base64 data, and never shows data back', async () => {
    const answer = await call('POST', '/v1.43/secrets/create', JSON.stringify({ Name: 'token', Labels: { a: 'b' }, Data: Buffer.from('s3cret').toString('base64') }));
    expect(JSON.parse(answer.body)).toEqual({ ID: 'sec-id' });
    const spec = control.calls.find(([name]) => name === 'createSecret')?.[1] as SecretSpec;
    expect(Buffer.from(spec.data).toString()).toBe('s3cret');
    expect(spec).toMatchObject({ name: 'token', labels: { a: 'b' } });
    const listed = JSON.parse((await call('GET', `/v1.43/secrets?filters=${encodeURIComponent('{"names":{"db-password":true}}')}`)).body) as unknown[];
    expect(listed).toEqual([{ ID: 'sec1', Version: { Index: 2 }, CreatedAt: '1970-01-01T00:00:00.000Z', UpdatedAt: '1970-01-01T00:00:00.000Z', Spec: { Name: 'db-password', Labels: { app: 'db' } } }]);
  });

  it('refuses data that is not base64, a driver, and an update without a version', async () => {
    expect(message(await call('POST', '/v1.43/secrets/create', JSON.stringify({ Name: 'x', Data: 'not base64!' })))).toContain('Data must be base64');
    expect(message(await call('POST', '/v1.43/configs/create', JSON.stringify({ Name: 'x', Data: '', Driver: { Name: 'vault' } })))).toContain('Driver');
    expect(message(await call('POST', '/v1.43/secrets/sec1/update', '{"Name":"x"}'))).toContain('invalid version');
    expect(control.calls.map(([name]) => name)).not.toContain('createSecret');
    expect(control.calls.map(([name]) => name)).not.toContain('updateSecret');
  });

  it('passes a secret or config update (labels; the data again or none) to Skiff with its version', async () => {
    const spec = { Name: 'token', Labels: { 'com.docker.stack.namespace': 'shop' }, Data: Buffer.from('s3cret').toString('base64') };
    expect((await call('POST', '/v1.43/secrets/sec1/update?version=7', JSON.stringify(spec))).status).toBe(200);
    const [, secret, version, sent] = control.calls.find(([name]) => name === 'updateSecret') as [string, string, number, SecretSpec];
    expect([secret, version, sent.name, sent.labels, Buffer.from(sent.data).toString()]).toEqual(['sec1', 7, 'token', { 'com.docker.stack.namespace': 'shop' }, 's3cret']);
    expect((await call('POST', '/v1.43/configs/cfg1/update?version=3', JSON.stringify({ Name: 'app', Labels: {} }))).status).toBe(200);
    expect(control.calls.find(([name]) => name === 'updateConfig')).toEqual(['updateConfig', 'cfg1', 3, { name: 'app', labels: {}, data: new Uint8Array(0) }]);
  });

  it('creates an overlay network with its subnet, and refuses what Skiff does not do', async () => {
    const body = { Name: 'backend', Driver: 'overlay', Internal: true, CheckDuplicate: true, Scope: 'swarm', IPAM: { Driver: 'default', Config: [{ Subnet: '10.9.0.0/24' }] } };
    expect(JSON.parse((await call('POST', '/v1.43/networks/create', JSON.stringify(body))).body)).toEqual({ Id: 'net-id', Warning: '' });
    expect(control.calls.find(([name]) => name === 'createNetwork')?.[1]).toEqual({ name: 'backend', labels: {}, driver: 'overlay', subnet: '10.9.0.0/24', internal: true, attachable: false });
    expect(message(await call('POST', '/v1.43/networks/create', JSON.stringify({ ...body, IPAM: { Config: [{ Subnet: '10.9.0.0/24', Gateway: '10.9.0.9' }] } })))).toContain('IPAM.Config[0].Gateway');
    expect(message(await call('POST', '/v1.43/networks/create', JSON.stringify({ ...body, EnableIPv6: true })))).toContain('EnableIPv6');
  });

  it('shows a network with its allocated subnet and VXLAN id', async () => {
    const network = JSON.parse((await call('GET', '/v1.43/networks/backend')).body) as Record<string, unknown>;
    expect(network).toMatchObject({ Name: 'backend', Id: 'net1', Scope: 'swarm', Driver: 'overlay', Internal: true, IPAM: { Config: [{ Subnet: '10.0.1.0/24', Gateway: '10.0.1.1' }] }, Options: { 'com.docker.network.driver.overlay.vxlanid_list': '4097' } });
    expect((await call('DELETE', '/v1.43/networks/backend')).status).toBe(200);
    expect(control.calls).toContainEqual(['removeNetwork', 'backend']);
  });
});

describe('logs through the Docker API', () => {
  it('streams a service\'s lines as Docker\'s multiplexed frames, with the details the CLI reads the task from', async () => {
    const answer = await callRaw('/v1.43/services/web/logs?stdout=1&stderr=1&details=1&timestamps=1&tail=10&since=1733450000.5');
    expect(answer.status).toBe(200);
    expect(answer.contentType).toBe('application/vnd.docker.multiplexed-stream');
    expect(frames(answer.body)).toEqual([
      [1, '2026-12-06T03:00:00.000000001Z com.docker.swarm.node.id=n1,com.docker.swarm.service.id=s1,com.docker.swarm.task.id=t1 hello\n'],
      [2, '2026-12-06T03:00:01.000000001Z com.docker.swarm.node.id=n1,com.docker.swarm.service.id=s1,com.docker.swarm.task.id=t1 oops\n'],
    ]);
    expect(control.calls).toContainEqual(['taskLogs', { service: 'web', task: '' }, { follow: false, tail: 10, sinceMs: 1_733_450_000_500 }]);
  });

  it('keeps to the streams asked for, and needs at least one', async () => {
    expect(frames((await callRaw('/v1.43/tasks/t1/logs?stderr=1')).body)).toEqual([[2, 'oops\n']]);
    const none = await call('GET', '/v1.43/services/web/logs');
    expect(none.status).toBe(400);
    expect(message(none)).toContain('at least one stream');
    expect((await call('GET', '/v1.43/services/web/logs?stdout=1&tail=some')).status).toBe(400);
  });

  it('reads Docker\'s since as Unix seconds', () => {
    expect(sinceMs(null)).toBe(0);
    expect(sinceMs('1733450000')).toBe(1_733_450_000_000);
    expect(sinceMs('1733450000.250000000')).toBe(1_733_450_000_250);
    expect(() => sinceMs('yesterday')).toThrow('invalid since');
  });

  it('frames a line without details or timestamps as the bare line', () => {
    const frame = logFrame({ taskId: 't', taskName: 'x.1', nodeId: 'n', timestamp: 'T', stream: 'stdout', line: Buffer.from('a b') }, 's', { timestamps: false, details: false });
    expect([...frame.subarray(0, 8)]).toEqual([1, 0, 0, 0, 0, 0, 0, 4]);
    expect(frame.subarray(8).toString()).toBe('a b\n');
  });
});
