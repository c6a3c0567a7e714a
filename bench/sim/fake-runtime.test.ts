import { describe, expect, it } from 'vitest';
import { type Assignments, AssignmentsKind } from '../../proto/skiff/v1/dispatcher.js';
import type { Task } from '../../proto/skiff/v1/objects.js';
import { HealthState, TaskState } from '../../proto/skiff/v1/types.js';
import { FakeRuntime } from './fake-runtime.js';

function task(id: string, desiredState: TaskState, state: TaskState = TaskState.TASK_STATE_ASSIGNED): Task {
  return {
    meta: { id, version: 1, createdAtMs: 0, updatedAtMs: 0 },
    desiredState,
    status: { state, message: '', err: '', timestampMs: 0, exitCode: 0, containerId: '', pid: 0, health: HealthState.HEALTH_STATE_NONE },
  } as Task;
}

function assignments(kind: AssignmentsKind, updated: Task[], removed: string[] = []): Assignments {
  return { kind, updated, removed, secrets: [], configs: [] };
}

const FULL = AssignmentsKind.ASSIGNMENTS_KIND_FULL;
const INCREMENTAL = AssignmentsKind.ASSIGNMENTS_KIND_INCREMENTAL;
const START = [TaskState.TASK_STATE_ACCEPTED, TaskState.TASK_STATE_PREPARING, TaskState.TASK_STATE_READY, TaskState.TASK_STATE_STARTING, TaskState.TASK_STATE_RUNNING];

describe('FakeRuntime', () => {
  it('fake runtime starts an assigned task at once, through every state up to running', () => {
    const runtime = new FakeRuntime();
    const reports = runtime.apply(assignments(FULL, [task('a', TaskState.TASK_STATE_RUNNING)]));
    expect(reports).toEqual(START.map((state) => ({ taskId: 'a', state })));
    expect(runtime.assignedToRun).toBe(1);
  });

  it('fake runtime reports nothing again for a task it already started', () => {
    const runtime = new FakeRuntime();
    runtime.apply(assignments(FULL, [task('a', TaskState.TASK_STATE_RUNNING)]));
    expect(runtime.apply(assignments(INCREMENTAL, [task('a', TaskState.TASK_STATE_RUNNING, TaskState.TASK_STATE_RUNNING)]))).toEqual([]);
    // A new session's FULL set still carries ASSIGNED (the report was not applied yet): no step back.
    expect(runtime.apply(assignments(FULL, [task('a', TaskState.TASK_STATE_RUNNING)]))).toEqual([]);
  });

  it('fake runtime continues from the state the manager holds', () => {
    const runtime = new FakeRuntime();
    expect(runtime.apply(assignments(FULL, [task('a', TaskState.TASK_STATE_RUNNING, TaskState.TASK_STATE_READY)]))).toEqual([
      { taskId: 'a', state: TaskState.TASK_STATE_STARTING },
      { taskId: 'a', state: TaskState.TASK_STATE_RUNNING },
    ]);
  });

  it('fake runtime shuts a task down when its desired state is shutdown or remove, once', () => {
    const runtime = new FakeRuntime();
    runtime.apply(assignments(FULL, [task('a', TaskState.TASK_STATE_RUNNING), task('b', TaskState.TASK_STATE_RUNNING)]));
    const reports = runtime.apply(assignments(INCREMENTAL, [task('a', TaskState.TASK_STATE_SHUTDOWN, TaskState.TASK_STATE_RUNNING), task('b', TaskState.TASK_STATE_REMOVE, TaskState.TASK_STATE_RUNNING)]));
    expect(reports).toEqual([
      { taskId: 'a', state: TaskState.TASK_STATE_SHUTDOWN },
      { taskId: 'b', state: TaskState.TASK_STATE_SHUTDOWN },
    ]);
    expect(runtime.assignedToRun).toBe(0);
    expect(runtime.apply(assignments(INCREMENTAL, [task('a', TaskState.TASK_STATE_SHUTDOWN, TaskState.TASK_STATE_SHUTDOWN)]))).toEqual([]);
  });

  it('fake runtime never reports for a task that already ended', () => {
    const runtime = new FakeRuntime();
    expect(runtime.apply(assignments(FULL, [task('a', TaskState.TASK_STATE_SHUTDOWN, TaskState.TASK_STATE_FAILED)]))).toEqual([]);
  });

  it('fake runtime forgets tasks removed or missing from a full set', () => {
    const runtime = new FakeRuntime();
    runtime.apply(assignments(FULL, [task('a', TaskState.TASK_STATE_RUNNING), task('b', TaskState.TASK_STATE_RUNNING), task('c', TaskState.TASK_STATE_RUNNING)]));
    runtime.apply(assignments(INCREMENTAL, [], ['a']));
    expect(runtime.size).toBe(2);
    runtime.apply(assignments(FULL, [task('c', TaskState.TASK_STATE_RUNNING, TaskState.TASK_STATE_RUNNING)]));
    expect(runtime.size).toBe(1);
    expect(runtime.assignedToRun).toBe(1);
  });

  it('fake runtime resends the last report of every held task, for a new session', () => {
    const runtime = new FakeRuntime();
    expect(runtime.resend()).toEqual([]);
    runtime.apply(assignments(FULL, [task('a', TaskState.TASK_STATE_RUNNING), task('b', TaskState.TASK_STATE_SHUTDOWN)]));
    // The RUNNING report was lost with its session: the new FULL set still says ASSIGNED.
    expect(runtime.apply(assignments(FULL, [task('a', TaskState.TASK_STATE_RUNNING), task('b', TaskState.TASK_STATE_SHUTDOWN)]))).toEqual([]);
    expect(runtime.resend()).toEqual([
      { taskId: 'a', state: TaskState.TASK_STATE_RUNNING },
      { taskId: 'b', state: TaskState.TASK_STATE_SHUTDOWN },
    ]);
    runtime.apply(assignments(INCREMENTAL, [], ['a']));
    expect(runtime.resend()).toEqual([{ taskId: 'b', state: TaskState.TASK_STATE_SHUTDOWN }]);
  });

  it('fake runtime keeps its count of tasks assigned to run as tasks start, stop and go', () => {
    const runtime = new FakeRuntime();
    runtime.apply(assignments(FULL, [task('a', TaskState.TASK_STATE_RUNNING), task('b', TaskState.TASK_STATE_RUNNING), task('c', TaskState.TASK_STATE_SHUTDOWN)]));
    expect(runtime.assignedToRun).toBe(2);
    // A task the manager still holds as NEW counts once the runtime has started it.
    runtime.apply(assignments(INCREMENTAL, [task('d', TaskState.TASK_STATE_RUNNING, TaskState.TASK_STATE_NEW)]));
    expect(runtime.assignedToRun).toBe(3);
    runtime.apply(assignments(INCREMENTAL, [task('a', TaskState.TASK_STATE_SHUTDOWN, TaskState.TASK_STATE_RUNNING)], ['b']));
    expect(runtime.assignedToRun).toBe(1);
    runtime.apply(assignments(INCREMENTAL, [task('d', TaskState.TASK_STATE_RUNNING, TaskState.TASK_STATE_RUNNING)]));
    expect(runtime.assignedToRun).toBe(1);
    runtime.apply(assignments(FULL, [task('c', TaskState.TASK_STATE_SHUTDOWN)]));
    expect(runtime.assignedToRun).toBe(0);
    expect(runtime.size).toBe(1);
  });
});
