/**
 * The global orchestrator's reconcile: one task per eligible node. Pure: (service, its tasks,
 * the nodes with whether each may run it, now) -> task writes. A global task is created on its
 * node directly (ASSIGNED); the scheduler never sees it. Restart policy applies per node.
 */
import type { Service, Task } from '../../proto/skiff/v1/objects.js';
import { TaskState } from '../../proto/skiff/v1/types.js';
import { isTerminal } from '../../proto/task-states.js';
import { effectiveRestartPolicy, restartAtMs } from './restart-policy.js';
import type { ReconcileActions } from './replicated.js';
import { newTask } from './task-factory.js';

/** A node as the global orchestrator sees it. */
export interface GlobalNode {
  id: string;
  /** Ready, active (not paused or drained) and meeting the service's constraints: gets a task. */
  eligible: boolean;
  /** Still fits (not drained, constraints met): a task already there may keep running (paused or down nodes keep theirs). */
  keeps: boolean;
}

const isDesiredRunning = (task: Task): boolean => task.desiredState <= TaskState.TASK_STATE_RUNNING;
const observed = (task: Task): TaskState => task.status?.state ?? TaskState.TASK_STATE_NEW;

export function reconcileGlobal(service: Service | undefined, tasks: readonly Task[], nodes: readonly GlobalNode[], nowMs: number, newId: () => string): ReconcileActions {
  const actions: ReconcileActions = { create: [], update: [], wakeAtMs: undefined };
  const live = tasks.filter(isDesiredRunning);
  if (service === undefined || service.spec?.mode?.$case !== 'global') {
    actions.update = live.map((task) => ({ ...task, desiredState: TaskState.TASK_STATE_REMOVE }));
    return actions;
  }
  const policy = effectiveRestartPolicy(service.spec.taskTemplate?.restartPolicy);
  const byNode = new Map<string, Task[]>();
  for (const task of tasks) {
    const history = byNode.get(task.nodeId) ?? [];
    history.push(task);
    byNode.set(task.nodeId, history);
  }
  const known = new Map(nodes.map((node) => [node.id, node]));
  // Tasks on nodes that are gone, or no longer fit (drained, relabelled): the constraint enforcer.
  for (const task of live) {
    const node = known.get(task.nodeId);
    if (node === undefined || !node.keeps) actions.update.push({ ...task, desiredState: TaskState.TASK_STATE_SHUTDOWN });
  }
  for (const node of nodes) {
    if (!node.keeps) continue;
    const history = (byNode.get(node.id) ?? []).sort((a, b) => (a.meta?.createdAtMs ?? 0) - (b.meta?.createdAtMs ?? 0));
    const current = history.filter(isDesiredRunning);
    const running = current.find((task) => !isTerminal(observed(task)));
    for (const ended of current.filter((task) => isTerminal(observed(task)))) actions.update.push({ ...ended, desiredState: TaskState.TASK_STATE_SHUTDOWN });
    if (running !== undefined || !node.eligible) continue;
    const newest = history.at(-1);
    if (newest !== undefined) {
      const restartAt = restartAtMs(policy, newest, history, nowMs);
      if (restartAt === undefined) continue;
      if (restartAt > nowMs) {
        actions.wakeAtMs = Math.min(actions.wakeAtMs ?? restartAt, restartAt);
        continue;
      }
    }
    const task = newTask(service, 0, nowMs, newId());
    actions.create.push({
      ...task,
      nodeId: node.id,
      status: task.status === undefined ? undefined : { ...task.status, state: TaskState.TASK_STATE_ASSIGNED, message: 'global task assigned to its node' },
    });
  }
  return actions;
}
