import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../../common/log.js';
import { NodeState, TaskState } from '../../proto/skiff/v1/types.js';
import type { Store } from '../store/store.js';
import { ControllerRunner } from './controller-loop.js';
import { DEFAULT_TASK_HISTORY_LIMIT, reaperController } from './reaper-controller.js';
import { fakeNode, fakeService, fakeTask, type TempStore, tempStore } from './testing/fake-objects.js';

const WAIT = { timeout: 3_000, interval: 10 };
const REMOVE = TaskState.TASK_STATE_REMOVE;
const SHUTDOWN = TaskState.TASK_STATE_SHUTDOWN;

let nowMs = 1_000;
let temp: TempStore;
let store: Store;
let runner: ControllerRunner;
beforeEach(async () => {
  temp = await tempStore(() => (nowMs += 1));
  store = temp.store;
  // The tasks' service: without it, every stopped task of it would be reaped (see the last test).
  await store.update((tx) => tx.create('service', fakeService('svc')));
  runner = new ControllerRunner(reaperController(), store, () => nowMs, silentLogger);
});
afterEach(async () => {
  runner.stop();
  await temp.close();
});

const taskIds = (): string[] => store.reader.list('task').map((task) => task.meta!.id).sort();

describe('reaper controller', () => {
  it('reaper controller deletes a task marked remove once it has stopped or its node is down', async () => {
    await store.update((tx) => {
      tx.create('node', fakeNode('up'));
      tx.create('node', fakeNode('down', { state: NodeState.NODE_STATE_DOWN }));
      tx.create('task', fakeTask('unplaced', { desiredState: REMOVE, state: TaskState.TASK_STATE_PENDING }));
      tx.create('task', fakeTask('stopped', { slot: 2, nodeId: 'up', desiredState: REMOVE, state: TaskState.TASK_STATE_SHUTDOWN }));
      tx.create('task', fakeTask('on-down-node', { slot: 3, nodeId: 'down', desiredState: REMOVE, state: TaskState.TASK_STATE_RUNNING }));
      tx.create('task', fakeTask('still-running', { slot: 4, nodeId: 'up', desiredState: REMOVE, state: TaskState.TASK_STATE_RUNNING }));
      tx.create('task', fakeTask('wanted', { slot: 5, nodeId: 'up', state: TaskState.TASK_STATE_RUNNING }));
    });
    runner.start();
    await vi.waitFor(() => expect(taskIds()).toEqual(['still-running', 'wanted']), WAIT);
    // Its agent reports the container stopped: now it goes too.
    const running = store.reader.get('task', 'still-running')!;
    await store.update((tx) => tx.update('task', { ...running, status: { ...running.status!, state: TaskState.TASK_STATE_SHUTDOWN } }));
    await vi.waitFor(() => expect(taskIds()).toEqual(['wanted']), WAIT);
  });

  it('reaper controller keeps the newest retired tasks of each slot up to the history limit', async () => {
    await store.update((tx) => tx.create('node', fakeNode('up')));
    // One write each, so that createdAt (the store's clock) orders them.
    for (let attempt = 1; attempt <= DEFAULT_TASK_HISTORY_LIMIT + 2; attempt += 1) {
      await store.update((tx) => tx.create('task', fakeTask(`s1-${attempt}`, { slot: 1, nodeId: 'up', desiredState: SHUTDOWN, state: TaskState.TASK_STATE_FAILED })));
    }
    await store.update((tx) => {
      tx.create('task', fakeTask('s1-live', { slot: 1, nodeId: 'up', state: TaskState.TASK_STATE_RUNNING }));
      for (const attempt of [1, 2, 3]) tx.create('task', fakeTask(`s2-${attempt}`, { slot: 2, nodeId: 'up', desiredState: SHUTDOWN, state: TaskState.TASK_STATE_COMPLETE }));
      // Shut down but not yet stopped: not history yet.
      tx.create('task', fakeTask('s2-stopping', { slot: 2, nodeId: 'up', desiredState: SHUTDOWN, state: TaskState.TASK_STATE_RUNNING }));
    });
    runner.start();
    await vi.waitFor(() => expect(taskIds().filter((id) => id.startsWith('s1-'))).toHaveLength(DEFAULT_TASK_HISTORY_LIMIT + 1), WAIT);
    expect(taskIds()).toEqual(['s1-3', 's1-4', 's1-5', 's1-6', 's1-7', 's1-live', 's2-1', 's2-2', 's2-3', 's2-stopping']);
  });

  it('reaper controller trims history again when a newer task of the slot retires', async () => {
    await store.update((tx) => tx.create('node', fakeNode('up')));
    for (let attempt = 1; attempt <= DEFAULT_TASK_HISTORY_LIMIT; attempt += 1) {
      await store.update((tx) => tx.create('task', fakeTask(`r${attempt}`, { nodeId: 'up', desiredState: SHUTDOWN, state: TaskState.TASK_STATE_FAILED })));
    }
    await store.update((tx) => tx.create('task', fakeTask('live', { nodeId: 'up', state: TaskState.TASK_STATE_RUNNING })));
    runner.start();
    const live = store.reader.get('task', 'live')!;
    await store.update((tx) => tx.update('task', { ...live, desiredState: SHUTDOWN, status: { ...live.status!, state: TaskState.TASK_STATE_FAILED } }));
    await vi.waitFor(() => expect(taskIds()).toEqual(['live', 'r2', 'r3', 'r4', 'r5']), WAIT);
  });

  it('reaper controller deletes every stopped task of a removed service, history included, and the rest once they stop', async () => {
    await store.update((tx) => {
      tx.create('node', fakeNode('up'));
      tx.create('service', fakeService('gone'));
      tx.create('task', fakeTask('old-1', { serviceId: 'gone', nodeId: 'up', desiredState: SHUTDOWN, state: TaskState.TASK_STATE_FAILED }));
      tx.create('task', fakeTask('old-2', { serviceId: 'gone', nodeId: 'up', desiredState: SHUTDOWN, state: TaskState.TASK_STATE_COMPLETE }));
      tx.create('task', fakeTask('stopping', { serviceId: 'gone', slot: 2, nodeId: 'up', desiredState: SHUTDOWN, state: TaskState.TASK_STATE_RUNNING }));
      tx.create('task', fakeTask('kept', { nodeId: 'up', desiredState: SHUTDOWN, state: TaskState.TASK_STATE_FAILED }));
      // Reaped at once: once it is gone, the service's tasks were looked at.
      tx.create('task', fakeTask('marker', { serviceId: 'gone', slot: 3, nodeId: 'up', desiredState: REMOVE, state: TaskState.TASK_STATE_SHUTDOWN }));
    });
    runner.start();
    await vi.waitFor(() => expect(taskIds()).not.toContain('marker'), WAIT);
    // Within the history limit, while the service exists: kept.
    expect(taskIds()).toEqual(['kept', 'old-1', 'old-2', 'stopping']);
    await store.update((tx) => tx.remove('service', store.reader.get('service', 'gone')!));
    await vi.waitFor(() => expect(taskIds()).toEqual(['kept', 'stopping']), WAIT);
    const stopping = store.reader.get('task', 'stopping')!;
    await store.update((tx) => tx.update('task', { ...stopping, status: { ...stopping.status!, state: TaskState.TASK_STATE_SHUTDOWN } }));
    await vi.waitFor(() => expect(taskIds()).toEqual(['kept']), WAIT);
  });
});
