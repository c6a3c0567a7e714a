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
 *
 * A task is "fresh" when it runs the service's current template: made from this spec version, or
 * from an identical template (so a rollback replaces only the tasks the update had changed).
 *
 * blue-green: the whole new (green) set starts beside the old (blue) one, with no traffic; once
 * every green task runs (healthy), the service's active color moves to green in one write, which
 * every host applies as one load-balancer change; blue stays for the hold, then goes. Green that
 * fails (or cannot be placed) before the switch is removed and blue is untouched.
 * canary: K new tasks start beside the old ones and share the traffic; `promote` carries on as a
 * rolling update, `rollback` removes them.
 */
import type { Service, Task, UpdateStatus } from '../../proto/skiff/v1/objects.js';
import type { UpdateConfig } from '../../proto/skiff/v1/specs.js';
import { TaskState } from '../../proto/skiff/v1/types.js';
import { isTerminal } from '../../proto/task-states.js';
import { newTask } from './task-factory.js';

export type UpdateState = 'updating' | 'paused' | 'completed' | 'rollback_started' | 'rollback_paused' | 'rollback_completed' | 'canary';

/** How long blue stays after the switch when the spec does not say. */
export const DEFAULT_BLUEGREEN_HOLD_MS = 60_000;

/** The two colors of a blue/green service; tasks made before any blue/green update count as blue. */
export function colorOf(task: Task): string {
  return task.color || 'blue';
}

export function activeColorOf(service: Service): string {
  return service.activeColor || 'blue';
}

/** Whether a task may receive the service's traffic (the load balancer and DNS use it): blue/green services serve from their active color only. */
export function servesTraffic(service: Service | undefined, task: Task): boolean {
  if (service?.spec?.deployStrategy !== 'blue-green') return true;
  return colorOf(task) === activeColorOf(service);
}

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
  return { ...service, updateStatus: { state, message, startedAtMs, completedAtMs: done ? nowMs : 0, switchedAtMs: service.updateStatus?.switchedAtMs ?? 0 } };
}

/** Time a task reached RUNNING, as its status records (the agent's report). */
function runningSinceMs(task: Task): number | undefined {
  return observed(task) === TaskState.TASK_STATE_RUNNING ? (task.status?.timestampMs ?? 0) : undefined;
}

export function planUpdate(service: Service, tasks: readonly Task[], nowMs: number, newId: () => string): UpdatePlan {
  const plan: UpdatePlan = { create: [], update: [], service: undefined, wakeAtMs: undefined };
  const status = service.updateStatus;
  const state = (status?.state ?? '') as UpdateState | '';
  if (state !== 'updating' && state !== 'rollback_started' && state !== 'canary') return plan;
  const rollback = isRollback(status);
  const config = effectiveUpdateConfig(service);
  const startedAtMs = status?.startedAtMs ?? 0;
  const template = JSON.stringify(service.spec?.taskTemplate ?? null);
  const isFresh = (task: Task): boolean => task.specVersion === service.specVersion || JSON.stringify(task.spec ?? null) === template;
  const strategy = rollback ? 'rolling' : service.spec?.deployStrategy || 'rolling';
  if (strategy === 'blue-green') return planBlueGreen(service, tasks, nowMs, newId, isFresh, plan);

  const slots = new Map<string, Task[]>();
  for (const task of tasks.filter(live)) slots.set(slotKey(task), [...(slots.get(slotKey(task)) ?? []), task]);
  for (const group of slots.values()) group.sort((a, b) => (a.meta?.createdAtMs ?? 0) - (b.meta?.createdAtMs ?? 0));

  // Failures: tasks of this version, made during this update, that failed.
  const failed = tasks.filter((task) => isFresh(task) && (task.meta?.createdAtMs ?? 0) >= startedAtMs && failedState(task));
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
        updateStatus: { state: 'rollback_started', message: `rollback started: update failed: ${why}`, startedAtMs: nowMs, completedAtMs: 0, switchedAtMs: 0 },
      };
    } else {
      plan.service = withStatus(service, 'paused', `update paused: ${why}`, nowMs, false);
    }
    return plan;
  }
  if (state === 'canary') return planCanary(service, slots, nowMs, newId, isFresh, plan);

  let inFlight = 0;
  let lastDoneAtMs = 0;
  const dirty: Array<{ key: string; old: Task }> = [];
  for (const [key, group] of slots) {
    const fresh = group.filter(isFresh);
    const stale = group.filter((task) => !isFresh(task));
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
    const replacement = replacementFor(service, old, nowMs, newId);
    if (config.order === 'start-first') {
      plan.create.push(replacement);
    } else {
      plan.update.push({ ...old, desiredState: TaskState.TASK_STATE_SHUTDOWN });
      plan.create.push({ ...replacement, replacesTaskId: old.meta?.id ?? '' });
    }
  }
  return plan;
}

const failedState = (task: Task): boolean => observed(task) === TaskState.TASK_STATE_FAILED || observed(task) === TaskState.TASK_STATE_REJECTED;

/** A new task of the current spec for the slot (or node, for a global service) of `old`. */
function replacementFor(service: Service, old: Task, nowMs: number, newId: () => string): Task {
  const made = newTask(service, old.slot, nowMs, newId());
  if (old.slot !== 0) return made;
  // A global service's task belongs to its node: assigned there directly, as the global orchestrator does.
  return { ...made, nodeId: old.nodeId, status: made.status === undefined ? undefined : { ...made.status, state: TaskState.TASK_STATE_ASSIGNED, message: 'global task assigned to its node' } };
}

