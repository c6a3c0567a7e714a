import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../../common/log.js';
import { Service } from '../../proto/skiff/v1/objects.js';
import { MAX_TRANSACTION_ACTIONS, type Store } from '../store/store.js';
import { CONTROLLER_BATCH_ACTIONS, ControllerRunner } from './controller-loop.js';
import { replicatedController } from './replicated-controller.js';
import { schedulerController } from './scheduler-controller.js';
import { fakeNode, type TempStore, tempStore } from './testing/fake-objects.js';

let temp: TempStore;
let store: Store;
const runners: ControllerRunner[] = [];
beforeEach(async () => {
  temp = await tempStore();
  store = temp.store;
});
afterEach(async () => {
  for (const runner of runners.splice(0)) runner.stop();
  await temp.close();
});

function replicated(id: string, replicas: number): Service {
  return Service.fromPartial({ meta: { id, version: 0 }, spec: { name: id, mode: { $case: 'replicated', value: { replicas } }, taskTemplate: {} }, specVersion: 1 });
}

describe('controller runner', () => {
  it('splits work larger than one transaction into several, so bursts never get stuck', async () => {
    expect(CONTROLLER_BATCH_ACTIONS).toBeLessThan(MAX_TRANSACTION_ACTIONS);
    // 3 x 1,000 new tasks at once, and one service bigger than a transaction on its own.
    await store.update((tx) => {
      for (const id of ['a', 'b', 'c']) tx.create('service', replicated(id, 1_000));
      tx.create('service', replicated('big', 2_500));
      tx.create('node', fakeNode('n1'));
      tx.create('node', fakeNode('n2'));
    });
    for (const controller of [replicatedController, schedulerController()]) {
      const runner = new ControllerRunner(controller, store, Date.now, silentLogger);
      runners.push(runner);
      runner.start();
    }
    await vi.waitFor(() => {
      const tasks = store.reader.list('task');
      expect(tasks).toHaveLength(5_500);
      expect(tasks.every((task) => task.nodeId !== '')).toBe(true);
    }, { timeout: 30_000, interval: 50 });
    const perNode = new Map<string, number>();
    for (const task of store.reader.list('task')) perNode.set(task.nodeId, (perNode.get(task.nodeId) ?? 0) + 1);
    expect([...perNode.values()]).toEqual([2_750, 2_750]);
  });
});
