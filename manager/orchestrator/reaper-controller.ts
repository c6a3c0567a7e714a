/**
 * The task reaper: deletes tasks nobody needs any more, which also tells their agents to remove
 * the containers. A task marked for removal goes once it has stopped (or never reached a live
 * node); retired history beyond the per-slot limit goes oldest first; and once its service is
 * gone, every stopped task of it goes (history included: its containers, and the volumes they
 * hold, must not outlive the service on the nodes).
 */
import type { Task } from '../../proto/skiff/v1/objects.js';
import { NodeState, TaskState } from '../../proto/skiff/v1/types.js';
import { isTerminal } from '../../proto/task-states.js';
import type { StoreReader, WriteTransaction } from '../store/store.js';
import type { StoreCommit } from '../store/tables.js';
import { remainingBudget, type Controller } from './controller-loop.js';

/** Retired tasks kept per slot (Swarm's default task history limit). */
export const DEFAULT_TASK_HISTORY_LIMIT = 5;

/** Dirty key meaning "every service": a node's state changed, which can free any of its tasks. */
const EVERY_SERVICE = '*';

const observed = (task: Task): TaskState => task.status?.state ?? TaskState.TASK_STATE_NEW;

function stopped(task: Task, reader: StoreReader): boolean {
  if (isTerminal(observed(task)) || task.nodeId === '') return true;
  const node = reader.get('node', task.nodeId);
  return node === undefined || node.status?.state === NodeState.NODE_STATE_DOWN;
}

export function reapTasks(tasks: readonly Task[], reader: StoreReader, historyLimit: number): Task[] {
  const reaped: Task[] = [];
  // A global service's tasks all have slot 0: their "slot" is their node.
  const retiredBySlot = new Map<string, Task[]>();
  for (const task of tasks) {
    if (task.desiredState === TaskState.TASK_STATE_REMOVE || reader.get('service', task.serviceId) === undefined) {
      if (stopped(task, reader)) reaped.push(task);
      continue;
    }
    if (task.desiredState === TaskState.TASK_STATE_SHUTDOWN && isTerminal(observed(task))) {
      const slot = task.slot === 0 ? `node:${task.nodeId}` : String(task.slot);
      const group = retiredBySlot.get(slot) ?? [];
      group.push(task);
      retiredBySlot.set(slot, group);
    }
  }
  for (const group of retiredBySlot.values()) {
    group.sort((a, b) => (a.meta?.createdAtMs ?? 0) - (b.meta?.createdAtMs ?? 0));
    reaped.push(...group.slice(0, Math.max(0, group.length - historyLimit)));
  }
  return reaped;
}

export function reaperController(historyLimit = DEFAULT_TASK_HISTORY_LIMIT): Controller {
  return {
    name: 'reaper',
    *dirtyKeys(commit: StoreCommit) {
      for (const event of commit.events) {
        // Only a task no longer desired running can be reaped, or push older history out.
        if (event.kind === 'task' && event.action !== 'remove' && event.object.desiredState > TaskState.TASK_STATE_RUNNING) yield event.object.serviceId;
        if (event.kind === 'node') yield EVERY_SERVICE;
        // A removed service with only history left gets no task event: its tasks go now.
        if (event.kind === 'service' && event.action === 'remove') yield event.object.meta?.id ?? '';
      }
    },
    allKeys: (reader) => new Set(reader.list('task').map((task) => task.serviceId)),
    reconcile(keys, transaction: WriteTransaction, reader: StoreReader) {
      const serviceIds = keys.has(EVERY_SERVICE) ? new Set(reader.list('task').map((task) => task.serviceId)) : keys;
      for (const serviceId of serviceIds) {
        if (remainingBudget(transaction) === 0) break; // the runner runs the keys again
        for (const task of reapTasks(reader.tasksByService(serviceId), reader, historyLimit).slice(0, remainingBudget(transaction))) transaction.remove('task', task);
      }
      return undefined;
    },
  };
}
