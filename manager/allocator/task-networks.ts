/** Whether a task has its network addresses yet (the scheduler places only tasks that do). */
import type { Task } from '../../proto/skiff/v1/objects.js';

/** Networks a task's spec asks for (ids). */
export function taskNetworks(task: Task): string[] {
  return task.spec?.networks ?? [];
}

/** True when every network of the task's spec has an address for it: the scheduler may place it. */
export function taskAllocated(task: Task): boolean {
  return taskNetworks(task).every((networkId) => task.networks.some((attachment) => attachment.network === networkId && attachment.addresses.length > 0));
}
