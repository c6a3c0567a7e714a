/**
 * Rebalancing a replicated service (moby#24103): when its running tasks are spread over the
 * eligible nodes unevenly by more than one, move tasks from the fullest nodes, a batch at a
 * time (the update config's parallelism, default 1), start-first: the replacement for a slot
 * is created first and placed by the scheduler (which spreads), and the old task stops only
 * once its replacement runs, so the service never has fewer tasks running. Pure.
 */
import type { Service, Task } from '../../proto/skiff/v1/objects.js';
import { TaskState } from '../../proto/skiff/v1/types.js';
import { isTerminal } from '../../proto/task-states.js';
import { newTask } from './task-factory.js';

export interface RebalancePlan {
  create: Task[];
  /** Old tasks whose replacement runs: to stop. */
  update: Task[];
  /** Spread is even (max - min <= 1 over eligible nodes) and nothing is moving. */
  balanced: boolean;
}

const live = (task: Task): boolean => task.desiredState <= TaskState.TASK_STATE_RUNNING && !isTerminal(task.status?.state ?? TaskState.TASK_STATE_NEW);

export function planRebalance(service: Service, tasks: readonly Task[], eligibleNodes: readonly string[], nowMs: number, newId: () => string): RebalancePlan {
  const plan: RebalancePlan = { create: [], update: [], balanced: false };
  const bySlot = new Map<number, Task[]>();
  for (const task of tasks.filter(live)) bySlot.set(task.slot, [...(bySlot.get(task.slot) ?? []), task]);
  // Moves in flight: a slot with two live tasks. Finish them before starting others.
  let moving = 0;
  for (const group of bySlot.values()) {
    if (group.length < 2) continue;
    group.sort((a, b) => (a.meta?.createdAtMs ?? 0) - (b.meta?.createdAtMs ?? 0));
    const replacement = group.at(-1);
    if (replacement?.status?.state === TaskState.TASK_STATE_RUNNING) {
      for (const old of group.slice(0, -1)) plan.update.push({ ...old, desiredState: TaskState.TASK_STATE_SHUTDOWN });
    } else {
      moving += 1;
    }
  }
  if (moving > 0 || plan.update.length > 0 || eligibleNodes.length === 0) return plan;

  const counts = new Map(eligibleNodes.map((id) => [id, 0]));
  const movable: Task[] = [];
  for (const [, group] of bySlot) {
    const task = group[0];
    if (task === undefined || task.status?.state !== TaskState.TASK_STATE_RUNNING) return plan; // wait until every slot runs
    if (counts.has(task.nodeId)) counts.set(task.nodeId, (counts.get(task.nodeId) ?? 0) + 1);
    movable.push(task);
  }
  const values = [...counts.values()];
  const max = Math.max(...values);
  const min = Math.min(...values);
  if (max - min <= 1) {
    plan.balanced = true;
    return plan;
  }
  const parallelism = Math.max(1, service.spec?.updateConfig?.parallelism ?? 1);
  // From the fullest nodes, highest slot first; never so many that a node drops below the floor.
  const floor = Math.floor(movable.length / eligibleNodes.length);
  const batch: Task[] = [];
  while (batch.length < parallelism) {
    const [fullest, count] = [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0] ?? ['', 0];
    if (count <= floor + 1 && count - Math.min(...counts.values()) <= 1) break;
    const victim = movable.filter((task) => task.nodeId === fullest && !batch.includes(task)).sort((a, b) => b.slot - a.slot)[0];
    if (victim === undefined) break;
    batch.push(victim);
    counts.set(fullest, count - 1);
  }
  for (const old of batch) plan.create.push(newTask(service, old.slot, nowMs, newId()));
  return plan;
}
