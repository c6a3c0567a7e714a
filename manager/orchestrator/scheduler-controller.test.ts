import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../../common/log.js';
import { type Node, Service, type Task } from '../../proto/skiff/v1/objects.js';
import { type DeepPartial, ServiceSpec, TaskSpec } from '../../proto/skiff/v1/specs.js';
import { NodeAvailability, NodeState, TaskState } from '../../proto/skiff/v1/types.js';
import type { Store } from '../store/store.js';
import { CONTROLLER_BATCH_ACTIONS, ControllerRunner } from './controller-loop.js';
import { meetsPlacementConstraints, nodeModel, PlacementState, RECENT_FAILURE_WINDOW_MS, schedulerController, taskGroups } from './scheduler-controller.js';
import { fakeNode, fakeTask, type TempStore, tempStore } from './testing/fake-objects.js';

const WAIT = { timeout: 3_000, interval: 10 };

let temp: TempStore;
let store: Store;
let runner: ControllerRunner;
beforeEach(async () => {
  temp = await tempStore();
  store = temp.store;
  runner = new ControllerRunner(schedulerController(), store, Date.now, silentLogger);
});
afterEach(async () => {
  runner.stop();
  await temp.close();
});

const task = (id: string) => store.reader.get('task', id);

describe('scheduler controller', () => {
  it('scheduler controller assigns unassigned tasks to ready active nodes, spreading a service', async () => {
    await store.update((tx) => {
      tx.create('node', fakeNode('a'));
      tx.create('node', fakeNode('b'));
      tx.create('node', fakeNode('down', { state: NodeState.NODE_STATE_DOWN }));
      tx.create('node', fakeNode('drained', { availability: NodeAvailability.NODE_AVAILABILITY_DRAIN }));
      for (const slot of [1, 2, 3, 4]) tx.create('task', fakeTask(`t${slot}`, { slot }));
    });
    runner.start();
    await vi.waitFor(() => expect(['t1', 't2', 't3', 't4'].every((id) => task(id)?.nodeId !== '')).toBe(true), WAIT);
    const perNode = new Map<string, number>();
    for (const id of ['t1', 't2', 't3', 't4']) {
      const placed = task(id)!;
      expect(placed.status).toMatchObject({ state: TaskState.TASK_STATE_ASSIGNED, err: '' });
      perNode.set(placed.nodeId, (perNode.get(placed.nodeId) ?? 0) + 1);
    }
    expect(Object.fromEntries(perNode)).toEqual({ a: 2, b: 2 });
  });

  it('scheduler controller keeps a task pending with the reason until a node is ready for it', async () => {
    await store.update((tx) => tx.create('task', fakeTask('t1')));
    runner.start();
    await vi.waitFor(() => expect(task('t1')?.status).toMatchObject({ state: TaskState.TASK_STATE_PENDING, err: 'no suitable node: no nodes in the cluster' }), WAIT);
    await store.update((tx) => tx.create('node', fakeNode('a', { state: NodeState.NODE_STATE_DOWN })));
    await vi.waitFor(() => expect(task('t1')?.status?.err).toBe('no suitable node: node not ready on 1 node'), WAIT);
    expect(task('t1')?.nodeId).toBe('');
    const down = store.reader.get('node', 'a')!;
    await store.update((tx) => tx.update('node', { ...down, status: { ...down.status!, state: NodeState.NODE_STATE_READY } }));
    await vi.waitFor(() => expect(task('t1')).toMatchObject({ nodeId: 'a', status: { state: TaskState.TASK_STATE_ASSIGNED, err: '' } }), WAIT);
  });

  it('scheduler controller places new tasks on the node with fewest tasks of the service', async () => {
    await store.update((tx) => {
      tx.create('node', fakeNode('a'));
      tx.create('node', fakeNode('b'));
      tx.create('task', fakeTask('running1', { slot: 1, nodeId: 'a', state: TaskState.TASK_STATE_RUNNING }));
      tx.create('task', fakeTask('running2', { slot: 2, nodeId: 'a', state: TaskState.TASK_STATE_RUNNING }));
    });
    runner.start();
    await store.update((tx) => tx.create('task', fakeTask('new', { slot: 3 })));
    await vi.waitFor(() => expect(task('new')?.nodeId).toBe('b'), WAIT);
  });

  it('scheduler controller leaves assigned tasks and tasks not desired running alone', async () => {
    await store.update((tx) => {
      tx.create('node', fakeNode('a'));
      tx.create('node', fakeNode('b'));
      tx.create('task', fakeTask('placed', { nodeId: 'a', state: TaskState.TASK_STATE_RUNNING }));
      tx.create('task', fakeTask('retired', { slot: 2, desiredState: TaskState.TASK_STATE_SHUTDOWN }));
      tx.create('task', fakeTask('fresh', { slot: 3 }));
    });
    const before = { placed: task('placed'), retired: task('retired') };
    runner.start();
    // One run handles every task in one transaction: once `fresh` is placed the others were seen.
    await vi.waitFor(() => expect(task('fresh')?.nodeId).not.toBe(''), WAIT);
    expect({ placed: task('placed'), retired: task('retired') }).toEqual(before);
  });
});

