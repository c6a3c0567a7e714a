// What happens to a node's tasks when the node is gone (down, or removed from the cluster).
import { TaskState } from '../../proto/skiff/v1/types.js';
import { isTerminal } from '../../proto/task-states.js';
import type { StoreReader, WriteTransaction } from '../store/store.js';

/**
 * Marks every live task of `nodeId` ORPHANED in `transaction`, so the orchestrator replaces it
 * elsewhere. Tasks already told to stop, already ended, or never reported are left as they are.
 */
export function orphanTasksOfNode(transaction: WriteTransaction, reader: StoreReader, nodeId: string, nowMs: number, message: string, err: string): void {
  for (const task of reader.tasksByNode(nodeId)) {
    const state = task.status?.state ?? TaskState.TASK_STATE_NEW;
    if (task.desiredState > TaskState.TASK_STATE_RUNNING || isTerminal(state) || task.status === undefined) continue;
    transaction.update('task', { ...task, status: { ...task.status, state: TaskState.TASK_STATE_ORPHANED, message, err, timestampMs: nowMs } });
  }
}
