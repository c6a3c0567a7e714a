import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../../common/log.js';
import { NodeAvailability, NodeState, TaskState } from '../../proto/skiff/v1/types.js';
import type { Store } from '../store/store.js';
import { ControllerRunner } from './controller-loop.js';
import { schedulerController } from './scheduler-controller.js';
import { fakeNode, fakeTask, type TempStore, tempStore } from './testing/fake-objects.js';

const WAIT = { timeout: 3_000, interval: 10 };

let temp: TempStore;
let store: Store;
let runner: ControllerRunner;
beforeEach(async () => {
  temp = await tempStore();
  store = temp.store;
  runner = new ControllerRunner(schedulerController, store, Date.now, silentLogger);
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
