/**
 * The rolling updater (DESIGN.md §6): when a service's task template changes (its specVersion
 * moves), replace the tasks of the older versions slot by slot, `parallelism` at a time, waiting
 * `delay` between batches and watching each new task for `monitor` after it runs. A new task
 * that fails counts against `max_failure_ratio`; past it, the failure action pauses, rolls back
 * (to the previous spec, under the rollback config) or carries on. A rollback that fails pauses:
 * it never rolls back again. Pure: (service, its tasks, now) -> writes.
 *
 * start-first: the new task of a slot starts beside the old one, which stops once the new one
 * runs. stop-first: the old task stops and its replacement (`replacesTaskId`) is placed only once
 * the old one has stopped. Global services are updated per node the same way.
 */
import type { Service, Task, UpdateStatus } from '../../proto/skiff/v1/objects.js';
import type { UpdateConfig } from '../../proto/skiff/v1/specs.js';
import { TaskState } from '../../proto/skiff/v1/types.js';
import { isTerminal } from '../../proto/task-states.js';
import { newTask } from './task-factory.js';

export type UpdateState = 'updating' | 'paused' | 'completed' | 'rollback_started' | 'rollback_paused' | 'rollback_completed';

/** Swarm's defaults: one task at a time, no delay, pause on failure, 5 s monitor, no failures tolerated, stop-first. */
export const DEFAULT_UPDATE_CONFIG: UpdateConfig = { parallelism: 1, delayMs: 0, failureAction: 'pause', monitorMs: 5_000, maxFailureRatio: 0, order: 'stop-first' };
/** A rollback's defaults: the same, but never "rollback" again. */
export const DEFAULT_ROLLBACK_CONFIG: UpdateConfig = { ...DEFAULT_UPDATE_CONFIG, failureAction: 'pause' };

export interface UpdatePlan {
  create: Task[];
  update: Task[];
  /** The service with a new update status (and, for an automatic rollback, its previous spec). */
  service: Service | undefined;
  wakeAtMs: number | undefined;
}

const observed = (task: Task): TaskState => task.status?.state ?? TaskState.TASK_STATE_NEW;
const live = (task: Task): boolean => task.desiredState <= TaskState.TASK_STATE_RUNNING && !isTerminal(observed(task));

export function isRollback(status: UpdateStatus | undefined): boolean {
  return status?.state.startsWith('rollback') === true;
}

/** The update config in force: the rollback config during a rollback; unset fields take the defaults. */
export function effectiveUpdateConfig(service: Service): UpdateConfig {
  const rollback = isRollback(service.updateStatus);
  const given = rollback ? service.spec?.rollbackConfig : service.spec?.updateConfig;
  const defaults = rollback ? DEFAULT_ROLLBACK_CONFIG : DEFAULT_UPDATE_CONFIG;
  if (given === undefined) return defaults;
  return {
    parallelism: given.parallelism,
    delayMs: given.delayMs,
    failureAction: given.failureAction || defaults.failureAction,
    monitorMs: given.monitorMs || defaults.monitorMs,
    maxFailureRatio: given.maxFailureRatio,
    order: given.order || defaults.order,
  };
}

/** Slot key: the slot number, or the node for a global service (whose tasks all have slot 0). */
function slotKey(task: Task): string {
  return task.slot === 0 ? `node:${task.nodeId}` : String(task.slot);
}

function withStatus(service: Service, state: UpdateState, message: string, nowMs: number, done: boolean): Service {
  const startedAtMs = service.updateStatus?.startedAtMs ?? nowMs;
  return { ...service, updateStatus: { state, message, startedAtMs, completedAtMs: done ? nowMs : 0 } };
}

/** Time a task reached RUNNING, as its status records (the agent's report). */
function runningSinceMs(task: Task): number | undefined {
  return observed(task) === TaskState.TASK_STATE_RUNNING ? (task.status?.timestampMs ?? 0) : undefined;
}

