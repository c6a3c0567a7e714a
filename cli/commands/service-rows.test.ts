import { describe, expect, it } from 'vitest';
import type { Node, Service, Task } from '../../proto/skiff/v1/objects.js';
import { HealthState, NodeRole, TaskState } from '../../proto/skiff/v1/types.js';
import { serviceRow, sortTasks, stateWithHealth, taskRow } from './service-rows.js';

function service(mode: 'replicated' | 'global'): Service {
  return {
    meta: { id: 'svc123', version: 4, createdAtMs: 0, updatedAtMs: 0 },
    spec: {
      name: 'web',
      labels: {},
      taskTemplate: {
        container: { image: 'demo/web:v1', command: [], args: [], env: [], user: '', workdir: '', hostname: '', mounts: [], healthcheck: undefined, readOnly: false, capAdd: [], capDrop: [], sysctls: {}, ulimits: [], init: false, stopSignal: '', stopGracePeriodMs: 0, labels: {}, secrets: [], configs: [] },
        resources: undefined,
        restartPolicy: undefined,
        placement: undefined,
        networks: [],
        forceUpdate: 0,
        networkAliases: [],
      },
      mode: mode === 'replicated' ? { $case: 'replicated', value: { replicas: 3 } } : { $case: 'global', value: {} },
      updateConfig: undefined,
      rollbackConfig: undefined,
      endpoint: undefined,
      deployStrategy: '',
      rebalance: '',
      bluegreenHoldMs: 0,
      canaryReplicas: 0,
    },
    previousSpec: undefined,
    updateStatus: undefined,
    endpoint: undefined,
    activeColor: '',
    specVersion: 1,
    rebalanceRequestedAtMs: 0,
  };
}

function task(id: string, slot: number, state: TaskState, extra: Partial<Task> = {}): Task {
  return {
    meta: { id, version: 1, createdAtMs: 100, updatedAtMs: 100 },
    serviceId: 'svc123',
    serviceName: 'web',
    slot,
    nodeId: 'n1',
    spec: service('replicated').spec!.taskTemplate,
    specVersion: 1,
    imageDigest: '',
    desiredState: TaskState.TASK_STATE_RUNNING,
    status: { state, message: '', err: '', timestampMs: 0, exitCode: 0, containerId: id, pid: 321, health: HealthState.HEALTH_STATE_NONE },
    networks: [{ network: 'bridge', addresses: ['198.18.129.2'] }],
    color: '',
    replacesTaskId: '',
    ...extra,
  };
}

const node: Node = {
  meta: { id: 'n1', version: 1, createdAtMs: 0, updatedAtMs: 0 },
  spec: undefined,
  description: { hostname: 'h2', platform: undefined, resources: undefined, engineVersion: '' },
  status: undefined,
  managerStatus: undefined,
  role: NodeRole.NODE_ROLE_WORKER,
  certCaDigest: '',
};

describe('service rows', () => {
  it('serviceRow has exactly the public service ls fields', () => {
    const row = serviceRow(service('replicated'), { serviceId: 'svc123', running: 2, desired: 3, tasks: 3 });
    expect(Object.keys(row).sort()).toEqual(['id', 'image', 'mode', 'name', 'replicas', 'updateStatus', 'updateMessage'].sort());
    expect(row).toEqual({ id: 'svc123', name: 'web', mode: 'replicated', replicas: '2/3', image: 'demo/web:v1', updateStatus: '', updateMessage: '' });
    const paused = serviceRow({ ...service('replicated'), updateStatus: { state: 'paused', message: 'update paused: task t failed', startedAtMs: 1, completedAtMs: 0, switchedAtMs: 0 } }, undefined);
    expect(paused).toMatchObject({ updateStatus: 'paused', updateMessage: 'update paused: task t failed' });
  });

  it('serviceRow shows 0/0 without counts and names the global mode', () => {
    expect(serviceRow(service('global'), undefined)).toMatchObject({ mode: 'global', replicas: '0/0' });
  });

  it('taskRow has exactly the public service ps fields', () => {
    const row = taskRow(task('t1', 2, TaskState.TASK_STATE_RUNNING), new Map([['n1', node]]));
    expect(Object.keys(row).sort()).toEqual(
      ['id', 'name', 'slot', 'nodeId', 'hostname', 'desiredState', 'state', 'error', 'exitCode', 'containerId', 'pid', 'image', 'addresses', 'health'].sort(),
    );
    expect(row).toEqual({
      id: 't1',
      name: 'web.2',
      slot: 2,
      nodeId: 'n1',
      hostname: 'h2',
      desiredState: 'running',
      state: 'running',
      error: '',
      exitCode: 0,
      containerId: 't1',
      pid: 321,
      image: 'demo/web:v1',
      addresses: ['198.18.129.2'],
      health: '',
    });
  });

  it('taskRow names the health, and CURRENT STATE shows it as docker ps does', () => {
    const withHealth = (state: TaskState, health: HealthState) => {
      const item = task('t1', 1, state);
      item.status = { ...item.status!, health };
      return taskRow(item, new Map());
    };
    const rows = [
      withHealth(TaskState.TASK_STATE_STARTING, HealthState.HEALTH_STATE_STARTING),
      withHealth(TaskState.TASK_STATE_RUNNING, HealthState.HEALTH_STATE_HEALTHY),
      withHealth(TaskState.TASK_STATE_FAILED, HealthState.HEALTH_STATE_UNHEALTHY),
      withHealth(TaskState.TASK_STATE_RUNNING, HealthState.HEALTH_STATE_NONE),
    ];
    expect(rows.map((row) => row.health)).toEqual(['starting', 'healthy', 'unhealthy', '']);
    expect(rows.map(stateWithHealth)).toEqual(['starting (health: starting)', 'running (healthy)', 'failed (unhealthy)', 'running']);
  });

  it('taskRow shows the error and exit code of a failed task and no pid', () => {
    const failed = task('t1', 1, TaskState.TASK_STATE_FAILED, { desiredState: TaskState.TASK_STATE_SHUTDOWN });
    failed.status = { ...failed.status!, err: 'task: non-zero exit (137)', exitCode: 137 };
    expect(taskRow(failed, new Map())).toMatchObject({ state: 'failed', desiredState: 'shutdown', error: 'task: non-zero exit (137)', exitCode: 137, pid: 0, hostname: '' });
  });

  it('sortTasks orders by slot, newest first within a slot', () => {
    const older = task('old', 1, TaskState.TASK_STATE_FAILED, { meta: { id: 'old', version: 1, createdAtMs: 10, updatedAtMs: 10 } });
    const newer = task('new', 1, TaskState.TASK_STATE_RUNNING, { meta: { id: 'new', version: 1, createdAtMs: 20, updatedAtMs: 20 } });
    const second = task('two', 2, TaskState.TASK_STATE_RUNNING);
    expect(sortTasks([second, older, newer]).map((item) => item.meta?.id)).toEqual(['new', 'old', 'two']);
  });
});
