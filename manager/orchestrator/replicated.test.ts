import { describe, expect, it } from 'vitest';
import type { Service, Task } from '../../proto/skiff/v1/objects.js';
import { TaskState } from '../../proto/skiff/v1/types.js';
import { reconcileReplicated } from './replicated.js';
import { newTask } from './task-factory.js';

function service(replicas: number, restart: { condition?: string; delayMs?: number; maxAttempts?: number } = {}): Service {
  return {
    meta: { id: 'svc', version: 3, createdAtMs: 0, updatedAtMs: 0 },
    spec: {
      name: 'web',
      labels: {},
      taskTemplate: {
        container: undefined,
        resources: undefined,
        restartPolicy: { condition: restart.condition ?? '', delayMs: restart.delayMs ?? 0, maxAttempts: restart.maxAttempts ?? 0, windowMs: 0 },
        placement: undefined,
        networks: [],
        forceUpdate: 0,
        networkAliases: [],
      },
      mode: { $case: 'replicated', value: { replicas } },
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

function task(slot: number, nodeId: string, state = TaskState.TASK_STATE_RUNNING, extra: Partial<Task> = {}): Task {
  const base = newTask(service(1), slot, slot * 10, `t${slot}-${nodeId}-${state}`);
  return { ...base, nodeId, status: { ...base.status!, state, timestampMs: 1_000 }, ...extra };
}

let counter = 0;
const ids = () => `new${++counter}`;
const summary = (actions: ReturnType<typeof reconcileReplicated>) => ({
  create: actions.create.map((t) => t.slot),
  update: actions.update.map((t) => `${t.meta!.id}->${TaskState[t.desiredState]}`),
  wakeAtMs: actions.wakeAtMs,
});

describe('replicated reconcile', () => {
  it('replicated reconcile creates slots 1..replicas for a new service', () => {
    const actions = reconcileReplicated(service(3), [], 100, ids);
    expect(summary(actions)).toEqual({ create: [1, 2, 3], update: [], wakeAtMs: undefined });
    expect(actions.create.every((t) => t.desiredState === TaskState.TASK_STATE_RUNNING && t.nodeId === '' && t.serviceName === 'web')).toBe(true);
  });

  it('replicated reconcile does nothing when converged', () => {
    expect(summary(reconcileReplicated(service(2), [task(1, 'a'), task(2, 'b')], 100, ids))).toEqual({ create: [], update: [], wakeAtMs: undefined });
  });

  it('replicated reconcile scales down from the busiest node first, highest slot on a tie', () => {
    const tasks = [task(1, 'a'), task(2, 'a'), task(3, 'a'), task(4, 'b'), task(5, 'b'), task(6, 'c')];
    expect(summary(reconcileReplicated(service(3), tasks, 100, ids)).update).toEqual([
      't3-a-7->TASK_STATE_REMOVE',
      't5-b-7->TASK_STATE_REMOVE',
      't2-a-7->TASK_STATE_REMOVE',
    ]);
  });

  it('replicated reconcile scales up into the lowest free slots', () => {
    expect(summary(reconcileReplicated(service(4), [task(2, 'a'), task(5, 'b')], 100, ids)).create).toEqual([1, 3]);
  });

  it('replicated reconcile retires a failed task and refills its slot after the restart delay', () => {
    const failed = task(1, 'a', TaskState.TASK_STATE_FAILED);
    const early = reconcileReplicated(service(1, { delayMs: 5_000 }), [failed], 2_000, ids);
    expect(summary(early)).toEqual({ create: [], update: ['t1-a-10->TASK_STATE_SHUTDOWN'], wakeAtMs: 6_000 });
    const retired = { ...failed, desiredState: TaskState.TASK_STATE_SHUTDOWN };
    expect(summary(reconcileReplicated(service(1, { delayMs: 5_000 }), [retired], 5_999, ids))).toEqual({ create: [], update: [], wakeAtMs: 6_000 });
    expect(summary(reconcileReplicated(service(1, { delayMs: 5_000 }), [retired], 6_000, ids)).create).toEqual([1]);
  });

  it('replicated reconcile honours restart condition none and on-failure', () => {
    const completed = task(1, 'a', TaskState.TASK_STATE_COMPLETE, { desiredState: TaskState.TASK_STATE_SHUTDOWN });
    expect(reconcileReplicated(service(1, { condition: 'on-failure' }), [completed], 99_000, ids).create).toEqual([]);
    const failed = task(1, 'a', TaskState.TASK_STATE_FAILED, { desiredState: TaskState.TASK_STATE_SHUTDOWN });
    expect(reconcileReplicated(service(1, { condition: 'none' }), [failed], 99_000, ids).create).toEqual([]);
    expect(reconcileReplicated(service(1, { condition: 'on-failure' }), [failed], 99_000, ids).create.map((t) => t.slot)).toEqual([1]);
  });

  it('replicated reconcile stops restarting after max attempts', () => {
    const history = [0, 1, 2].map((attempt) =>
      task(1, 'a', TaskState.TASK_STATE_FAILED, { desiredState: TaskState.TASK_STATE_SHUTDOWN, meta: { id: `a${attempt}`, version: 1, createdAtMs: attempt, updatedAtMs: attempt } }),
    );
    expect(reconcileReplicated(service(1, { maxAttempts: 2 }), history, 99_000, ids).create).toEqual([]);
    expect(reconcileReplicated(service(1, { maxAttempts: 3 }), history, 99_000, ids).create.map((t) => t.slot)).toEqual([1]);
  });

  it('replicated reconcile drops a waiting restart before a running task on scale-down', () => {
    const waiting = task(1, 'a', TaskState.TASK_STATE_FAILED, { desiredState: TaskState.TASK_STATE_SHUTDOWN });
    expect(summary(reconcileReplicated(service(1, { delayMs: 60_000 }), [waiting, task(2, 'b')], 2_000, ids))).toEqual({ create: [], update: [], wakeAtMs: undefined });
  });

  it('replicated reconcile marks every live task for removal when the service is gone', () => {
    const tasks = [task(1, 'a'), task(2, 'b', TaskState.TASK_STATE_FAILED, { desiredState: TaskState.TASK_STATE_SHUTDOWN })];
    expect(summary(reconcileReplicated(undefined, tasks, 100, ids)).update).toEqual(['t1-a-7->TASK_STATE_REMOVE']);
  });
});

describe('drain', () => {
  it('stops a task on a drained node and starts its slot again at once, whatever the restart policy', () => {
    const svc = service(2);
    const onDrained = task(1, 'n1');
    const elsewhere = task(2, 'n2');
    let ids = 0;
    const actions = reconcileReplicated(svc, [onDrained, elsewhere], 5_000, () => `new${(ids += 1)}`, new Set(['n1']));
    expect(actions.update).toEqual([{ ...onDrained, desiredState: TaskState.TASK_STATE_SHUTDOWN }]);
    expect(actions.create.map((t) => [t.slot, t.nodeId])).toEqual([[1, '']]);
  });

  it('leaves tasks alone when no node is drained', () => {
    const svc = service(2);
    const actions = reconcileReplicated(svc, [task(1, 'n1'), task(2, 'n2')], 5_000, () => 'x');
    expect(actions.update).toEqual([]);
    expect(actions.create).toEqual([]);
  });
});

describe('node failure', () => {
  it('replaces an orphaned task (its node is down) at once, without the restart delay', () => {
    const svc = service(1);
    const orphaned = { ...task(1, 'down'), status: { ...task(1, 'down').status!, state: TaskState.TASK_STATE_ORPHANED, timestampMs: 1_000 } };
    const first = reconcileReplicated(svc, [orphaned], 1_001, () => 'r1');
    expect(first.update.map((t) => t.desiredState)).toEqual([TaskState.TASK_STATE_SHUTDOWN]);
    expect(first.create.map((t) => t.slot)).toEqual([1]);
  });
});
