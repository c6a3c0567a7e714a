/**
 * The replicated orchestrator's reconcile: (service, its tasks, node load, now) -> the exact
 * task writes that move observed toward desired. Pure: the caller reads the store and writes
 * the result in one transaction.
 *
 * Slots are identities, not a dense range: scale-down removes tasks from the busiest nodes
 * first (highest slot on a tie), and scale-up fills the lowest unused slot numbers.
 */
import type { Service, Task } from '../../proto/skiff/v1/objects.js';
import { TaskState } from '../../proto/skiff/v1/types.js';
import { isTerminal } from '../../proto/task-states.js';
import { effectiveRestartPolicy, restartAtMs } from './restart-policy.js';
import { newTask } from './task-factory.js';

export interface ReconcileActions {
  create: Task[];
  /** Full replacement objects (carrying the version they were read at). */
  update: Task[];
  /** Earliest time at which reconciling again may do more (a restart delay ends), if any. */
  wakeAtMs: number | undefined;
}

const isDesiredRunning = (task: Task): boolean => task.desiredState <= TaskState.TASK_STATE_RUNNING;
const observed = (task: Task): TaskState => task.status?.state ?? TaskState.TASK_STATE_NEW;

function withDesiredState(task: Task, desiredState: TaskState): Task {
  return { ...task, desiredState };
}

/** Groups tasks by slot, each group oldest first. */
function bySlot(tasks: readonly Task[]): Map<number, Task[]> {
  const slots = new Map<number, Task[]>();
  for (const task of tasks) {
    const group = slots.get(task.slot) ?? [];
    group.push(task);
    slots.set(task.slot, group);
  }
  for (const group of slots.values()) group.sort((a, b) => (a.meta?.createdAtMs ?? 0) - (b.meta?.createdAtMs ?? 0) || a.slot - b.slot);
  return slots;
}

/** Reconciles one replicated service. `service` undefined means it was removed. */
export function reconcileReplicated(
  service: Service | undefined,
  tasks: readonly Task[],
  nowMs: number,
  newId: () => string,
  /** Nodes whose tasks must move away now (drained, or no longer meeting the constraints): each such slot is replaced at once. */
  drained: ReadonlySet<string> = new Set(),
): ReconcileActions {
  const actions: ReconcileActions = { create: [], update: [], wakeAtMs: undefined };
  const live = tasks.filter(isDesiredRunning);
  const mode = service?.spec?.mode;
  if (service === undefined || mode?.$case !== 'replicated') {
    actions.update = live.map((task) => withDesiredState(task, TaskState.TASK_STATE_REMOVE));
    return actions;
  }
  const replicas = mode.value.replicas;
  const policy = effectiveRestartPolicy(service.spec?.taskTemplate?.restartPolicy);
  // slot -> its live task; 'waiting' while a restart delay runs; 'done' when the restart policy
  // says the slot ends here (it still counts toward replicas, as in Swarm).
  const occupied = new Map<number, SlotState>();
  const retiring = new Set<string>();
  const replaceNow = new Set<number>();
  const slots = bySlot(tasks);
  for (const [slot, history] of slots) {
    const current = history.filter(isDesiredRunning);
    const running = current.find((task) => !isTerminal(observed(task)));
    for (const ended of current.filter((task) => isTerminal(observed(task)))) {
      actions.update.push(withDesiredState(ended, TaskState.TASK_STATE_SHUTDOWN));
      retiring.add(ended.meta?.id ?? '');
    }
    if (running !== undefined && running.nodeId !== '' && drained.has(running.nodeId)) {
      // Drain: stop it there and start the slot elsewhere now, whatever the restart policy says.
      actions.update.push(withDesiredState(running, TaskState.TASK_STATE_SHUTDOWN));
      occupied.set(slot, 'waiting');
      replaceNow.add(slot);
      continue;
    }
    if (running !== undefined) {
      occupied.set(slot, running);
      continue;
    }
    const newest = history.at(-1);
    const wasRetiredForRestart =
      newest !== undefined &&
      (retiring.has(newest.meta?.id ?? '') || newest.desiredState === TaskState.TASK_STATE_SHUTDOWN);
    if (newest === undefined || !wasRetiredForRestart) continue;
    const restartAt = restartAtMs(policy, newest, history, nowMs);
    occupied.set(slot, restartAt === undefined ? 'done' : 'waiting');
  }

  if (occupied.size > replicas) {
    scaleDown(occupied, occupied.size - replicas, actions);
  }
  // Refill slots whose restart delay has passed.
  for (const [slot, state] of occupied) {
    if (state !== 'waiting') continue;
    if (replaceNow.has(slot)) {
      actions.create.push(newTask(service, slot, nowMs, newId()));
      continue;
    }
    const history = slots.get(slot) ?? [];
    const newest = history.at(-1);
    const restartAt = newest === undefined ? nowMs : restartAtMs(policy, newest, history, nowMs);
    if (restartAt === undefined) continue;
    if (restartAt <= nowMs) actions.create.push(newTask(service, slot, nowMs, newId()));
    else actions.wakeAtMs = Math.min(actions.wakeAtMs ?? restartAt, restartAt);
  }
  let nextSlot = 1;
  for (let missing = replicas - occupied.size; missing > 0; missing -= 1) {
    while (occupied.has(nextSlot)) nextSlot += 1;
    occupied.set(nextSlot, 'waiting');
    actions.create.push(newTask(service, nextSlot, nowMs, newId()));
  }
  return actions;
}

type SlotState = Task | 'waiting' | 'done';

/** Removes `count` slots: ended and waiting slots first, then tasks on the busiest nodes. */
function scaleDown(occupied: Map<number, SlotState>, count: number, actions: ReconcileActions): void {
  let remaining = count;
  for (const [slot, state] of [...occupied].sort((a, b) => b[0] - a[0])) {
    if (remaining === 0) return;
    if (typeof state !== 'string') continue;
    occupied.delete(slot);
    remaining -= 1;
  }
  while (remaining > 0) {
    const perNode = new Map<string, Task[]>();
    for (const task of occupied.values()) {
      if (typeof task === 'string') continue;
      const group = perNode.get(task.nodeId) ?? [];
      group.push(task);
      perNode.set(task.nodeId, group);
    }
    // Unassigned tasks ('' node) cost nothing to drop, so they count as the busiest.
    const [, victims] = [...perNode].sort(
      (a, b) => Number(b[0] === '') - Number(a[0] === '') || b[1].length - a[1].length || Math.max(...b[1].map((t) => t.slot)) - Math.max(...a[1].map((t) => t.slot)),
    )[0] ?? ['', []];
    const victim = victims.sort((a, b) => b.slot - a.slot)[0];
    if (victim === undefined) throw new Error('assertion failed: scale-down found nothing to remove');
    occupied.delete(victim.slot);
    actions.update.push(withDesiredState(victim, TaskState.TASK_STATE_REMOVE));
    remaining -= 1;
  }
}
