import { describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../../common/log.js';
import { AssignmentsKind } from '../../proto/skiff/v1/dispatcher.js';
import type { Config, Secret } from '../../proto/skiff/v1/objects.js';
import type { ConfigReference, SecretReference } from '../../proto/skiff/v1/specs.js';
import { TaskState } from '../../proto/skiff/v1/types.js';
import { TASK_ID_LABEL } from './container-request.js';
import { TaskManager } from './task-manager.js';
import { FakeImageStore } from './testing/fake-image-store.js';
import { FakeRuntime } from './testing/fake-runtime.js';
import { fakeTask, ReportRecorder } from './testing/fake-tasks.js';

const FULL = AssignmentsKind.ASSIGNMENTS_KIND_FULL;
const INCREMENTAL = AssignmentsKind.ASSIGNMENTS_KIND_INCREMENTAL;
const WAIT = { timeout: 2_000, interval: 5 };

async function startManager(runtime = new FakeRuntime(), images = new FakeImageStore()): Promise<{ runtime: FakeRuntime; recorder: ReportRecorder; tasks: TaskManager }> {
  const recorder = new ReportRecorder();
  const tasks = new TaskManager(runtime, images, recorder.report, () => 1_000, silentLogger);
  await tasks.start();
  return { runtime, recorder, tasks };
}

/** Lets queued operations (all on resolved fakes) run to the end. */
async function settle(): Promise<void> {
  for (let turn = 0; turn < 5; turn += 1) await new Promise((resolve) => setImmediate(resolve));
}

async function waitForState(recorder: ReportRecorder, taskId: string, state: string): Promise<void> {
  await vi.waitFor(() => expect(recorder.states(taskId)).toContain(state), WAIT);
}

describe('task manager', () => {
  it('task manager starts a container for every task of a full assignment set', async () => {
    const { runtime, recorder, tasks } = await startManager();
    tasks.apply(FULL, [fakeTask('t1'), fakeTask('t2')], []);
    await waitForState(recorder, 't1', 'running');
    await waitForState(recorder, 't2', 'running');
    expect(runtime.calls.filter((call) => call.startsWith('run')).sort()).toEqual(['run t1', 'run t2']);
  });

  it('task manager fails a task whose container exits non-zero, as seen by the exit watcher', async () => {
    const { runtime, recorder, tasks } = await startManager();
    tasks.apply(FULL, [fakeTask('t1')], []);
    await waitForState(recorder, 't1', 'running');
    runtime.exit('t1', 137);
    await waitForState(recorder, 't1', 'failed');
    expect(recorder.last('t1')?.status).toMatchObject({ err: 'task: non-zero exit (137)', exitCode: 137 });
  });

  it('task manager removes the container of a task in the removed list', async () => {
    const { runtime, recorder, tasks } = await startManager();
    tasks.apply(FULL, [fakeTask('t1'), fakeTask('t2')], []);
    await waitForState(recorder, 't1', 'running');
    await waitForState(recorder, 't2', 'running');
    tasks.apply(INCREMENTAL, [], ['t1']);
    await vi.waitFor(() => expect(runtime.calls).toContain('remove t1'), WAIT);
    await settle();
    expect(runtime.has('t1')).toBe(false);
    expect(runtime.has('t2')).toBe(true);
    expect(runtime.calls).not.toContain('remove t2');
  });

  it('task manager drops the runners a new full set does not contain', async () => {
    const { runtime, recorder, tasks } = await startManager();
    tasks.apply(FULL, [fakeTask('t1'), fakeTask('t2')], []);
    await waitForState(recorder, 't1', 'running');
    await waitForState(recorder, 't2', 'running');
    tasks.apply(FULL, [fakeTask('t2', { state: TaskState.TASK_STATE_RUNNING })], []);
    await vi.waitFor(() => expect(runtime.calls).toContain('remove t1'), WAIT);
    await settle();
    expect(runtime.calls).not.toContain('remove t2');
    expect(runtime.calls.filter((call) => call === 'run t2')).toHaveLength(1);
  });

  it('task manager adopts a running container found at start instead of starting another', async () => {
    const runtime = new FakeRuntime();
    runtime.seed({ containerId: 't1', labels: { [TASK_ID_LABEL]: 't1' }, pid: 4321 });
    const { recorder, tasks } = await startManager(runtime);
    tasks.apply(FULL, [fakeTask('t1', { state: TaskState.TASK_STATE_STARTING })], []);
    await waitForState(recorder, 't1', 'running');
    await settle();
    expect(recorder.states('t1')).toEqual(['running']);
    expect(recorder.last('t1')?.status).toMatchObject({ containerId: 't1', pid: 4321 });
    expect(runtime.calls).toEqual(['list']);
  });

  it('task manager watches the exits of an adopted container', async () => {
    const runtime = new FakeRuntime();
    runtime.seed({ containerId: 't1', labels: { [TASK_ID_LABEL]: 't1' } });
    const { recorder, tasks } = await startManager(runtime);
    tasks.apply(FULL, [fakeTask('t1', { state: TaskState.TASK_STATE_RUNNING })], []);
    await settle();
    // The manager already knows it runs: nothing to say, nothing to start.
    expect(recorder.reports).toEqual([]);
    expect(runtime.calls).toEqual(['list']);
    runtime.exit('t1', 2);
    await waitForState(recorder, 't1', 'failed');
    expect(recorder.last('t1')?.status).toMatchObject({ err: 'task: non-zero exit (2)', exitCode: 2 });
  });

  it('task manager removes a container found at start whose task is not in the full set', async () => {
    const runtime = new FakeRuntime();
    runtime.seed({ containerId: 'old', labels: { [TASK_ID_LABEL]: 'old' } });
    runtime.seed({ containerId: 't1', labels: { [TASK_ID_LABEL]: 't1' } });
    const { recorder, tasks } = await startManager(runtime);
    tasks.apply(FULL, [fakeTask('t1', { state: TaskState.TASK_STATE_RUNNING })], []);
    await vi.waitFor(() => expect(runtime.calls).toContain('remove old'), WAIT);
    await settle();
    expect(runtime.has('old')).toBe(false);
    expect(runtime.has('t1')).toBe(true);
    expect(runtime.calls).toEqual(['list', 'remove old']);
    expect(recorder.states('old')).toEqual([]);
  });

  it('task manager fails a task whose container exited while the agent was down, with its exit code', async () => {
    const runtime = new FakeRuntime();
    runtime.seed({ containerId: 't1', labels: { [TASK_ID_LABEL]: 't1' }, status: 'stopped', pid: 0, exitCode: 137 });
    const { recorder, tasks } = await startManager(runtime);
    tasks.apply(FULL, [fakeTask('t1', { state: TaskState.TASK_STATE_RUNNING })], []);
    await waitForState(recorder, 't1', 'failed');
    expect(recorder.states('t1')).toEqual(['failed']);
    expect(recorder.last('t1')?.status).toMatchObject({ err: 'task: non-zero exit (137)', exitCode: 137 });
    expect(runtime.calls.some((call) => call.startsWith('run'))).toBe(false);
  });

  it('task manager fails an adopted task whose container exits before the first full set arrives', async () => {
    const runtime = new FakeRuntime();
    runtime.seed({ containerId: 't1', labels: { [TASK_ID_LABEL]: 't1' } });
    const { recorder, tasks } = await startManager(runtime);
    // The runtime hands each exit to the watchers once; here it comes before any assignment.
    runtime.exit('t1', 137);
    tasks.apply(FULL, [fakeTask('t1', { state: TaskState.TASK_STATE_RUNNING })], []);
    await waitForState(recorder, 't1', 'failed');
    expect(recorder.last('t1')?.status).toMatchObject({ err: 'task: non-zero exit (137)', exitCode: 137 });
  });

  it('task manager fails an assigned task the manager saw running whose container is gone', async () => {
    const { runtime, recorder, tasks } = await startManager();
    tasks.apply(FULL, [fakeTask('t1', { state: TaskState.TASK_STATE_RUNNING })], []);
    await waitForState(recorder, 't1', 'failed');
    expect(recorder.last('t1')?.status.err).toBe('task container not found on this node');
    expect(runtime.calls).toEqual(['list']);
  });

  it('task manager resends every runner status after a new session starts', async () => {
    const { recorder, tasks } = await startManager();
    tasks.apply(FULL, [fakeTask('t1'), fakeTask('t2')], []);
    await waitForState(recorder, 't1', 'running');
    await waitForState(recorder, 't2', 'running');
    const before = recorder.reports.length;
    tasks.resendAll();
    expect(recorder.reports.slice(before).map((report) => `${report.taskId}:${report.state}`).sort()).toEqual(['t1:running', 't2:running']);
  });

  const secretRef = (overrides: Partial<SecretReference> = {}): SecretReference => ({ secretId: 's1', secretName: 'db', target: '', uid: 0, gid: 0, mode: 0, ...overrides });
  const configRef = (overrides: Partial<ConfigReference> = {}): ConfigReference => ({ configId: 'c1', configName: 'app', target: '', uid: 0, gid: 0, mode: 0, ...overrides });
  const secret = (id: string, name: string, text: string): Secret => ({ meta: { id, version: 1, createdAtMs: 0, updatedAtMs: 0 }, spec: { name, labels: {}, data: new TextEncoder().encode(text) } });
  const config = (id: string, name: string, text: string): Config => ({ meta: { id, version: 1, createdAtMs: 0, updatedAtMs: 0 }, spec: { name, labels: {}, data: new TextEncoder().encode(text) } });

  it('task manager mounts the secrets and configs that came with a task at their paths, owners and modes', async () => {
    const { runtime, recorder, tasks } = await startManager();
    const task = fakeTask('t1', {
      secrets: [secretRef(), secretRef({ target: 'nested/copy', uid: 1000, gid: 2000, mode: 0o400 })],
      configs: [configRef(), configRef({ target: '/etc/app/app.conf', mode: 0o644 })],
    });
    tasks.apply(FULL, [task], [], { secrets: [secret('s1', 'db', 'hunter2')], configs: [config('c1', 'app', 'port=80')] });
    await waitForState(recorder, 't1', 'running');
    const text = (data: Uint8Array): string => new TextDecoder().decode(data);
    expect(runtime.requests[0]?.files.map((file) => ({ ...file, data: text(file.data) }))).toEqual([
      { containerPath: '/run/secrets/db', data: 'hunter2', uid: 0, gid: 0, mode: 0o444 },
      { containerPath: '/run/secrets/nested/copy', data: 'hunter2', uid: 1000, gid: 2000, mode: 0o400 },
      { containerPath: '/app', data: 'port=80', uid: 0, gid: 0, mode: 0o444 },
      { containerPath: '/etc/app/app.conf', data: 'port=80', uid: 0, gid: 0, mode: 0o644 },
    ]);
  });

  it('task manager uses data sent in an earlier message of the session, and mounts nothing for a task without references', async () => {
    const { runtime, recorder, tasks } = await startManager();
    tasks.apply(FULL, [fakeTask('t1', { secrets: [secretRef()] })], [], { secrets: [secret('s1', 'db', 'hunter2')], configs: [] });
    tasks.apply(INCREMENTAL, [fakeTask('t2', { secrets: [secretRef({ target: 'again' })] }), fakeTask('t3')], []);
    await waitForState(recorder, 't2', 'running');
    await waitForState(recorder, 't3', 'running');
    const request = (id: string) => runtime.requests.find((candidate) => candidate.containerId === id);
    expect(request('t2')?.files.map((file) => file.containerPath)).toEqual(['/run/secrets/again']);
    expect(request('t3')?.files).toEqual([]);
  });

  it('task manager rejects a task whose secret or config this node was not sent, and starts no container', async () => {
    const { runtime, recorder, tasks } = await startManager();
    tasks.apply(FULL, [fakeTask('t1', { secrets: [secretRef()] }), fakeTask('t2', { configs: [configRef()] })], []);
    await waitForState(recorder, 't1', 'rejected');
    await waitForState(recorder, 't2', 'rejected');
    expect(recorder.last('t1')?.status.err).toBe('cannot mount secret "db" (s1): this node was not sent its data');
    expect(recorder.last('t2')?.status.err).toBe('cannot mount config "app" (c1): this node was not sent its data');
    expect(runtime.calls).toEqual(['list']);
  });

  it('task manager forgets the data of an old session but starts a task it already received with its files', async () => {
    const images = new FakeImageStore();
    const { runtime, recorder, tasks } = await startManager(new FakeRuntime(), images);
    const release = images.hold();
    tasks.apply(FULL, [fakeTask('t1', { secrets: [secretRef()] })], [], { secrets: [secret('s1', 'db', 'hunter2')], configs: [] });
    await waitForState(recorder, 't1', 'preparing');
    expect(tasks.heldData).toEqual({ secrets: 1, configs: 0 });
    tasks.sessionStarted();
    expect(tasks.heldData).toEqual({ secrets: 0, configs: 0 });
    release();
    await waitForState(recorder, 't1', 'running');
    expect(runtime.requests[0]?.files.map((file) => new TextDecoder().decode(file.data))).toEqual(['hunter2']);
    // A task of the new session that uses data the new session has not sent is refused.
    tasks.apply(INCREMENTAL, [fakeTask('t2', { secrets: [secretRef()] })], []);
    await waitForState(recorder, 't2', 'rejected');
  });
});