const GIB = 1024 ** 3;

function withSpec(base: Task, spec: DeepPartial<TaskSpec>): Task {
  return { ...base, spec: TaskSpec.fromPartial(spec) };
}

function sizedNode(id: string, memoryBytes: number, labels: Record<string, string> = {}): Node {
  const base = fakeNode(id);
  return { ...base, spec: { ...base.spec!, labels }, description: { ...base.description!, resources: { nanoCpus: 4e9, memoryBytes, pids: 0 } } };
}

function service(id: string, spec: DeepPartial<ServiceSpec>): Service {
  return Service.fromPartial({ meta: { id, version: 0 }, spec: { name: id, mode: { $case: 'replicated', value: { replicas: 1 } }, ...spec } });
}

describe('scheduler controller inputs', () => {
  it('scheduler controller counts reservations of tasks on a node and places a pending task once one ends', async () => {
    await store.update((tx) => {
      tx.create('node', sizedNode('a', 2 * GIB));
      tx.create('task', withSpec(fakeTask('big', { nodeId: 'a', state: TaskState.TASK_STATE_RUNNING }), { resources: { reservations: { memoryBytes: 1.5 * GIB } } }));
      tx.create('task', withSpec(fakeTask('new', { slot: 2 }), { resources: { reservations: { memoryBytes: GIB } } }));
    });
    runner.start();
    await vi.waitFor(() => expect(task('new')?.status).toMatchObject({ state: TaskState.TASK_STATE_PENDING, err: 'no suitable node: insufficient memory on 1 node' }), WAIT);
    const big = task('big')!;
    await store.update((tx) => tx.update('task', { ...big, status: { ...big.status!, state: TaskState.TASK_STATE_COMPLETE } }));
    await vi.waitFor(() => expect(task('new')).toMatchObject({ nodeId: 'a', status: { state: TaskState.TASK_STATE_ASSIGNED, err: '' } }), WAIT);
  });

  /** A first service with more unplaceable tasks than one run's budget, and a small placeable one after it. */
  async function unplaceableFirstService(reason?: string): Promise<{ big: string[]; small: string[] }> {
    const big = Array.from({ length: CONTROLLER_BATCH_ACTIONS + 500 }, (_, index) => `a-${String(index).padStart(5, '0')}`);
    const small = ['b-1', 'b-2', 'b-3'];
    await store.update((tx) => tx.create('node', sizedNode('n1', 2 * GIB)));
    for (let start = 0; start < big.length; start += 1000) {
      await store.update((tx) => {
        for (const [index, id] of big.slice(start, start + 1000).entries()) {
          const base = withSpec(fakeTask(id, { serviceId: 'a', slot: start + index + 1 }), { resources: { reservations: { memoryBytes: 4 * GIB } } });
          const status = reason === undefined ? base.status! : { ...base.status!, state: TaskState.TASK_STATE_PENDING, err: reason };
          tx.create('task', { ...base, status });
        }
      });
    }
    await store.update((tx) => {
      for (const [index, id] of small.entries()) tx.create('task', fakeTask(id, { serviceId: 'b', slot: index + 1 }));
    });
    return { big, small };
  }

  it('scheduler controller places later services when the first has more unplaceable tasks than a run takes, and explains every task', async () => {
    const { big, small } = await unplaceableFirstService();
    runner.start();
    await vi.waitFor(() => expect(small.map((id) => task(id)?.nodeId)).toEqual(['n1', 'n1', 'n1']), WAIT);
    await vi.waitFor(() => expect(big.filter((id) => task(id)?.status?.err !== 'no suitable node: insufficient memory on 1 node')).toEqual([]), WAIT);
    expect(big.filter((id) => task(id)?.nodeId !== '')).toEqual([]);
  });

  it('scheduler controller places later services after a restart when the first service\'s unplaceable tasks already carry their reason', async () => {
    const { small } = await unplaceableFirstService('no suitable node: insufficient memory on 1 node');
    runner.start();
    await vi.waitFor(() => expect(small.map((id) => task(id)?.nodeId)).toEqual(['n1', 'n1', 'n1']), WAIT);
  });

  it('scheduler controller keeps a constrained task pending with the constraint until a node is relabelled', async () => {
    await store.update((tx) => {
      tx.create('node', sizedNode('a', GIB, { zone: 'a' }));
      tx.create('node', sizedNode('b', GIB));
      tx.create('task', withSpec(fakeTask('t1'), { placement: { constraints: ['node.labels.zone==b'] } }));
    });
    runner.start();
    await vi.waitFor(() => expect(task('t1')?.status?.err).toBe('no suitable node: constraint node.labels.zone==b not met on 2 nodes'), WAIT);
    const b = store.reader.get('node', 'b')!;
    await store.update((tx) => tx.update('node', { ...b, spec: { ...b.spec!, labels: { zone: 'b' } } }));
    await vi.waitFor(() => expect(task('t1')?.nodeId).toBe('b'), WAIT);
  });

  it('scheduler controller keeps host-mode ports of tasks already on a node apart, across services', async () => {
    const hostPort = { endpoint: { ports: [{ protocol: 'tcp', targetPort: 80, publishedPort: 8080, publishMode: 'host' }] } };
    await store.update((tx) => {
      tx.create('service', service('svc', hostPort));
      tx.create('service', service('other', hostPort));
      tx.create('node', fakeNode('a'));
      tx.create('node', fakeNode('b'));
      tx.create('task', fakeTask('on-a', { serviceId: 'other', nodeId: 'a', state: TaskState.TASK_STATE_RUNNING }));
      tx.create('task', fakeTask('t1', { slot: 1 }));
      tx.create('task', fakeTask('t2', { slot: 2 }));
    });
    runner.start();
    await vi.waitFor(() => expect(task('t2')?.status?.err).toBe('no suitable node: host port 8080/tcp in use on 2 nodes'), WAIT);
    expect(task('t1')?.nodeId).toBe('b');
  });

  it('scheduler controller puts nodes where the service failed repeatedly in the window last', async () => {
    const now = Date.now();
    const failed = (id: string, nodeId: string, ageMs: number): Task => {
      const base = fakeTask(id, { nodeId, state: TaskState.TASK_STATE_FAILED, desiredState: TaskState.TASK_STATE_SHUTDOWN });
      return { ...base, status: { ...base.status!, timestampMs: now - ageMs } };
    };
    await store.update((tx) => {
      tx.create('node', fakeNode('flaky'));
      tx.create('node', fakeNode('old'));
      for (const index of [1, 2, 3]) tx.create('task', failed(`flaky-${index}`, 'flaky', 1_000));
      for (const index of [1, 2, 3]) tx.create('task', failed(`old-${index}`, 'old', RECENT_FAILURE_WINDOW_MS + 60_000));
      tx.create('task', fakeTask('new', { slot: 4 }));
    });
    runner.start();
    await vi.waitFor(() => expect(task('new')?.nodeId).toBe('old'), WAIT);
  });

  it('scheduler controller binpacks a service labelled skiff.placement=binpack', async () => {
    await store.update((tx) => {
      tx.create('service', service('svc', { labels: { 'skiff.placement': 'binpack' } }));
      tx.create('node', fakeNode('a'));
      tx.create('node', fakeNode('b'));
      tx.create('task', fakeTask('other', { serviceId: 'other', nodeId: 'b', state: TaskState.TASK_STATE_RUNNING }));
      for (const slot of [1, 2, 3]) tx.create('task', fakeTask(`t${slot}`, { slot }));
    });
    runner.start();
    await vi.waitFor(() => expect(['t1', 't2', 't3'].map((id) => task(id)?.nodeId)).toEqual(['b', 'b', 'b']), WAIT);
  });

  it('taskGroups makes one batch per service and spec version with the spec requirements', async () => {
    await store.update((tx) => {
      tx.create('service', service('svc', { labels: {} }));
      const spec = { placement: { constraints: ['node.role==worker'], preferences: [{ spread: 'node.labels.zone' }], maxReplicasPerNode: 2 }, resources: { reservations: { nanoCpus: 5e8, memoryBytes: GIB } } };
      tx.create('task', withSpec(fakeTask('v1-a', { slot: 1 }), spec));
      tx.create('task', withSpec(fakeTask('v1-b', { slot: 2 }), spec));
      tx.create('task', { ...fakeTask('v2-a', { slot: 3 }), specVersion: 2 });
      tx.create('task', fakeTask('x', { serviceId: 'x' }));
    });
    const pending = ['v1-a', 'v1-b', 'v2-a', 'x'].map((id) => task(id)!);
    const groups = taskGroups(pending, store.reader, Date.now());
    expect(groups.map((group) => group.taskIds)).toEqual([['v1-a', 'v1-b'], ['v2-a'], ['x']]);
    expect(groups[0]).toMatchObject({
      serviceId: 'svc',
      constraints: ['node.role==worker'],
      preferences: ['node.labels.zone'],
      maxReplicasPerNode: 2,
      reservations: { nanoCpus: 5e8, memoryBytes: GIB },
      hostPorts: [],
      strategy: 'spread',
    });
  });

  it('nodeModel sums live tasks per node with their reservations and host ports, ignoring ended ones', async () => {
    await store.update((tx) => {
      tx.create('service', service('svc', { endpoint: { ports: [{ protocol: 'udp', publishedPort: 53, publishMode: 'host' }, { protocol: 'tcp', publishedPort: 80, publishMode: 'ingress' }] } }));
      tx.create('node', sizedNode('a', 4 * GIB, { zone: 'a' }));
      tx.create('task', withSpec(fakeTask('live', { nodeId: 'a', state: TaskState.TASK_STATE_RUNNING }), { resources: { reservations: { nanoCpus: 1e9, memoryBytes: GIB } } }));
      tx.create('task', withSpec(fakeTask('ended', { slot: 2, nodeId: 'a', state: TaskState.TASK_STATE_FAILED }), { resources: { reservations: { memoryBytes: GIB } } }));
    });
    const [model] = nodeModel(store.reader);
    expect(model).toMatchObject({
      id: 'a',
      hostname: 'host-a',
      labels: { zone: 'a' },
      capacity: { nanoCpus: 4e9, memoryBytes: 4 * GIB },
      reserved: { nanoCpus: 1e9, memoryBytes: GIB },
      totalTasks: 1,
    });
    expect([...model!.hostPorts]).toEqual(['53/udp']);
    expect(Object.fromEntries(model!.tasksByService)).toEqual({ svc: 1 });
  });

  it('meetsPlacementConstraints matches a node against a spec with the scheduler parser', () => {
    const spec = (constraints: string[]) => ServiceSpec.fromPartial({ taskTemplate: { placement: { constraints } } });
    const node = sizedNode('a', GIB, { zone: 'a' });
    expect(meetsPlacementConstraints(undefined, node)).toBe(true);
    expect(meetsPlacementConstraints(spec(['node.labels.zone==a', 'node.hostname==host-a', 'node.role==worker']), node)).toBe(true);
    expect(meetsPlacementConstraints(spec(['node.labels.zone==b']), node)).toBe(false);
    expect(meetsPlacementConstraints(spec(['node.labels.zone=a']), node)).toBe(false);
  });
});

