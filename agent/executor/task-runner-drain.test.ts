import { describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../../common/log.js';
import type { Task } from '../../proto/skiff/v1/objects.js';
import { TaskState } from '../../proto/skiff/v1/types.js';
import { onOverlay, TaskRunner } from './task-runner.js';
import { FakeImageStore } from './testing/fake-image-store.js';
import { FakeRuntime } from './testing/fake-runtime.js';
import { fakeTask, ReportRecorder } from './testing/fake-tasks.js';

const WAIT = { timeout: 3_000, interval: 5 };
const DRAIN_MS = 300;

const withNetworks = (task: Task, networks: Task['networks']): Task => ({ ...task, networks });
const OVERLAY: Task['networks'] = [{ network: 'net1', addresses: ['10.0.1.5/24'] }, { network: 'bridge', addresses: ['172.20.0.5'] }];
const BRIDGE_ONLY: Task['networks'] = [{ network: 'bridge', addresses: ['172.20.0.5'] }];

/** Time from the shutdown order to the stop call, with the fake runtime (named so). */
async function stopDelay(networks: Task['networks']): Promise<number> {
  const runtime = new FakeRuntime();
  const recorder = new ReportRecorder();
  const task = withNetworks(fakeTask('t1'), networks);
  const runner = new TaskRunner(task, undefined, { runtime, images: new FakeImageStore(), report: recorder.report, clock: Date.now, log: silentLogger, files: () => ({ ok: true, files: [] }), drainMs: DRAIN_MS });
  runner.update(task);
  await vi.waitFor(() => expect(recorder.states('t1')).toContain('running'), WAIT);
  const ordered = Date.now();
  runner.update(withNetworks(fakeTask('t1', { state: TaskState.TASK_STATE_RUNNING, desiredState: TaskState.TASK_STATE_SHUTDOWN }), networks));
  await vi.waitFor(() => expect(runtime.calls).toContain('stop t1'), WAIT);
  return Date.now() - ordered;
}

describe('drain before stop', () => {
  it('a task on an overlay network keeps running for the drain delay before its stop signal', async () => {
    expect(await stopDelay(OVERLAY)).toBeGreaterThanOrEqual(DRAIN_MS - 10);
  });

  it('a task only on the host bridge stops at once', async () => {
    expect(await stopDelay(BRIDGE_ONLY)).toBeLessThan(DRAIN_MS - 10);
  });

  it('only overlay attachments with an address count as overlay', () => {
    expect(onOverlay(withNetworks(fakeTask('t1'), OVERLAY))).toBe(true);
    expect(onOverlay(withNetworks(fakeTask('t1'), BRIDGE_ONLY))).toBe(false);
  });
});
