import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../../common/log.js';
import { Service } from '../../proto/skiff/v1/objects.js';
import { StoreError } from '../store/errors.js';
import { MAX_TRANSACTION_ACTIONS, type Store } from '../store/store.js';
import { CONTROLLER_BATCH_ACTIONS, type Controller, ControllerRunner, remainingBudget } from './controller-loop.js';
import { replicatedController } from './replicated-controller.js';
import { schedulerController } from './scheduler-controller.js';
import { fakeNode, fakeTask, type TempStore, tempStore } from './testing/fake-objects.js';

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
    const big = CONTROLLER_BATCH_ACTIONS + 500;
    await store.update((tx) => {
      for (const id of ['a', 'b', 'c']) tx.create('service', replicated(id, 1_000));
      tx.create('service', replicated('big', big));
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
      expect(tasks).toHaveLength(3_000 + big);
      expect(tasks.every((task) => task.nodeId !== '')).toBe(true);
    }, { timeout: 30_000, interval: 50 });
    const perNode = new Map<string, number>();
    for (const task of store.reader.list('task')) perNode.set(task.nodeId, (perNode.get(task.nodeId) ?? 0) + 1);
    expect([...perNode.values()]).toEqual([(3_000 + big) / 2, (3_000 + big) / 2]);
  });

  it('runs again only the keys a run stopped at the budget did not finish', async () => {
    const share = (CONTROLLER_BATCH_ACTIONS * 3) / 5;
    const toWrite = new Map([['a', share], ['b', share], ['c', share]]);
    const visits: string[][] = [];
    let next = 0;
    const controller: Controller = {
      name: 'test',
      dirtyKeys: () => [],
      allKeys: () => [...toWrite.keys()],
      reconcile(keys, transaction, _reader, _nowMs, finished) {
        visits.push([...keys]);
        for (const key of keys) {
          const left = toWrite.get(key) ?? 0;
          const now = Math.min(left, remainingBudget(transaction));
          for (let index = 0; index < now; index += 1) transaction.create('task', fakeTask(`t${(next += 1)}`));
          toWrite.set(key, left - now);
          if (left === now) finished.add(key);
          if (remainingBudget(transaction) === 0) break;
        }
        return undefined;
      },
    };
    const runner = new ControllerRunner(controller, store, Date.now, silentLogger);
    runners.push(runner);
    runner.start();
    await vi.waitFor(() => expect(store.reader.list('task')).toHaveLength(3 * share), { timeout: 10_000, interval: 20 });
    expect(visits).toEqual([['a', 'b', 'c'], ['b', 'c']]);
  });

  it('halves its budget after a transaction too large for one Raft entry, and writes everything', async () => {
    // A store that refuses more than 700 writes at once, as the Raft backend refuses an entry over its byte limit.
    const limit = 700;
    const sizes: number[] = [];
    const limited = {
      reader: store.reader,
      subscribe: store.subscribe.bind(store),
      update: (build: Parameters<Store['update']>[0]) =>
        store.update((transaction, reader) => {
          build(transaction, reader);
          sizes.push(transaction.actions.length);
          if (transaction.actions.length > limit) throw new StoreError('too_large', `cannot write: ${transaction.actions.length} writes`);
        }),
    } as unknown as Store;
    let next = 0;
    let left = 2_000;
    const controller: Controller = {
      name: 'big-objects',
      dirtyKeys: () => [],
      allKeys: () => ['all'],
      reconcile(_keys, transaction, _reader, _nowMs, finished) {
        const now = Math.min(left, remainingBudget(transaction));
        for (let index = 0; index < now; index += 1) transaction.create('task', fakeTask(`t${(next += 1)}`));
        if (now === left) finished.add('all');
        return undefined;
      },
    };
    const runner = new ControllerRunner(controller, limited, Date.now, silentLogger);
    runners.push(runner);
    // `left` only goes down once a transaction commits.
    const unsubscribe = store.subscribe((commit) => {
      left -= commit.events.length;
    });
    runner.start();
    await vi.waitFor(() => expect(store.reader.list('task')).toHaveLength(2_000), { timeout: 10_000, interval: 20 });
    unsubscribe();
    // Refused at 2,000, then 1,000; committed at 500 (and more after each success, up to the refusal point).
    expect(sizes.slice(0, 3)).toEqual([2_000, 1_000, 500]);
    expect(Math.max(...sizes.filter((size) => size <= limit))).toBeLessThanOrEqual(limit);
  });

  it('runs the wake keys, not allKeys, when a wake time comes', async () => {
    const calls: string[] = [];
    let woke = false;
    const controller: Controller = {
      name: 'waker',
      dirtyKeys: () => [],
      allKeys: () => {
        calls.push('all');
        return ['start'];
      },
      wakeKeys: () => {
        calls.push('wake');
        return ['woken'];
      },
      reconcile(keys, _transaction, _reader, nowMs) {
        if (keys.has('woken')) woke = true;
        return keys.has('start') ? nowMs + 20 : undefined;
      },
    };
    const runner = new ControllerRunner(controller, store, Date.now, silentLogger);
    runners.push(runner);
    runner.start();
    await vi.waitFor(() => expect(woke).toBe(true), { timeout: 3_000, interval: 10 });
    expect(calls).toEqual(['all', 'wake']);
  });
});
