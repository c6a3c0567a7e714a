import { describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../../common/log.js';
import type { Task } from '../../proto/skiff/v1/objects.js';
import { TaskState } from '../../proto/skiff/v1/types.js';
import { RuntimeError, type ContainerInfo } from '../runtime/types.js';
import { TASK_ID_LABEL } from './container-request.js';
import { STOP_TIMEOUT_MS, TaskRunner } from './task-runner.js';
import { FAKE_IMAGE_CMD, FakeImageStore } from './testing/fake-image-store.js';
import { FAKE_STOP_EXIT_CODE, FakeRuntime } from './testing/fake-runtime.js';
import { FAKE_IMAGE, fakeTask, ReportRecorder } from './testing/fake-tasks.js';

const NOW_MS = 1_700_000_000_000;
const WAIT = { timeout: 2_000, interval: 5 };

function harness(): { runtime: FakeRuntime; images: FakeImageStore; recorder: ReportRecorder; runner: (task: Task, adopted?: ContainerInfo) => TaskRunner } {
  const runtime = new FakeRuntime();
  const images = new FakeImageStore();
  const recorder = new ReportRecorder();
  const runner = (task: Task, adopted?: ContainerInfo): TaskRunner =>
    new TaskRunner(task, adopted, { runtime, images, report: recorder.report, clock: () => NOW_MS, log: silentLogger, files: () => ({ ok: true, files: [] }) });
  return { runtime, images, recorder, runner };
}

/** Lets the runner's queued operations (all on resolved fakes) run to the end. */
async function settle(): Promise<void> {
  for (let turn = 0; turn < 5; turn += 1) await new Promise((resolve) => setImmediate(resolve));
}

async function waitForState(recorder: ReportRecorder, taskId: string, state: string): Promise<void> {
  await vi.waitFor(() => expect(recorder.states(taskId)).toContain(state), WAIT);
}

describe('task runner', () => {
  it('task runner reports accepted, preparing, ready, starting, running with container id, pid and addresses', async () => {
    const { runtime, images, recorder, runner } = harness();
    runner(fakeTask('t1')).update(fakeTask('t1'));
    await waitForState(recorder, 't1', 'running');
    await settle();
    expect(recorder.states('t1')).toEqual(['accepted', 'preparing', 'ready', 'starting', 'running']);
    expect(images.pulls).toEqual([FAKE_IMAGE]);
    expect(runtime.calls).toEqual(['run t1']);
    expect(runtime.requests[0]).toMatchObject({ containerId: 't1', argv: FAKE_IMAGE_CMD, labels: { [TASK_ID_LABEL]: 't1' } });
    const running = recorder.last('t1')!;
    expect(running.status).toMatchObject({ state: TaskState.TASK_STATE_RUNNING, containerId: 't1', err: '', exitCode: 0, timestampMs: NOW_MS });
    expect(running.status.pid).toBeGreaterThan(0);
    expect(running.addresses).toEqual(['198.18.129.2']);
    // Before the container exists, no report carries a container id or pid.
    expect(recorder.reports.slice(0, 4).every((report) => report.status.containerId === '' && report.status.pid === 0)).toBe(true);
  });

  it('task runner starts one container when the same assignment arrives twice', async () => {
    const { runtime, recorder, runner } = harness();
    const taskRunner = runner(fakeTask('t1'));
    taskRunner.update(fakeTask('t1'));
    taskRunner.update(fakeTask('t1'));
    await waitForState(recorder, 't1', 'running');
    await settle();
    expect(runtime.calls).toEqual(['run t1']);
    expect(recorder.states('t1')).toEqual(['accepted', 'preparing', 'ready', 'starting', 'running']);
  });

  it('task runner rejects the task with the pull error when the image cannot be pulled', async () => {
    const { runtime, images, recorder, runner } = harness();
    images.fail(FAKE_IMAGE);
    runner(fakeTask('t1')).update(fakeTask('t1'));
    await waitForState(recorder, 't1', 'rejected');
    await settle();
    expect(recorder.states('t1')).toEqual(['accepted', 'preparing', 'rejected']);
    expect(recorder.last('t1')?.status.err).toBe(`cannot pull ${FAKE_IMAGE}: manifest unknown`);
    expect(runtime.calls).toEqual([]);
  });

  it('task runner fails the task with the runtime error when run fails', async () => {
    const { runtime, recorder, runner } = harness();
    runtime.runError = new Error('cannot start container t1: runc create failed');
    runner(fakeTask('t1')).update(fakeTask('t1'));
    await waitForState(recorder, 't1', 'failed');
    await settle();
    expect(recorder.states('t1')).toEqual(['accepted', 'preparing', 'ready', 'starting', 'failed']);
    expect(recorder.last('t1')?.status).toMatchObject({ err: 'cannot start container t1: runc create failed', pid: 0 });
  });

  it('task runner rejects the task when the runtime refuses the request on this node', async () => {
    const { runtime, recorder, runner } = harness();
    runtime.runError = new RuntimeError('invalid_request', 'cannot run container "t1": ulimits: nofile hard limit 30000 is above this node\'s hard limit 20000 (the agent cannot raise it)');
    runner(fakeTask('t1')).update(fakeTask('t1'));
    await waitForState(recorder, 't1', 'rejected');
    expect(recorder.states('t1')).toEqual(['accepted', 'preparing', 'ready', 'starting', 'rejected']);
    expect(recorder.last('t1')?.status.err).toContain('ulimits: nofile hard limit 30000');
  });

  it('task runner fails the task with its exit code on a non-zero exit', async () => {
    const { recorder, runner } = harness();
    const taskRunner = runner(fakeTask('t1'));
    taskRunner.update(fakeTask('t1'));
    await waitForState(recorder, 't1', 'running');
    taskRunner.exited(137, false);
    await waitForState(recorder, 't1', 'failed');
    expect(recorder.states('t1')).toEqual(['accepted', 'preparing', 'ready', 'starting', 'running', 'failed']);
    expect(recorder.last('t1')?.status).toMatchObject({ state: TaskState.TASK_STATE_FAILED, err: 'task: non-zero exit (137)', exitCode: 137, containerId: 't1', pid: 0 });
  });

  it('task runner says OOMKilled when the kernel killed the container', async () => {
    const { recorder, runner } = harness();
    const taskRunner = runner(fakeTask('t1'));
    taskRunner.update(fakeTask('t1'));
    await waitForState(recorder, 't1', 'running');
    taskRunner.exited(137, true);
    await waitForState(recorder, 't1', 'failed');
    expect(recorder.last('t1')?.status).toMatchObject({ err: 'OOMKilled', exitCode: 137 });
  });

  it('task runner completes the task on exit 0', async () => {
    const { recorder, runner } = harness();
    const taskRunner = runner(fakeTask('t1'));
    taskRunner.update(fakeTask('t1'));
    await waitForState(recorder, 't1', 'running');
    taskRunner.exited(0, false);
    await waitForState(recorder, 't1', 'complete');
    expect(recorder.states('t1')).toEqual(['accepted', 'preparing', 'ready', 'starting', 'running', 'complete']);
    expect(recorder.last('t1')?.status).toMatchObject({ err: '', exitCode: 0 });
  });

  it('task runner stops the container and reports shutdown when desired state is shutdown', async () => {
    const { runtime, recorder, runner } = harness();
    const taskRunner = runner(fakeTask('t1'));
    taskRunner.update(fakeTask('t1'));
    await waitForState(recorder, 't1', 'running');
    taskRunner.update(fakeTask('t1', { state: TaskState.TASK_STATE_RUNNING, desiredState: TaskState.TASK_STATE_SHUTDOWN }));
    await waitForState(recorder, 't1', 'shutdown');
    // The stop makes the container exit; that exit must not turn the shutdown into a failure.
    taskRunner.exited(FAKE_STOP_EXIT_CODE, false);
    await settle();
    expect(runtime.calls).toEqual(['run t1', 'stop t1']);
    expect(runtime.stops).toEqual([{ containerId: 't1', timeoutMs: STOP_TIMEOUT_MS, signal: 'SIGTERM' }]);
    expect(recorder.states('t1')).toEqual(['accepted', 'preparing', 'ready', 'starting', 'running', 'shutdown']);
    expect(recorder.last('t1')?.status.pid).toBe(0);
  });

  it('task runner stops with the spec stop signal and grace period', async () => {
    const { runtime, recorder, runner } = harness();
    const withStop = (task: Task): Task => ({ ...task, spec: { ...task.spec!, container: { ...task.spec!.container!, stopSignal: 'SIGINT', stopGracePeriodMs: 2_500 } } });
    const taskRunner = runner(withStop(fakeTask('t1')));
    taskRunner.update(withStop(fakeTask('t1')));
    await waitForState(recorder, 't1', 'running');
    taskRunner.update(withStop(fakeTask('t1', { state: TaskState.TASK_STATE_RUNNING, desiredState: TaskState.TASK_STATE_SHUTDOWN })));
    await waitForState(recorder, 't1', 'shutdown');
    expect(runtime.stops).toEqual([{ containerId: 't1', timeoutMs: 2_500, signal: 'SIGINT' }]);
  });

  it('task runner removes the container when the task is removed', async () => {
    const { runtime, recorder, runner } = harness();
    const taskRunner = runner(fakeTask('t1'));
    taskRunner.update(fakeTask('t1'));
    await waitForState(recorder, 't1', 'running');
    await taskRunner.remove();
    expect(runtime.calls).toEqual(['run t1', 'remove t1']);
    expect(runtime.has('t1')).toBe(false);
  });

  it('task runner starts nothing when the task is removed while its image is pulled', async () => {
    const { runtime, images, recorder, runner } = harness();
    const release = images.hold();
    const taskRunner = runner(fakeTask('t1'));
    taskRunner.update(fakeTask('t1'));
    await vi.waitFor(() => expect(images.pulls).toHaveLength(1), WAIT);
    const removed = taskRunner.remove();
    release();
    await removed;
    expect(runtime.calls).toEqual([]);
    expect(recorder.states('t1')).toEqual(['accepted', 'preparing']);
  });

  it('task runner reports shutdown without starting when shut down while its image is pulled', async () => {
    const { runtime, images, recorder, runner } = harness();
    const release = images.hold();
    const taskRunner = runner(fakeTask('t1'));
    taskRunner.update(fakeTask('t1'));
    await vi.waitFor(() => expect(images.pulls).toHaveLength(1), WAIT);
    taskRunner.update(fakeTask('t1', { desiredState: TaskState.TASK_STATE_SHUTDOWN }));
    release();
    await waitForState(recorder, 't1', 'shutdown');
    await settle();
    expect(runtime.calls).toEqual([]);
    expect(recorder.states('t1')).toEqual(['accepted', 'preparing', 'shutdown']);
  });

  it('task runner adopts a running container without starting another', async () => {
    const { runtime, images, recorder, runner } = harness();
    const adopted: ContainerInfo = { containerId: 't1', labels: { [TASK_ID_LABEL]: 't1' }, status: 'running', pid: 777, addresses: ['198.18.129.7'], startedAtMs: 0, logPath: '' };
    const task = fakeTask('t1', { state: TaskState.TASK_STATE_STARTING });
    runner(task, adopted).update(task);
    await waitForState(recorder, 't1', 'running');
    await settle();
    expect(recorder.states('t1')).toEqual(['running']);
    expect(recorder.last('t1')).toMatchObject({ status: { containerId: 't1', pid: 777 }, addresses: ['198.18.129.7'] });
    expect(runtime.calls).toEqual([]);
    expect(images.pulls).toEqual([]);
  });

  it('task runner fails an adopted container that exited while the agent was down, with its exit code', async () => {
    const { runtime, recorder, runner } = harness();
    const adopted: ContainerInfo = { containerId: 't1', labels: {}, status: 'stopped', pid: 0, exitCode: 137, addresses: [], startedAtMs: 0, logPath: '' };
    const task = fakeTask('t1', { state: TaskState.TASK_STATE_RUNNING });
    runner(task, adopted).update(task);
    await waitForState(recorder, 't1', 'failed');
    expect(recorder.states('t1')).toEqual(['failed']);
    expect(recorder.last('t1')?.status).toMatchObject({ err: 'task: non-zero exit (137)', exitCode: 137 });
    expect(runtime.calls).toEqual([]);
  });

  it('task runner fails a task the manager saw running whose container is gone', async () => {
    const { runtime, images, recorder, runner } = harness();
    const task = fakeTask('t1', { state: TaskState.TASK_STATE_RUNNING });
    runner(task).update(task);
    await waitForState(recorder, 't1', 'failed');
    await settle();
    expect(recorder.states('t1')).toEqual(['failed']);
    expect(recorder.last('t1')?.status.err).toBe('task container not found on this node');
    expect(runtime.calls).toEqual([]);
    expect(images.pulls).toEqual([]);
  });

  it('task runner does nothing for a task that already ended', async () => {
    const { runtime, recorder, runner } = harness();
    const task = fakeTask('t1', { state: TaskState.TASK_STATE_FAILED });
    runner(task).update(task);
    await settle();
    expect(recorder.reports).toEqual([]);
    expect(runtime.calls).toEqual([]);
  });

  it('task runner resends its last status, and nothing before it accepted the task', async () => {
    const { recorder, runner } = harness();
    const taskRunner = runner(fakeTask('t1'));
    taskRunner.resend();
    expect(recorder.reports).toEqual([]);
    taskRunner.update(fakeTask('t1'));
    await waitForState(recorder, 't1', 'running');
    taskRunner.resend();
    expect(recorder.states('t1')).toEqual(['accepted', 'preparing', 'ready', 'starting', 'running', 'running']);
  });
});
