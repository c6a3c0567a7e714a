/**
 * What one session has told its agent of each task, so that a change the agent needs nothing
 * from is not sent. Above all the echo of the agent's own status report: a task that runs is
 * reported RUNNING, committed, and came back to the agent as an incremental assignment, which
 * doubled the dispatcher's messages (and the agent's decoding) for every task start. As swarmkit's
 * dispatcher does: an update whose task is past ASSIGNED and equal to the one sent but for its
 * meta, status and host-bridge address is recorded and not sent. States up to ASSIGNED are the managers' to set, so
 * such tasks always go.
 *
 * Holds the store's own (immutable) task objects, so it costs a map entry per task, not a copy.
 */
import { HOST_BRIDGE_NETWORK } from '../../common/address.js';
import type { Task } from '../../proto/skiff/v1/objects.js';
import { TaskState } from '../../proto/skiff/v1/types.js';

export class SentTasks {
  private readonly tasks = new Map<string, Task>();

  /** The full assignment set went out. */
  reset(tasks: readonly Task[]): void {
    this.tasks.clear();
    for (const task of tasks) this.tasks.set(task.meta?.id ?? '', task);
  }

  /** Whether this created or updated task must go to the agent; it counts as known either way. */
  mustSend(task: Task): boolean {
    const id = task.meta?.id ?? '';
    const before = this.tasks.get(id);
    this.tasks.set(id, task);
    if (before === undefined) return true;
    if ((task.status?.state ?? TaskState.TASK_STATE_NEW) <= TaskState.TASK_STATE_ASSIGNED) return true;
    return !tasksEqualStable(before, task);
  }

  removed(taskId: string): void {
    this.tasks.delete(taskId);
  }

  get size(): number {
    return this.tasks.size;
  }
}

/**
 * Equal in everything but what the agent itself reports or the store stamps: `meta` (versions,
 * times), `status`, and the host-bridge attachment (the agent's address report).
 */
export function tasksEqualStable(a: Task, b: Task): boolean {
  const stable = (task: Task): Task => ({ ...task, meta: undefined, status: undefined, networks: task.networks.filter((attachment) => attachment.network !== HOST_BRIDGE_NETWORK) });
  return dataEqual(stable(a), stable(b));
}

/** Structural equality of decoded protobuf data: primitives, arrays, byte arrays, plain objects. */
function dataEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    return a instanceof Uint8Array && b instanceof Uint8Array && a.length === b.length && a.every((byte, index) => byte === b[index]);
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((item, index) => dataEqual(item, b[index]));
  }
  const left = a as Record<string, unknown>;
  const right = b as Record<string, unknown>;
  const keys = new Set([...Object.keys(left), ...Object.keys(right)]);
  for (const key of keys) if (!dataEqual(left[key], right[key])) return false;
  return true;
}
