/** Runs the replicated reconcile for every service whose service or tasks changed. */
import { NodeAvailability, TaskState } from '../../proto/skiff/v1/types.js';
import { isTerminal } from '../../proto/task-states.js';
import type { Task } from '../../proto/skiff/v1/objects.js';
import { newObjectId, type StoreReader, type WriteTransaction } from '../store/store.js';
import type { StoreCommit, StoreEvent } from '../store/tables.js';
import { remainingBudget, type Controller } from './controller-loop.js';
import { meetsPlacementConstraints } from './scheduler-controller.js';
import { reconcileReplicated } from './replicated.js';

/** A dirty key that stands for every service. */
const EVERY_SERVICE = '*';

/**
 * An agent reporting a live task's progress (accepted ... running): nothing the replicated
 * reconcile decides depends on it (a slot is occupied from creation to a terminal state), and
 * at scale these reports are most commits, each touching many services.
 */
export function agentProgress(event: StoreEvent): boolean {
  if (event.kind !== 'task' || event.action !== 'update') return false;
  const state = event.object.status?.state ?? TaskState.TASK_STATE_NEW;
  return event.object.desiredState <= TaskState.TASK_STATE_RUNNING && state > TaskState.TASK_STATE_ASSIGNED && !isTerminal(state);
}

/** Where the replicated reconcile puts its task writes, and how many more it may make. */
export interface TaskWriter {
  update(task: Task): void;
  create(task: Task): void;
  remaining(): number;
}

/** Writes straight into the transaction, within its budget. */
export function transactionWriter(transaction: WriteTransaction): TaskWriter {
  return {
    update: (task) => transaction.update('task', task),
    create: (task) => transaction.create('task', task),
    remaining: () => remainingBudget(transaction),
  };
}

export const replicatedController: Controller = {
  name: 'replicated',
  *dirtyKeys(commit: StoreCommit) {
    for (const event of commit.events) {
      if (event.kind === 'service') yield event.object.meta?.id ?? '';
      if (event.kind === 'task' && !agentProgress(event)) yield event.object.serviceId;
      // A node drained or relabelled: every service may have a task there that must move.
      if (event.kind === 'node') yield EVERY_SERVICE;
    }
  },
  allKeys(reader: StoreReader) {
    const ids = new Set(reader.list('service').map((service) => service.meta?.id ?? ''));
    for (const task of reader.list('task')) ids.add(task.serviceId);
    return ids;
  },
  reconcile(keys: ReadonlySet<string>, transaction: WriteTransaction, reader: StoreReader, nowMs: number, finished: Set<string>) {
    return reconcileServices(keys, transactionWriter(transaction), reader, nowMs, finished);
  },
};

/** The replicated controller's run over `keys` (service ids, or EVERY_SERVICE), writing through `writer`. */
export function reconcileServices(keys: ReadonlySet<string>, writer: TaskWriter, reader: StoreReader, nowMs: number, finished: Set<string>): number | undefined {
  let wakeAtMs: number | undefined;
  const nodes = reader.list('node');
  const drained = nodes.filter((node) => node.spec?.availability === NodeAvailability.NODE_AVAILABILITY_DRAIN).map((node) => node.meta?.id ?? '');
  const serviceIds = keys.has(EVERY_SERVICE) ? new Set(replicatedController.allKeys(reader)) : keys;
  let all = true;
  for (const serviceId of serviceIds) {
    if (writer.remaining() <= 0) {
      all = false;
      break; // the runner runs the unfinished keys again
    }
    const service = reader.get('service', serviceId);
    if (service !== undefined && service.spec?.mode?.$case !== 'replicated') {
      finished.add(serviceId);
      continue;
    }
    // Tasks move off drained nodes and off nodes that no longer meet the constraints.
    const misfits = service?.spec?.taskTemplate?.placement?.constraints.length ? nodes.filter((node) => !meetsPlacementConstraints(service.spec, node)).map((node) => node.meta?.id ?? '') : [];
    const mustMove = new Set([...drained, ...misfits]);
    const actions = reconcileReplicated(service, reader.tasksByService(serviceId), nowMs, newObjectId, mustMove);
    // Updates first (they free slots and nodes), then creates, within this run's budget.
    const fits = actions.update.length + actions.create.length <= writer.remaining();
    for (const task of actions.update.slice(0, writer.remaining())) writer.update(task);
    for (const task of actions.create.slice(0, Math.max(0, writer.remaining()))) writer.create(task);
    if (actions.wakeAtMs !== undefined) wakeAtMs = Math.min(wakeAtMs ?? actions.wakeAtMs, actions.wakeAtMs);
    if (fits) finished.add(serviceId);
    else all = false;
  }
  if (all && keys.has(EVERY_SERVICE)) finished.add(EVERY_SERVICE);
  return wakeAtMs;
}
