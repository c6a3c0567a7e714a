/**
 * Feeds the pure scheduler: every unassigned task that should run is placed in one batch per
 * run; a task that cannot be placed stays pending with the scheduler's reason, and is retried
 * whenever nodes or tasks change.
 */
import type { Node, Task } from '../../proto/skiff/v1/objects.js';
import { NodeAvailability, NodeRole, NodeState, TaskState } from '../../proto/skiff/v1/types.js';
import { isTerminal } from '../../proto/task-states.js';
import { type NodeInfo, schedule } from '../../scheduler/index.js';
import type { StoreReader, WriteTransaction } from '../store/store.js';
import type { StoreCommit } from '../store/tables.js';
import type { Controller } from './controller-loop.js';

const ALL = 'all';

function needsPlacement(task: Task): boolean {
  const state = task.status?.state ?? TaskState.TASK_STATE_NEW;
  return task.nodeId === '' && task.desiredState <= TaskState.TASK_STATE_RUNNING && state <= TaskState.TASK_STATE_PENDING;
}

function availabilityName(node: Node): NodeInfo['availability'] {
  switch (node.spec?.availability ?? NodeAvailability.NODE_AVAILABILITY_ACTIVE) {
    case NodeAvailability.NODE_AVAILABILITY_PAUSE:
      return 'pause';
    case NodeAvailability.NODE_AVAILABILITY_DRAIN:
      return 'drain';
    default:
      return 'active';
  }
}

/** The scheduler's model of the cluster, built from the store. */
export function nodeModel(reader: StoreReader): NodeInfo[] {
  return reader.list('node').map((node) => {
    const tasksByService = new Map<string, number>();
    let totalTasks = 0;
    for (const task of reader.tasksByNode(node.meta?.id ?? '')) {
      if (task.desiredState > TaskState.TASK_STATE_RUNNING || isTerminal(task.status?.state ?? TaskState.TASK_STATE_NEW)) continue;
      tasksByService.set(task.serviceId, (tasksByService.get(task.serviceId) ?? 0) + 1);
      totalTasks += 1;
    }
    return {
      id: node.meta?.id ?? '',
      hostname: node.description?.hostname ?? '',
      role: node.role === NodeRole.NODE_ROLE_MANAGER ? 'manager' : 'worker',
      ready: node.status?.state === NodeState.NODE_STATE_READY,
      availability: availabilityName(node),
      labels: node.spec?.labels ?? {},
      tasksByService,
      totalTasks,
    };
  });
}

export const schedulerController: Controller = {
  name: 'scheduler',
  *dirtyKeys(commit: StoreCommit) {
    for (const event of commit.events) {
      if (event.kind === 'node' || (event.kind === 'task' && (needsPlacement(event.object) || event.action === 'remove'))) {
        yield ALL;
        return;
      }
    }
  },
  allKeys: () => [ALL],
  reconcile(_keys, transaction: WriteTransaction, reader: StoreReader, nowMs: number) {
    const pending = reader.list('task').filter(needsPlacement);
    if (pending.length === 0) return undefined;
    pending.sort((a, b) => a.serviceId.localeCompare(b.serviceId) || a.slot - b.slot);
    const result = schedule(
      pending.map((task) => ({ taskId: task.meta?.id ?? '', serviceId: task.serviceId })),
      nodeModel(reader),
      String(reader.version),
    );
    for (const task of pending) {
      const id = task.meta?.id ?? '';
      const nodeId = result.assignments.get(id);
      const status = task.status;
      if (status === undefined) continue;
      if (nodeId !== undefined) {
        const message = 'scheduler assigned task to node';
        transaction.update('task', { ...task, nodeId, status: { ...status, state: TaskState.TASK_STATE_ASSIGNED, message, err: '', timestampMs: nowMs } });
        continue;
      }
      const reason = result.unplaced.get(id) ?? 'no suitable node';
      if (status.state === TaskState.TASK_STATE_PENDING && status.err === reason) continue;
      transaction.update('task', { ...task, status: { ...status, state: TaskState.TASK_STATE_PENDING, message: 'pending task scheduling', err: reason, timestampMs: nowMs } });
    }
    return undefined;
  },
};
