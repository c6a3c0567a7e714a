import { describe, expect, it } from 'vitest';
import type { Service, Task } from '../../proto/skiff/v1/objects.js';
import { TaskState } from '../../proto/skiff/v1/types.js';
import { planRebalance } from './rebalance.js';
import { newTask } from './task-factory.js';

const service = { meta: { id: 'svc', version: 1, createdAtMs: 0, updatedAtMs: 0 }, spec: { name: 'web', updateConfig: undefined }, specVersion: 1 } as unknown as Service;

function task(slot: number, nodeId: string, state = TaskState.TASK_STATE_RUNNING, createdAtMs = 0): Task {
  const base = newTask(service, slot, createdAtMs, `t${slot}-${nodeId}-${createdAtMs}`);
  return { ...base, nodeId, status: { ...base.status!, state } };
}
let ids = 0;
const newId = (): string => `new${(ids += 1)}`;

describe('rebalance', () => {
  it('moves one task from the fullest node, start-first (a replacement for its slot, unplaced)', () => {
    const tasks = [task(1, 'a'), task(2, 'a'), task(3, 'a'), task(4, 'b'), task(5, 'b'), task(6, 'b')];
    const plan = planRebalance(service, tasks, ['a', 'b', 'c'], 100, newId);
    expect(plan.update).toEqual([]);
    expect(plan.create.map((t) => [t.slot, t.nodeId])).toEqual([[3, '']]);
    expect(plan.balanced).toBe(false);
  });

  it('stops the old task only once its replacement runs, and waits while a move is in flight', () => {
    const old = task(3, 'a', TaskState.TASK_STATE_RUNNING, 0);
    const pending = { ...task(3, '', TaskState.TASK_STATE_PENDING, 50) };
    const base = [task(1, 'a'), task(2, 'a'), task(4, 'b'), task(5, 'b'), task(6, 'b')];
    const waiting = planRebalance(service, [...base, old, pending], ['a', 'b', 'c'], 100, newId);
    expect(waiting).toEqual({ create: [], update: [], balanced: false });
    const replaced = planRebalance(service, [...base, old, { ...task(3, 'c', TaskState.TASK_STATE_RUNNING, 50) }], ['a', 'b', 'c'], 100, newId);
    expect(replaced.update).toEqual([{ ...old, desiredState: TaskState.TASK_STATE_SHUTDOWN }]);
    expect(replaced.create).toEqual([]);
  });

  it('reports balanced when the spread is off by at most one', () => {
    const plan = planRebalance(service, [task(1, 'a'), task(2, 'a'), task(3, 'b'), task(4, 'c'), task(5, 'c')], ['a', 'b', 'c'], 100, newId);
    expect(plan).toEqual({ create: [], update: [], balanced: true });
  });

  it('moves up to the update parallelism per batch', () => {
    const parallel = { ...service, spec: { ...service.spec, updateConfig: { parallelism: 2 } } } as unknown as Service;
    const tasks = [1, 2, 3, 4, 5, 6].map((slot) => task(slot, 'a'));
    const plan = planRebalance(parallel, tasks, ['a', 'b', 'c'], 100, newId);
    expect(plan.create.map((t) => t.slot)).toEqual([6, 5]);
  });
});
