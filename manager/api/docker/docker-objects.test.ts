import { describe, expect, it } from 'vitest';
import type { Node, Service, Task } from '../../../proto/skiff/v1/objects.js';
import { HealthState, NodeAvailability, NodeRole, NodeState, TaskState } from '../../../proto/skiff/v1/types.js';
import { ApiError } from '../errors.js';
import { dockerNode, dockerService, dockerServiceSpec, dockerTask, isZero, keepSkiffSettings, skiffServiceSpec } from './docker-objects.js';

/** What `docker service create --detach --name web --replicas 2 --env A=1 --label team=x -p 8080:80 busybox:latest sleep 1000` sends (CLI 28). */
const cliCreateBody = {
  Name: 'web',
  Labels: { team: 'x' },
  TaskTemplate: {
    ContainerSpec: { Image: 'busybox:latest', Args: ['sleep', '1000'], Env: ['A=1'], Init: false, StopGracePeriod: 7_000_000_000, DNSConfig: {}, Isolation: 'default' },
    Resources: { Limits: {}, Reservations: {} },
    RestartPolicy: { Condition: 'any', Delay: 5_000_000_000, MaxAttempts: 0 },
    Placement: { Constraints: ['node.role==manager'] },
    ForceUpdate: 0,
    Runtime: 'container',
  },
  Mode: { Replicated: { Replicas: 2 } },
  UpdateConfig: { Parallelism: 1, FailureAction: 'pause', Monitor: 5_000_000_000, MaxFailureRatio: 0, Order: 'stop-first' },
  EndpointSpec: { Mode: 'vip', Ports: [{ Protocol: 'tcp', TargetPort: 80, PublishedPort: 8080, PublishMode: 'ingress' }] },
};