/** Canary phase: K new tasks beside the old ones (start-first, the old ones keep serving) until promote or rollback. */
function planCanary(service: Service, slots: ReadonlyMap<string, Task[]>, nowMs: number, newId: () => string, isFresh: (task: Task) => boolean, plan: UpdatePlan): UpdatePlan {
  const wanted = Math.max(1, service.spec?.canaryReplicas ?? 1);
  const canaries = [...slots.values()].flat().filter(isFresh);
  const candidates = [...slots.values()]
    .filter((group) => !group.some(isFresh))
    .map((group) => group.at(-1))
    .filter((task): task is Task => task !== undefined)
    .sort((a, b) => a.slot - b.slot || a.nodeId.localeCompare(b.nodeId));
  for (const old of candidates.slice(0, Math.max(0, wanted - canaries.length))) plan.create.push(replacementFor(service, old, nowMs, newId));
  const running = canaries.filter((task) => observed(task) === TaskState.TASK_STATE_RUNNING).length;
  const name = service.spec?.name ?? '';
  const message = `canary: ${running}/${wanted} new-version tasks serve beside the old ones; skiff service promote ${name} continues the update, skiff service rollback ${name} removes them`;
  if (service.updateStatus?.message !== message) plan.service = withStatus(service, 'canary', message, nowMs, false);
  return plan;
}

/** Blue/green: start green beside blue, switch the active color when all of green runs, remove the other set after the hold. */
function planBlueGreen(service: Service, tasks: readonly Task[], nowMs: number, newId: () => string, isFresh: (task: Task) => boolean, plan: UpdatePlan): UpdatePlan {
  const status = service.updateStatus;
  const startedAtMs = status?.startedAtMs ?? 0;
  const holdMs = service.spec?.bluegreenHoldMs || DEFAULT_BLUEGREEN_HOLD_MS;
  const liveTasks = tasks.filter(live);
  const green = liveTasks.filter(isFresh);
  const blue = liveTasks.filter((task) => !isFresh(task));
  const active = activeColorOf(service);
  if ((status?.switchedAtMs ?? 0) === 0) {
    const newColor = green[0] !== undefined ? colorOf(green[0]) : active === 'blue' ? 'green' : 'blue';
    const failedGreen = tasks.find((task) => isFresh(task) && (task.meta?.createdAtMs ?? 0) >= startedAtMs && failedState(task));
    const unplaced = green.find((task) => observed(task) === TaskState.TASK_STATE_PENDING && (task.status?.err ?? '') !== '');
    if (failedGreen !== undefined || unplaced !== undefined) {
      for (const task of green) plan.update.push({ ...task, desiredState: TaskState.TASK_STATE_SHUTDOWN });
      const reason = failedGreen !== undefined
        ? `${newColor} task ${failedGreen.meta?.id ?? ''} failed before the switch: ${failedGreen.status?.err || failedGreen.status?.message || 'no reason given'}`
        : `cannot start the ${newColor} set beside ${active}: ${unplaced?.status?.err ?? ''}`;
      plan.service = withStatus(service, 'paused', `update paused: ${reason}; ${newColor} removed, ${active} untouched`, nowMs, false);
      return plan;
    }
    const covered = new Set(green.map(slotKey));
    for (const old of blue) {
      if (covered.has(slotKey(old))) continue;
      covered.add(slotKey(old));
      plan.create.push({ ...replacementFor(service, old, nowMs, newId), color: newColor });
    }
    if (plan.create.length > 0 || green.length === 0) return plan;
    if (green.every((task) => observed(task) === TaskState.TASK_STATE_RUNNING)) {
      const other = newColor === 'blue' ? 'green' : 'blue';
      plan.service = {
        ...service,
        activeColor: newColor,
        updateStatus: {
          state: 'updating',
          message: `traffic switched to ${newColor}; ${other} stays until ${new Date(nowMs + holdMs).toISOString()} (skiff service switch ${service.spec?.name ?? ''} ${other} moves it back)`,
          startedAtMs,
          completedAtMs: 0,
          switchedAtMs: nowMs,
        },
      };
      plan.wakeAtMs = nowMs + holdMs;
    }
    return plan;
  }
  const endsAtMs = (status?.switchedAtMs ?? 0) + holdMs;
  if (nowMs < endsAtMs) {
    plan.wakeAtMs = endsAtMs;
    return plan;
  }
  for (const task of liveTasks) if (colorOf(task) !== active) plan.update.push({ ...task, desiredState: TaskState.TASK_STATE_SHUTDOWN });
  if (liveTasks.some((task) => colorOf(task) === active && isFresh(task))) {
    plan.service = withStatus(service, 'completed', `update completed: ${active} serves; the other set was removed after the hold`, nowMs, true);
  } else {
    // Switched back during the hold: the old set stays, so the old spec is the service's again.
    plan.service = {
      ...service,
      spec: service.previousSpec,
      previousSpec: service.spec,
      specVersion: service.specVersion + 1,
      updateStatus: { state: 'rollback_completed', message: `switched back to ${active} during the hold; the new set was removed`, startedAtMs, completedAtMs: nowMs, switchedAtMs: status?.switchedAtMs ?? 0 },
    };
  }
  return plan;
}
