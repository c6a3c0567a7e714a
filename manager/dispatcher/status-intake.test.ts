import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../../common/log.js';
import type { TaskStatusUpdate } from '../../proto/skiff/v1/dispatcher.js';
import { HealthState, TaskState } from '../../proto/skiff/v1/types.js';
import { StoreError } from '../store/errors.js';
import type { Store } from '../store/store.js';
import { fakeNode, fakeTask, type TempStore, tempStore } from '../orchestrator/testing/fake-objects.js';
import { MAX_STATUS_QUEUE, StatusIntake } from './status-intake.js';

let temp: TempStore;
let store: Store;
beforeEach(async () => {
  temp = await tempStore();
  store = temp.store;
  await store.update((tx) => {
    tx.create('node', fakeNode('n1'));
    tx.create('task', fakeTask('t1', { nodeId: 'n1', state: TaskState.TASK_STATE_ASSIGNED }));
    tx.create('task', fakeTask('t2', { slot: 2, nodeId: 'n1', state: TaskState.TASK_STATE_ASSIGNED }));
  });
});
afterEach(async () => {
  await temp.close();
});

const report = (taskId: string, state: TaskState): TaskStatusUpdate => ({
  taskId,
  status: { state, message: 'test', err: '', timestampMs: 1, exitCode: 0, containerId: '', pid: 0, health: HealthState.HEALTH_STATE_NONE },
  networks: [],
});

describe('status intake', () => {
  it('status intake keeps the furthest report per task, so a late stale report never wins', async () => {
    const intake = new StatusIntake(store, silentLogger);
    expect(intake.submit('n1', [report('t1', TaskState.TASK_STATE_ACCEPTED)])).toBe(true);
    expect(intake.submit('n1', [report('t1', TaskState.TASK_STATE_RUNNING), report('t2', TaskState.TASK_STATE_STARTING)])).toBe(true);
    expect(intake.submit('n1', [report('t1', TaskState.TASK_STATE_STARTING)])).toBe(true);
    await vi.waitFor(() => {
      expect(store.reader.get('task', 't1')?.status?.state).toBe(TaskState.TASK_STATE_RUNNING);
      expect(store.reader.get('task', 't2')?.status?.state).toBe(TaskState.TASK_STATE_STARTING);
    }, { timeout: 3_000, interval: 10 });
  });

  it('status intake bounds the tasks it holds reports for, not the messages: a burst for the same tasks is never dropped', async () => {
    const intake = new StatusIntake(store, silentLogger);
    const burst = Array.from({ length: MAX_STATUS_QUEUE / 2 }, (_, index) => report(index % 2 === 0 ? 't1' : 't2', TaskState.TASK_STATE_RUNNING));
    for (let round = 0; round < 4; round += 1) expect(intake.submit('n1', burst)).toBe(true);
    await vi.waitFor(() => expect(['t1', 't2'].map((id) => store.reader.get('task', id)?.status?.state)).toEqual([TaskState.TASK_STATE_RUNNING, TaskState.TASK_STATE_RUNNING]), { timeout: 3_000, interval: 10 });
  });

  it('status intake halves its batch after a transaction too large for one Raft entry, and writes every report', async () => {
    const ids = Array.from({ length: 40 }, (_, index) => `b${index}`);
    await store.update((tx) => {
      for (const [index, id] of ids.entries()) tx.create('task', fakeTask(id, { slot: 10 + index, nodeId: 'n1', state: TaskState.TASK_STATE_ASSIGNED }));
    });
    // A store that refuses more than 12 updates at once, as the Raft backend refuses an entry over its byte limit.
    const sizes: number[] = [];
    const limited = {
      reader: store.reader,
      update: (build: Parameters<Store['update']>[0]) =>
        store.update((transaction, reader) => {
          build(transaction, reader);
          sizes.push(transaction.actions.length);
          if (transaction.actions.length > 12) throw new StoreError('too_large', `cannot write: ${transaction.actions.length} updates`);
        }),
    } as unknown as Store;
    const intake = new StatusIntake(limited, silentLogger);
    expect(intake.submit('n1', ids.map((id) => report(id, TaskState.TASK_STATE_RUNNING)))).toBe(true);
    await vi.waitFor(() => expect(ids.every((id) => store.reader.get('task', id)?.status?.state === TaskState.TASK_STATE_RUNNING)).toBe(true), { timeout: 5_000, interval: 10 });
    expect(sizes.slice(0, 3)).toEqual([40, 20, 10]);
  });
});