describe('a Docker service spec as Skiff reads it', () => {
  it('maps the fields the stock CLI sends, durations from nanoseconds to milliseconds', () => {
    const spec = skiffServiceSpec(cliCreateBody);
    expect(spec.name).toBe('web');
    expect(spec.labels).toEqual({ team: 'x' });
    expect(spec.mode).toEqual({ $case: 'replicated', value: { replicas: 2 } });
    expect(spec.taskTemplate?.container).toMatchObject({ image: 'busybox:latest', args: ['sleep', '1000'], env: ['A=1'], stopGracePeriodMs: 7_000 });
    expect(spec.taskTemplate?.restartPolicy).toEqual({ condition: 'any', delayMs: 5_000, maxAttempts: 0, windowMs: 0 });
    expect(spec.taskTemplate?.placement?.constraints).toEqual(['node.role==manager']);
    expect(spec.updateConfig).toEqual({ parallelism: 1, delayMs: 0, failureAction: 'pause', monitorMs: 5_000, maxFailureRatio: 0, order: 'stop-first' });
    expect(spec.endpoint).toEqual({ mode: 'vip', ports: [{ name: '', protocol: 'tcp', targetPort: 80, publishedPort: 8080, publishMode: 'ingress' }] });
  });

  it('reads Replicas as 1 when absent, and a global service', () => {
    expect(skiffServiceSpec({ ...cliCreateBody, Mode: { Replicated: {} } }).mode).toEqual({ $case: 'replicated', value: { replicas: 1 } });
    expect(skiffServiceSpec({ ...cliCreateBody, Mode: { Replicated: { Replicas: 0 } } }).mode).toEqual({ $case: 'replicated', value: { replicas: 0 } });
    expect(skiffServiceSpec({ ...cliCreateBody, Mode: { Global: {} } }).mode).toEqual({ $case: 'global', value: {} });
    expect(() => skiffServiceSpec({ ...cliCreateBody, Mode: { Global: {}, Replicated: { Replicas: 1 } } })).toThrow(/Mode must be Replicated or Global/);
  });

  it('refuses a field Skiff cannot honour when it asks for something, naming its path', () => {
    const withBind = { ...cliCreateBody, TaskTemplate: { ...cliCreateBody.TaskTemplate, ContainerSpec: { ...cliCreateBody.TaskTemplate.ContainerSpec, Mounts: [{ Type: 'bind', Source: '/x', Target: '/y', BindOptions: { Propagation: 'rshared' } }] } } };
    expect(() => skiffServiceSpec(withBind)).toThrow(ApiError);
    expect(() => skiffServiceSpec(withBind)).toThrow('TaskTemplate.ContainerSpec.Mounts[0].BindOptions ({"Propagation":"rshared"}) is not supported');
    expect(() => skiffServiceSpec({ ...cliCreateBody, Mode: { ReplicatedJob: { MaxConcurrent: 1 } } })).toThrow('Mode.ReplicatedJob');
    expect(() => skiffServiceSpec({ ...cliCreateBody, TaskTemplate: { ...cliCreateBody.TaskTemplate, ContainerSpec: { ...cliCreateBody.TaskTemplate.ContainerSpec, Isolation: 'hyperv' } } })).toThrow('TaskTemplate.ContainerSpec.Isolation ("hyperv")');
    expect(() => skiffServiceSpec({ ...cliCreateBody, Shiny: { New: 'field' } })).toThrow('Shiny ({"New":"field"}) is not supported');
  });

  it('accepts unknown fields that ask for nothing (newer CLIs send empty ones)', () => {
    expect(skiffServiceSpec({ ...cliCreateBody, Shiny: { Nested: [], Flag: false, Count: 0, Text: '' } }).name).toBe('web');
    expect(isZero({ a: [{ b: null }], c: '' })).toBe(true);
    expect(isZero({ a: [0, 1] })).toBe(false);
  });

  it('refuses wrong types and malformed values, naming the field', () => {
    expect(() => skiffServiceSpec({ ...cliCreateBody, Name: 7 })).toThrow('invalid service spec: Name must be a string');
    expect(() => skiffServiceSpec({ ...cliCreateBody, Mode: { Replicated: { Replicas: -1 } } })).toThrow('Mode.Replicated.Replicas must be a non-negative integer');
    expect(() => skiffServiceSpec({ ...cliCreateBody, TaskTemplate: { ...cliCreateBody.TaskTemplate, ContainerSpec: { ...cliCreateBody.TaskTemplate.ContainerSpec, Env: 'A=1' } } })).toThrow('TaskTemplate.ContainerSpec.Env must be a list of strings');
    expect(() => skiffServiceSpec({ Name: 'x' })).toThrow('TaskTemplate is required');
    expect(() => skiffServiceSpec([])).toThrow('must be an object');
  });

  it('turns a Skiff spec into the same Docker spec it came from', () => {
    const docker = dockerServiceSpec(skiffServiceSpec(cliCreateBody));
    expect(docker).toMatchObject({
      Name: 'web',
      Labels: { team: 'x' },
      Mode: { Replicated: { Replicas: 2 } },
      TaskTemplate: { ContainerSpec: { Image: 'busybox:latest', Args: ['sleep', '1000'], Env: ['A=1'], StopGracePeriod: 7_000_000_000 }, RestartPolicy: { Condition: 'any', Delay: 5_000_000_000 } },
      UpdateConfig: { Parallelism: 1, Monitor: 5_000_000_000, Order: 'stop-first' },
      EndpointSpec: { Mode: 'vip', Ports: [{ Protocol: 'tcp', TargetPort: 80, PublishedPort: 8080, PublishMode: 'ingress' }] },
    });
    expect(skiffServiceSpec(docker as never)).toEqual(skiffServiceSpec(cliCreateBody));
  });

  it('puts a relative config target under the container\'s root, as Docker does, and keeps an absolute one', () => {
    const withConfigs = (...names: string[]) => ({ ...cliCreateBody, TaskTemplate: { ...cliCreateBody.TaskTemplate, ContainerSpec: { ...cliCreateBody.TaskTemplate.ContainerSpec, Configs: names.map((name, index) => ({ ConfigID: `c${index}`, ConfigName: `shop_${index}`, File: { Name: name, UID: '0', GID: '0', Mode: 292 } })) } } });
    expect(skiffServiceSpec(withConfigs('site', '/etc/app.conf')).taskTemplate?.container?.configs.map((config) => config.target)).toEqual(['/site', '/etc/app.conf']);
  });

  it('reads a network\'s aliases (what docker stack deploy sends) and shows them back on that network only', () => {
    const body = { ...cliCreateBody, TaskTemplate: { ...cliCreateBody.TaskTemplate, Networks: [{ Target: 'shop_front', Aliases: ['web'] }, { Target: 'shop_back' }] } };
    const spec = skiffServiceSpec(body);
    expect(spec.taskTemplate?.networks).toEqual(['shop_front', 'shop_back']);
    expect(spec.taskTemplate?.networkAliases).toEqual([{ network: 'shop_front', aliases: ['web'] }]);
    expect(dockerServiceSpec(spec)).toMatchObject({ TaskTemplate: { Networks: [{ Target: 'shop_front', Aliases: ['web'] }, { Target: 'shop_back' }] } });
    expect(() => skiffServiceSpec({ ...body, TaskTemplate: { ...body.TaskTemplate, Networks: [{ Target: 'x', Aliases: 'web' }] } })).toThrow('TaskTemplate.Networks[0].Aliases must be a list of strings');
  });

  it('keeps the stored spec\'s Skiff-only settings through an update from the Docker API', () => {
    const current = { ...skiffServiceSpec(cliCreateBody), deployStrategy: 'blue-green', bluegreenHoldMs: 30_000, rebalance: 'auto', canaryReplicas: 0 };
    current.taskTemplate!.container!.healthcheck = { test: [], intervalMs: 1_000, timeoutMs: 500, retries: 3, startPeriodMs: 0, http: { port: 80, path: '/health' }, tcpPort: 0 };
    // What `docker service update --image busybox:1.36 web` sends back: the spec as read, the image changed.
    const read = dockerServiceSpec(current) as { TaskTemplate: { ContainerSpec: Record<string, unknown> } };
    read.TaskTemplate.ContainerSpec['Image'] = 'busybox:1.36';
    const updated = keepSkiffSettings(skiffServiceSpec(read as never), current);
    expect(updated).toMatchObject({ deployStrategy: 'blue-green', bluegreenHoldMs: 30_000, rebalance: 'auto' });
    expect(updated.taskTemplate?.container?.image).toBe('busybox:1.36');
    expect(updated.taskTemplate?.container?.healthcheck?.http).toEqual({ port: 80, path: '/health' });
  });
});