export function planUpdate(service: Service, tasks: readonly Task[], nowMs: number, newId: () => string): UpdatePlan {
  const plan: UpdatePlan = { create: [], update: [], service: undefined, wakeAtMs: undefined };
  const status = service.updateStatus;
  const state = (status?.state ?? '') as UpdateState | '';
  if (state !== 'updating' && state !== 'rollback_started') return plan;
  const rollback = isRollback(status);
  const config = effectiveUpdateConfig(service);
  const version = service.specVersion;
  const startedAtMs = status?.startedAtMs ?? 0;

  const slots = new Map<string, Task[]>();
  for (const task of tasks.filter(live)) slots.set(slotKey(task), [...(slots.get(slotKey(task)) ?? []), task]);
  for (const group of slots.values()) group.sort((a, b) => (a.meta?.createdAtMs ?? 0) - (b.meta?.createdAtMs ?? 0));

  // Failures: tasks of this version, made during this update, that failed.
  const failed = tasks.filter(
    (task) => task.specVersion === version && (task.meta?.createdAtMs ?? 0) >= startedAtMs && (observed(task) === TaskState.TASK_STATE_FAILED || observed(task) === TaskState.TASK_STATE_REJECTED),
  );
  const total = Math.max(1, slots.size);
  if (failed.length > 0 && config.failureAction !== 'continue' && failed.length / total > config.maxFailureRatio) {
    const first = failed[0];
    const why = `task ${first?.meta?.id ?? ''} failed: ${first?.status?.err || first?.status?.message || 'no reason given'}`;
    if (rollback) {
      plan.service = withStatus(service, 'rollback_paused', `rollback paused: ${why}`, nowMs, false);
    } else if (config.failureAction === 'rollback' && service.previousSpec !== undefined) {
      plan.service = {
        ...service,
        spec: service.previousSpec,
        previousSpec: service.spec,
        specVersion: service.specVersion + 1,
        updateStatus: { state: 'rollback_started', message: `rollback started: update failed: ${why}`, startedAtMs: nowMs, completedAtMs: 0 },
      };
    } else {
      plan.service = withStatus(service, 'paused', `update paused: ${why}`, nowMs, false);
    }
    return plan;
  }

  let inFlight = 0;
  let lastDoneAtMs = 0;
  const dirty: Array<{ key: string; old: Task }> = [];
  for (const [key, group] of slots) {
    const fresh = group.filter((task) => task.specVersion === version);
    const stale = group.filter((task) => task.specVersion !== version);
    const newest = fresh.at(-1);
    if (newest === undefined) {
      const old = stale.at(-1);
      if (old !== undefined) dirty.push({ key, old });
      continue;
    }
    const since = runningSinceMs(newest);
    if (since === undefined) {
      inFlight += 1; // the new task is not running yet (stale ones keep serving under start-first)
      continue;
    }
    // The new task runs: the old ones of the slot stop now.
    for (const old of stale) plan.update.push({ ...old, desiredState: TaskState.TASK_STATE_SHUTDOWN });
    if ((newest.meta?.createdAtMs ?? 0) >= startedAtMs) {
      const doneAt = since + config.monitorMs;
      if (doneAt > nowMs) {
        inFlight += 1;
        plan.wakeAtMs = Math.min(plan.wakeAtMs ?? doneAt, doneAt);
      } else {
        lastDoneAtMs = Math.max(lastDoneAtMs, doneAt);
      }
    }
  }
  if (dirty.length === 0 && inFlight === 0) {
    plan.service = withStatus(service, rollback ? 'rollback_completed' : 'completed', rollback ? 'rollback completed' : 'update completed', nowMs, true);
    return plan;
  }
  const room = (config.parallelism === 0 ? Number.POSITIVE_INFINITY : config.parallelism) - inFlight;
  if (room <= 0 || dirty.length === 0) return plan;
  if (config.delayMs > 0 && lastDoneAtMs > 0 && lastDoneAtMs + config.delayMs > nowMs) {
    const at = lastDoneAtMs + config.delayMs;
    plan.wakeAtMs = Math.min(plan.wakeAtMs ?? at, at);
    return plan;
  }
  dirty.sort((a, b) => a.old.slot - b.old.slot || a.key.localeCompare(b.key));
  for (const { old } of dirty.slice(0, room)) {
    const made = newTask(service, old.slot, nowMs, newId());
    // A global service's task belongs to its node: assigned there directly, as the global orchestrator does.
    const replacement: Task = old.slot !== 0 ? made : { ...made, nodeId: old.nodeId, status: made.status === undefined ? undefined : { ...made.status, state: TaskState.TASK_STATE_ASSIGNED, message: 'global task assigned to its node' } };
    if (config.order === 'start-first') {
      plan.create.push(replacement);
    } else {
      plan.update.push({ ...old, desiredState: TaskState.TASK_STATE_SHUTDOWN });
      plan.create.push({ ...replacement, replacesTaskId: old.meta?.id ?? '' });
    }
  }
  return plan;
}