describe('scheduler controller state', () => {
  const snapshot = (model: ReturnType<typeof nodeModel>) =>
    model.map((node) => ({ ...node, hostPorts: [...node.hostPorts].sort(), tasksByService: Object.fromEntries([...node.tasksByService].sort()) }));

  it('PlacementState kept from commits equals nodeModel built from the store, through placements, ends, port changes and removals', async () => {
    const state = new PlacementState();
    state.rebuild(store.reader);
    const unsubscribe = store.subscribe((commit) => state.apply(commit));
    const ports = (publishedPort: number) => ({ endpoint: { ports: [{ protocol: 'tcp', targetPort: 80, publishedPort, publishMode: 'host' }] } });
    const reserved = { resources: { reservations: { nanoCpus: 1e8, memoryBytes: GIB / 4 } } };
    await store.update((tx) => {
      tx.create('service', service('svc', ports(8080)));
      tx.create('node', sizedNode('a', 4 * GIB));
      tx.create('node', sizedNode('b', 4 * GIB));
      for (const slot of [1, 2, 3, 4]) tx.create('task', withSpec(fakeTask(`t${slot}`, { slot }), reserved));
      tx.create('task', fakeTask('o1', { serviceId: 'other', nodeId: 'b', state: TaskState.TASK_STATE_RUNNING }));
    });
    const check = () => expect(snapshot(state.nodeModel(store.reader))).toEqual(snapshot(nodeModel(store.reader)));
    check();
    const assign = (id: string, nodeId: string, taskState: TaskState) => store.update((tx) => {
      const current = task(id)!;
      tx.update('task', { ...current, nodeId, status: { ...current.status!, state: taskState } });
    });
    await assign('t1', 'a', TaskState.TASK_STATE_ASSIGNED);
    await assign('t2', 'a', TaskState.TASK_STATE_RUNNING);
    await assign('t3', 'b', TaskState.TASK_STATE_RUNNING);
    check();
    expect(state.nodeModel(store.reader).find((node) => node.id === 'a')).toMatchObject({ totalTasks: 2, reserved: { nanoCpus: 2e8, memoryBytes: GIB / 2 } });
    // A status report of a live task (ASSIGNED -> RUNNING) frees nothing: no new generation, so
    // groups found unplaceable stay so; a task that ends frees its place and moves it on.
    const before = state.generation;
    await assign('t1', 'a', TaskState.TASK_STATE_RUNNING);
    check();
    expect(state.generation).toBe(before);
    await assign('t2', 'a', TaskState.TASK_STATE_FAILED);
    check();
    expect(state.generation).toBeGreaterThan(before);
    const svc = store.reader.get('service', 'svc')!;
    await store.update((tx) => tx.update('service', { ...svc, spec: ServiceSpec.fromPartial({ ...svc.spec, ...ports(9090) }) }));
    check();
    expect([...(state.nodeModel(store.reader).find((node) => node.id === 'b')?.hostPorts ?? [])]).toEqual(['9090/tcp']);
    await store.update((tx) => tx.remove('task', task('t3')!));
    await store.update((tx) => tx.remove('task', task('o1')!));
    check();
    expect([...state.unassigned.get('svc') ?? []]).toEqual(['t4']);
    unsubscribe();
  });
});