describe('Skiff objects in the Docker API\'s shapes', () => {
  const meta = { id: 'n1', version: 42, createdAtMs: Date.UTC(2026, 11, 6), updatedAtMs: Date.UTC(2026, 11, 6, 1) };

  it('shows a node with its role, availability, state and manager status', () => {
    const node: Node = {
      meta,
      spec: { desiredRole: NodeRole.NODE_ROLE_MANAGER, availability: NodeAvailability.NODE_AVAILABILITY_DRAIN, labels: { zone: 'a' } },
      description: { hostname: 'h1', platform: { os: 'linux', architecture: 'x86_64' }, resources: { nanoCpus: 2e9, memoryBytes: 1024, pids: 0 }, engineVersion: 'skiff-runc' },
      status: { state: NodeState.NODE_STATE_READY, message: '', addr: '10.0.0.1' },
      managerStatus: { addr: '10.0.0.1:4242', leader: true, reachability: 'reachable', raftId: 0 },
      role: NodeRole.NODE_ROLE_MANAGER,
      certCaDigest: '',
    };
    expect(dockerNode(node)).toEqual({
      ID: 'n1',
      Version: { Index: 42 },
      CreatedAt: '2026-12-06T00:00:00.000Z',
      UpdatedAt: '2026-12-06T01:00:00.000Z',
      Spec: { Labels: { zone: 'a' }, Role: 'manager', Availability: 'drain' },
      Description: { Hostname: 'h1', Platform: { Architecture: 'x86_64', OS: 'linux' }, Resources: { NanoCPUs: 2e9, MemoryBytes: 1024 }, Engine: { EngineVersion: 'skiff-runc' } },
      Status: { State: 'ready', Message: '', Addr: '10.0.0.1' },
      ManagerStatus: { Leader: true, Reachability: 'reachable', Addr: '10.0.0.1:4242' },
    });
    expect(dockerNode({ ...node, role: NodeRole.NODE_ROLE_WORKER, managerStatus: undefined })).not.toHaveProperty('ManagerStatus');
  });

  it('shows a service with its replica counts and update state', () => {
    const service: Service = {
      meta,
      spec: skiffServiceSpec(cliCreateBody),
      previousSpec: undefined,
      updateStatus: { state: 'updating', message: 'update in progress', startedAtMs: meta.createdAtMs, completedAtMs: 0, switchedAtMs: 0 },
      endpoint: undefined,
      activeColor: '',
      specVersion: 2,
      rebalanceRequestedAtMs: 0,
    };
    const docker = dockerService(service, { running: 1, desired: 2 });
    expect(docker).toMatchObject({ ID: 'n1', Version: { Index: 42 }, Spec: { Name: 'web' }, ServiceStatus: { RunningTasks: 1, DesiredTasks: 2, CompletedTasks: 0 }, UpdateStatus: { State: 'updating', Message: 'update in progress' } });
    expect(dockerService(service)).not.toHaveProperty('ServiceStatus');
  });

  it('shows a task with Docker\'s state names, its node and its container', () => {
    const task: Task = {
      meta: { ...meta, id: 't1' },
      serviceId: 's1',
      serviceName: 'web',
      slot: 2,
      nodeId: 'n1',
      spec: skiffServiceSpec(cliCreateBody).taskTemplate,
      specVersion: 1,
      imageDigest: '',
      desiredState: TaskState.TASK_STATE_RUNNING,
      status: { state: TaskState.TASK_STATE_FAILED, message: 'exited', err: 'exit code 3', timestampMs: meta.updatedAtMs, exitCode: 3, containerId: 'c1', pid: 0, health: HealthState.HEALTH_STATE_UNHEALTHY },
      networks: [],
      color: '',
      replacesTaskId: '',
    };
    expect(dockerTask(task)).toMatchObject({
      ID: 't1',
      ServiceID: 's1',
      Slot: 2,
      NodeID: 'n1',
      DesiredState: 'running',
      Status: { State: 'failed', Message: 'exited', Err: 'exit code 3', Timestamp: '2026-12-06T01:00:00.000Z', ContainerStatus: { ContainerID: 'c1', ExitCode: 3 }, Health: 'unhealthy' },
    });
  });
});
