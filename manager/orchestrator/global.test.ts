import { describe, expect, it } from 'vitest';
import type { Service, Task } from '../../proto/skiff/v1/objects.js';
import { TaskState } from '../../proto/skiff/v1/types.js';
import { reconcileGlobal, type GlobalNode } from './global.js';
import { newTask } from './task-factory.js';

function service(restartCondition = 'any'): Service {
  return {
    meta: { id: 'svc', version: 1, createdAtMs: 0, updatedAtMs: 0 },
    spec: {
      name: 'agent',
      labels: {},
      taskTemplate: { container: undefined, resources: undefined, restartPolicy: { condition: restartCondition, delayMs: 1_000, maxAttempts: 0, windowMs: 0 }, placement: undefined, networks: [], forceUpdate: 0, networkAliases: [] },
      mode: { $case: 'global', value: {} },
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

function taskOn(nodeId: string, state: TaskState, createdAtMs = 0, timestampMs = 0): Task {
  const base = newTask(service(), 0, createdAtMs, `t-${nodeId}-${createdAtMs}`);
  return { ...base, nodeId, status: { ...base.status!, state, timestampMs } };
}

const node = (id: string, eligible = true, keeps = eligible): GlobalNode => ({ id, eligible, keeps });
let counter = 0;
const newId = (): string => `new${(counter += 1)}`;

describe('global reconcile', () => {
  it('creates one assigned task on every eligible node that has none', () => {
    const actions = reconcileGlobal(service(), [taskOn('a', TaskState.TASK_STATE_RUNNING)], [node('a'), node('b'), node('c', false, true)], 10, newId);
    expect(actions.create.map((task) => [task.nodeId, task.status?.state])).toEqual([['b', TaskState.TASK_STATE_ASSIGNED]]);
    expect(actions.update).toEqual([]);
  });

  it('shuts down tasks on nodes that are gone or no longer fit (drained, relabelled)', () => {
    const onGone = taskOn('gone', TaskState.TASK_STATE_RUNNING);
    const onMisfit = taskOn('misfit', TaskState.TASK_STATE_RUNNING);
    const actions = reconcileGlobal(service(), [onGone, onMisfit], [node('misfit', false, false)], 10, newId);
    expect(actions.update.map((task) => [task.nodeId, task.desiredState])).toEqual([
      ['gone', TaskState.TASK_STATE_SHUTDOWN],
      ['misfit', TaskState.TASK_STATE_SHUTDOWN],
    ]);
    expect(actions.create).toEqual([]);
  });

  it('restarts a failed task on its node after the restart delay, and not with condition none', () => {
    const failed = taskOn('a', TaskState.TASK_STATE_FAILED, 0, 5_000);
    const early = reconcileGlobal(service(), [failed], [node('a')], 5_500, newId);
    expect(early.create).toEqual([]);
    expect(early.wakeAtMs).toBe(6_000);
    expect(early.update.map((task) => task.desiredState)).toEqual([TaskState.TASK_STATE_SHUTDOWN]);
    const later = reconcileGlobal(service(), [{ ...failed, desiredState: TaskState.TASK_STATE_SHUTDOWN }], [node('a')], 6_000, newId);
    expect(later.create.map((task) => task.nodeId)).toEqual(['a']);
    const never = reconcileGlobal(service('none'), [{ ...failed, desiredState: TaskState.TASK_STATE_SHUTDOWN }], [node('a')], 60_000, newId);
    expect(never.create).toEqual([]);
  });

  it('removes every task of a removed service', () => {
    const actions = reconcileGlobal(undefined, [taskOn('a', TaskState.TASK_STATE_RUNNING)], [node('a')], 10, newId);
    expect(actions.update.map((task) => task.desiredState)).toEqual([TaskState.TASK_STATE_REMOVE]);
  });
});
