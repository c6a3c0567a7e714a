/**
 * The runtime of a simulated agent: a pure state machine over the tasks one node is assigned. A
 * task whose desired state is RUNNING "starts" at once: it reports every state from ACCEPTED to
 * RUNNING, in order, in one go. A task whose desired state is past RUNNING (SHUTDOWN, REMOVE) stops
 * at once: SHUTDOWN. No I/O and no clock: the caller sends the reports (see fake-agent.ts).
 *
 * Like the real agent, it never reports a state behind one the manager already holds, and it
 * forgets a task the manager no longer assigns (a FULL set without it, or `removed`).
 */
import { type Assignments, AssignmentsKind } from '../../proto/skiff/v1/dispatcher.js';
import type { Task } from '../../proto/skiff/v1/objects.js';
import { TaskState } from '../../proto/skiff/v1/types.js';
import { isTerminal } from '../../proto/task-states.js';

/** One state change the runtime wants the manager to know, in the order it happened. */
export interface StatusReport {
  taskId: string;
  state: TaskState;
}

interface HeldTask {
  desiredState: TaskState;
  /** The furthest observed state: what the manager sent or this runtime reported, whichever is later. */
  observedState: TaskState;
  /** The last state this runtime reported, if any (resent after a new session, as the real agent does). */
  reportedState: TaskState | undefined;
}

/** The states a starting container passes through after the manager assigned it. */
const START_STATES: readonly TaskState[] = [
  TaskState.TASK_STATE_ACCEPTED,
  TaskState.TASK_STATE_PREPARING,
  TaskState.TASK_STATE_READY,
  TaskState.TASK_STATE_STARTING,
  TaskState.TASK_STATE_RUNNING,
];

/** Whether a held task counts toward assignedToRun. */
function toRun(task: HeldTask | undefined): number {
  return task !== undefined && task.desiredState === TaskState.TASK_STATE_RUNNING && task.observedState >= TaskState.TASK_STATE_ASSIGNED ? 1 : 0;
}

export class FakeRuntime {
  private readonly held = new Map<string, HeldTask>();
  /** assignedToRun, kept as tasks change: the bench polls it across a whole fleet many times a second. */
  private toRunCount = 0;

  /** Folds one assignments message in; returns the reports to send, in order. */
  apply(assignments: Assignments): StatusReport[] {
    if (assignments.kind === AssignmentsKind.ASSIGNMENTS_KIND_FULL) {
      const kept = new Set(assignments.updated.map((task) => task.meta?.id ?? ''));
      for (const taskId of [...this.held.keys()]) if (!kept.has(taskId)) this.forget(taskId);
    }
    for (const taskId of assignments.removed) this.forget(taskId);
    const reports: StatusReport[] = [];
    for (const task of assignments.updated) this.step(task, reports);
    return reports;
  }

  /**
   * The last report of every held task, for a new session: reports written to a session that then
   * broke are lost, and a manager still at ASSIGNED would otherwise never hear RUNNING (the real
   * agent's TaskManager.resendAll).
   */
  resend(): StatusReport[] {
    const reports: StatusReport[] = [];
    for (const [taskId, task] of this.held) if (task.reportedState !== undefined) reports.push({ taskId, state: task.reportedState });
    return reports;
  }

  /** Tasks held whose desired state is RUNNING and that the manager assigned (at least ASSIGNED). */
  get assignedToRun(): number {
    return this.toRunCount;
  }

  /** Tasks held, whatever their state. */
  get size(): number {
    return this.held.size;
  }

  private forget(taskId: string): void {
    this.toRunCount -= toRun(this.held.get(taskId));
    this.held.delete(taskId);
  }

  private step(task: Task, reports: StatusReport[]): void {
    const taskId = task.meta?.id ?? '';
    if (taskId === '') throw new Error('assertion failed: an assigned task has no id');
    const known = this.held.get(taskId);
    const held = this.advance(taskId, task, known, reports);
    this.toRunCount += toRun(held) - toRun(known);
  }

  /** The task's new held state (stored), with the reports its change makes. */
  private advance(taskId: string, task: Task, known: HeldTask | undefined, reports: StatusReport[]): HeldTask {
    const managerState = task.status?.state ?? TaskState.TASK_STATE_NEW;
    const held: HeldTask = {
      desiredState: task.desiredState,
      observedState: Math.max(managerState, known?.observedState ?? TaskState.TASK_STATE_NEW),
      reportedState: known?.reportedState,
    };
    this.held.set(taskId, held);
    if (isTerminal(held.observedState)) return held;
    if (held.desiredState <= TaskState.TASK_STATE_RUNNING) {
      for (const state of START_STATES) {
        if (state <= held.observedState) continue;
        reports.push({ taskId, state });
        held.observedState = state;
        held.reportedState = state;
      }
      return held;
    }
    reports.push({ taskId, state: TaskState.TASK_STATE_SHUTDOWN });
    held.observedState = TaskState.TASK_STATE_SHUTDOWN;
    held.reportedState = TaskState.TASK_STATE_SHUTDOWN;
    return held;
  }
}
