/**
 * Facts about task states that every part must agree on: their order (observed state only moves
 * forward), which are terminal, and their user-facing names.
 */
import { HealthState, TaskState } from './skiff/v1/types.js';

/** States after which a task never runs again. */
export function isTerminal(state: TaskState): boolean {
  return state >= TaskState.TASK_STATE_COMPLETE;
}

/** True when moving the observed state from `from` to `to` is allowed (forward only). */
export function isForward(from: TaskState, to: TaskState): boolean {
  return to > from;
}

const NAMES: Record<TaskState, string> = {
  [TaskState.TASK_STATE_NEW]: 'new',
  [TaskState.TASK_STATE_PENDING]: 'pending',
  [TaskState.TASK_STATE_ASSIGNED]: 'assigned',
  [TaskState.TASK_STATE_ACCEPTED]: 'accepted',
  [TaskState.TASK_STATE_PREPARING]: 'preparing',
  [TaskState.TASK_STATE_READY]: 'ready',
  [TaskState.TASK_STATE_STARTING]: 'starting',
  [TaskState.TASK_STATE_RUNNING]: 'running',
  [TaskState.TASK_STATE_COMPLETE]: 'complete',
  [TaskState.TASK_STATE_SHUTDOWN]: 'shutdown',
  [TaskState.TASK_STATE_FAILED]: 'failed',
  [TaskState.TASK_STATE_REJECTED]: 'rejected',
  [TaskState.TASK_STATE_REMOVE]: 'remove',
  [TaskState.TASK_STATE_ORPHANED]: 'orphaned',
  [TaskState.UNRECOGNIZED]: 'unknown',
};

/** Lower-case name as shown by the CLI: "running", "failed", ... */
export function taskStateName(state: TaskState): string {
  return NAMES[state];
}

/** A task's health as the CLIs show it: '' without a health check. */
export type TaskHealth = '' | 'starting' | 'healthy' | 'unhealthy';

const HEALTH_NAMES: Record<HealthState, TaskHealth> = {
  [HealthState.HEALTH_STATE_NONE]: '',
  [HealthState.HEALTH_STATE_STARTING]: 'starting',
  [HealthState.HEALTH_STATE_HEALTHY]: 'healthy',
  [HealthState.HEALTH_STATE_UNHEALTHY]: 'unhealthy',
  [HealthState.UNRECOGNIZED]: '',
};

/** Lower-case health name: "starting", "healthy", "unhealthy", or '' without a check. */
export function healthStateName(state: HealthState): TaskHealth {
  return HEALTH_NAMES[state];
}
