import { describe, expect, it } from 'vitest';
import type { Task } from '../../proto/skiff/v1/objects.js';
import { HealthState, TaskState } from '../../proto/skiff/v1/types.js';
import { convergence } from './service-progress.js';

function task(id: string, state: TaskState, options: { desiredState?: TaskState; specVersion?: number; err?: string } = {}): Task {
  return {
    meta: { id, version: 1, createdAtMs: 0, updatedAtMs: 0 },
    serviceId: 'svc',
    serviceName: 'web',
    slot: 1,
    nodeId: 'n1',
    spec: undefined,
    specVersion: options.specVersion ?? 2,
    imageDigest: '',
    desiredState: options.desiredState ?? TaskState.TASK_STATE_RUNNING,
    status: { state, message: '', err: options.err ?? '', timestampMs: 0, exitCode: 0, containerId: '', pid: 0, health: HealthState.HEALTH_STATE_NONE },
    networks: [],
    color: '',
    replacesTaskId: '',
  };
}

const RUNNING = TaskState.TASK_STATE_RUNNING;

describe('service convergence', () => {
  it('convergence counts running tasks of the current spec version that should run', () => {
    const tasks = [
      task('a', RUNNING),
      task('b', RUNNING),
      task('c', TaskState.TASK_STATE_STARTING),
      task('old', RUNNING, { specVersion: 1 }),
      task('leaving', RUNNING, { desiredState: TaskState.TASK_STATE_SHUTDOWN }),
    ];
    expect(convergence(tasks, 3, 2)).toEqual({ running: 2, desired: 3, stopping: 1, rejected: undefined });
  });

  it('convergence of a global service wants every current task that is meant to run: one per eligible node', () => {
    const tasks = [task('n1', RUNNING), task('n2', TaskState.TASK_STATE_PREPARING), task('old', RUNNING, { specVersion: 1 }), task('gone', TaskState.TASK_STATE_SHUTDOWN, { desiredState: TaskState.TASK_STATE_SHUTDOWN })];
    expect(convergence(tasks, undefined, 2)).toEqual({ running: 1, desired: 2, stopping: 0, rejected: undefined });
    expect(convergence([task('n1', RUNNING), task('n2', RUNNING)], undefined, 2)).toMatchObject({ running: 2, desired: 2 });
  });

  it('convergence counts tasks still running that were asked to stop, whatever their spec version', () => {
    const tasks = [task('a', RUNNING), task('x', RUNNING, { specVersion: 1, desiredState: TaskState.TASK_STATE_REMOVE }), task('y', TaskState.TASK_STATE_SHUTDOWN, { desiredState: TaskState.TASK_STATE_SHUTDOWN })];
    expect(convergence(tasks, 1, 2)).toMatchObject({ running: 1, stopping: 1 });
  });

  it('convergence is reached when running equals desired and nothing is stopping', () => {
    expect(convergence([task('a', RUNNING), task('b', RUNNING)], 2, 2)).toEqual({ running: 2, desired: 2, stopping: 0, rejected: undefined });
    expect(convergence([], 0, 2)).toEqual({ running: 0, desired: 0, stopping: 0, rejected: undefined });
  });

  it('convergence reports a rejected task of the current spec version, not of an older one', () => {
    const rejected = task('bad', TaskState.TASK_STATE_REJECTED, { err: 'cannot pull demo/nope:v1: manifest unknown' });
    expect(convergence([task('a', RUNNING), rejected], 2, 2).rejected).toBe(rejected);
    expect(convergence([task('old', TaskState.TASK_STATE_REJECTED, { specVersion: 1 })], 1, 2).rejected).toBeUndefined();
  });
});
