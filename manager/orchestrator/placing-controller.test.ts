import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../../common/log.js';
import { Service, type Task } from '../../proto/skiff/v1/objects.js';
import { TaskState } from '../../proto/skiff/v1/types.js';
import type { Store } from '../store/store.js';
import type { StoreEvent } from '../store/tables.js';
import { ControllerRunner } from './controller-loop.js';
import { placingController } from './placing-controller.js';
import { fakeNode, fakeService, type TempStore, tempStore } from './testing/fake-objects.js';

const WAIT = { timeout: 3_000, interval: 10 };

let temp: TempStore;
let store: Store;
let runner: ControllerRunner;
/** Every task as its create event carried it, by id. */
let createdAs: Map<string, Task>;
let taskEvents: Extract<StoreEvent, { kind: 'task' }>[];
beforeEach(async () => {
  temp = await tempStore();
  store = temp.store;
  createdAs = new Map();
  taskEvents = [];
  store.subscribe((commit) => {
    for (const event of commit.events) {
      if (event.kind !== 'task') continue;
      taskEvents.push(event);
      if (event.action === 'create') createdAs.set(event.object.meta?.id ?? '', event.object);
    }
  });
  runner = new ControllerRunner(placingController(), store, Date.now, silentLogger);
});
afterEach(async () => {
  runner.stop();
  await temp.close();
});

const liveTasks = (): Task[] => store.reader.list('task').filter((task) => task.desiredState <= TaskState.TASK_STATE_RUNNING);

function constrained(id: string, replicas: number, constraint: string): Service {
  const base = fakeService(id, replicas);
  return { ...base, spec: { ...base.spec!, taskTemplate: { ...base.spec!.taskTemplate!, placement: { constraints: [constraint], preferences: [], maxReplicasPerNode: 0 } } } };
}

describe('placing controller', () => {
  it('placing controller creates a service\'s tasks already assigned and spread, one write each', async () => {
    await store.update((tx) => {
      tx.create('node', fakeNode('a'));
      tx.create('node', fakeNode('b'));
      tx.create('service', fakeService('web', 4));
    });
    runner.start();
    await vi.waitFor(() => expect(createdAs.size).toBe(4), WAIT);
    const perNode = new Map<string, number>();
    for (const task of createdAs.values()) {
      expect(task.status).toMatchObject({ state: TaskState.TASK_STATE_ASSIGNED, err: '' });
      perNode.set(task.nodeId, (perNode.get(task.nodeId) ?? 0) + 1);
    }
    expect(Object.fromEntries(perNode)).toEqual({ a: 2, b: 2 });
    expect(taskEvents.filter((event) => event.action === 'update')).toEqual([]);
  });

  it('placing controller creates a task nothing can take pending with the reason, and places it when a node fits', async () => {
    await store.update((tx) => {
      tx.create('node', fakeNode('a'));
      tx.create('service', constrained('web', 1, 'node.labels.zone==b'));
    });
    runner.start();
    await vi.waitFor(() => expect(createdAs.size).toBe(1), WAIT);
    const [pending] = createdAs.values();
    expect(pending).toMatchObject({ nodeId: '', status: { state: TaskState.TASK_STATE_PENDING, err: 'no suitable node: constraint node.labels.zone==b not met on 1 node' } });
    const node = store.reader.get('node', 'a')!;
    await store.update((tx) => tx.update('node', { ...node, spec: { ...node.spec!, labels: { zone: 'b' } } }));
    await vi.waitFor(() => expect(store.reader.get('task', pending!.meta!.id)).toMatchObject({ nodeId: 'a', status: { state: TaskState.TASK_STATE_ASSIGNED } }), WAIT);
  });

  it('placing controller places a replacement for a failed task at creation, counting the tasks already on nodes', async () => {
    await store.update((tx) => {
      tx.create('node', fakeNode('a'));
      tx.create('node', fakeNode('b'));
      const base = fakeService('web', 2);
      tx.create('service', { ...base, spec: { ...base.spec!, taskTemplate: { ...base.spec!.taskTemplate!, restartPolicy: { condition: 'any', delayMs: 1, maxAttempts: 0, windowMs: 0 } } } });
    });
    runner.start();
    await vi.waitFor(() => expect(liveTasks().length).toBe(2), WAIT);
    const onA = liveTasks().find((task) => task.nodeId === 'a')!;
    await store.update((tx) => tx.update('task', { ...onA, status: { ...onA.status!, state: TaskState.TASK_STATE_FAILED, err: 'exit 1' } }));
    await vi.waitFor(() => expect(createdAs.size).toBe(3), WAIT);
    const replacement = [...createdAs.values()].find((task) => task.slot === onA.slot && task.meta?.id !== onA.meta?.id);
    // Spread puts it back on a: b already runs the other slot.
    expect(replacement).toMatchObject({ nodeId: 'a', status: { state: TaskState.TASK_STATE_ASSIGNED } });
  });

  it('placing controller also places tasks other controllers left unassigned', async () => {
    await store.update((tx) => {
      tx.create('node', fakeNode('a'));
      tx.create('service', fakeService('web', 0));
    });
    runner.start();
    const service = store.reader.get('service', 'web')!;
    // A task written the way the updater writes one: unassigned, for the scheduler's own run.
    await store.update((tx) => tx.update('service', { ...service, spec: { ...service.spec!, mode: { $case: 'replicated', value: { replicas: 1 } } } }));
    await vi.waitFor(() => expect(liveTasks().map((task) => task.nodeId)).toEqual(['a']), WAIT);
  });
});
