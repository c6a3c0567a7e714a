/**
 * Restart policy: whether, and when, a slot whose task ended gets a new task. Defaults follow
 * Docker Swarm: condition any, 5 s delay, unlimited attempts.
 */
import type { RestartPolicy } from '../../proto/skiff/v1/specs.js';
import type { Task } from '../../proto/skiff/v1/objects.js';
import { TaskState } from '../../proto/skiff/v1/types.js';

export const DEFAULT_RESTART_DELAY_MS = 5_000;

export type RestartCondition = 'none' | 'on-failure' | 'any';

export interface EffectiveRestartPolicy {
  condition: RestartCondition;
  delayMs: number;
  maxAttempts: number;
  windowMs: number;
}

export function effectiveRestartPolicy(policy: RestartPolicy | undefined): EffectiveRestartPolicy {
  const condition = policy?.condition === 'none' || policy?.condition === 'on-failure' ? policy.condition : 'any';
  return {
    condition,
    delayMs: policy === undefined || policy.delayMs === 0 ? DEFAULT_RESTART_DELAY_MS : policy.delayMs,
    maxAttempts: policy?.maxAttempts ?? 0,
    windowMs: policy?.windowMs ?? 0,
  };
}

/** Did this ended task fail (as opposed to completing or being shut down on purpose)? */
export function endedInFailure(task: Task): boolean {
  const state = task.status?.state ?? TaskState.TASK_STATE_NEW;
  return state === TaskState.TASK_STATE_FAILED || state === TaskState.TASK_STATE_REJECTED || state === TaskState.TASK_STATE_ORPHANED;
}

/**
 * When the slot of `ended` (the newest task of its slot, retired) may get a new task: a time,
 * or undefined for never. `history` is every task of the slot, oldest first.
 */
export function restartAtMs(policy: EffectiveRestartPolicy, ended: Task, history: readonly Task[], nowMs: number): number | undefined {
  if (policy.condition === 'none') return undefined;
  if (policy.condition === 'on-failure' && !endedInFailure(ended)) return undefined;
  if (policy.maxAttempts > 0) {
    const since = policy.windowMs > 0 ? nowMs - policy.windowMs : Number.NEGATIVE_INFINITY;
    // The first task of a slot is not a restart; each later one within the window is.
    const restarts = history.slice(1).filter((task) => (task.meta?.createdAtMs ?? 0) >= since).length;
    if (restarts >= policy.maxAttempts) return undefined;
  }
  // The node failed, not the task: replace it at once, elsewhere (the healing goal is seconds).
  if (ended.status?.state === TaskState.TASK_STATE_ORPHANED) return ended.status.timestampMs;
  return (ended.status?.timestampMs ?? 0) + policy.delayMs;
}
