import { describe, expect, it } from 'vitest';
import type { Task } from '../../proto/skiff/v1/objects.js';
import { TaskState } from '../../proto/skiff/v1/types.js';
import { fakeTask } from '../orchestrator/testing/fake-objects.js';
import { SentTasks, tasksEqualStable } from './sent-tasks.js';

const withState = (task: Task, state: TaskState, version: number): Task => ({ ...task, meta: { ...task.meta!, version }, status: { ...task.status!, state, message: 'reported' } });

describe('SentTasks', () => {
  it('sent tasks skip an update that only carries the agent\'s own report: status, version, host-bridge address', () => {
    const sent = new SentTasks();
    const assigned = fakeTask('t1', { nodeId: 'n1', state: TaskState.TASK_STATE_ASSIGNED });
    sent.reset([assigned]);
    const running = { ...withState(assigned, TaskState.TASK_STATE_RUNNING, 7), networks: [{ network: 'bridge', addresses: ['198.18.128.5'] }] };
    expect(sent.mustSend(running)).toBe(false);
    expect(sent.mustSend({ ...running, desiredState: TaskState.TASK_STATE_SHUTDOWN })).toBe(true);
  });

  it('sent tasks always send tasks up to ASSIGNED, new tasks, and changes of overlay addresses or spec', () => {
    const sent = new SentTasks();
    const pending = fakeTask('t1');
    expect(sent.mustSend(pending)).toBe(true); // never sent before
    expect(sent.mustSend({ ...pending, nodeId: 'n1', status: { ...pending.status!, state: TaskState.TASK_STATE_ASSIGNED } })).toBe(true);
    expect(sent.mustSend(withState(pending, TaskState.TASK_STATE_ASSIGNED, 3))).toBe(true); // the managers' state: always sent
    const running = withState(pending, TaskState.TASK_STATE_RUNNING, 4);
    sent.mustSend(running);
    expect(sent.mustSend({ ...running, networks: [{ network: 'overlay-1', addresses: ['10.0.1.5/24'] }] })).toBe(true);
    expect(sent.mustSend({ ...running, networks: [{ network: 'overlay-1', addresses: ['10.0.1.5/24'] }], specVersion: 9 })).toBe(true);
  });

  it('sent tasks forget a removed task, so it is sent again if it comes back', () => {
    const sent = new SentTasks();
    const running = withState(fakeTask('t1', { nodeId: 'n1' }), TaskState.TASK_STATE_RUNNING, 2);
    sent.reset([running]);
    expect(sent.mustSend(running)).toBe(false);
    sent.removed('t1');
    expect(sent.size).toBe(0);
    expect(sent.mustSend(running)).toBe(true);
  });

  it('tasksEqualStable compares nested data structurally, not by reference', () => {
    const base = fakeTask('t1');
    const copy = JSON.parse(JSON.stringify(base)) as Task;
    expect(tasksEqualStable(base, copy)).toBe(true);
    expect(tasksEqualStable(base, { ...copy, slot: 2 })).toBe(false);
    expect(tasksEqualStable({ ...base, imageDigest: 'sha256:a' }, { ...copy, imageDigest: 'sha256:b' })).toBe(false);
  });
});
