import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../../common/log.js';
import type { Task } from '../../proto/skiff/v1/objects.js';
import type { HealthCheck } from '../../proto/skiff/v1/specs.js';
import { HealthState, TaskState } from '../../proto/skiff/v1/types.js';
import type { ContainerInfo } from '../runtime/types.js';
import { TASK_ID_LABEL } from './container-request.js';
import { TaskRunner } from './task-runner.js';
import { finishedExecProcess } from './testing/fake-exec.js';
import { FakeImageStore } from './testing/fake-image-store.js';
import { FakeRuntime } from './testing/fake-runtime.js';
import { fakeTask, ReportRecorder } from './testing/fake-tasks.js';
import { ManualTimers } from './testing/manual-timers.js';

const INTERVAL_MS = 1_000;
const WAIT = { timeout: 2_000, interval: 5 };

function check(overrides: Partial<HealthCheck> = {}): HealthCheck {
  return { test: ['CMD-SHELL', 'test -f /tmp/ok'], intervalMs: INTERVAL_MS, timeoutMs: 500, retries: 2, startPeriodMs: 0, http: undefined, tcpPort: 0, ...overrides };
}

function healthTask(id: string, healthcheck: HealthCheck | undefined, options: Parameters<typeof fakeTask>[1] = {}): Task {
  const task = fakeTask(id, options);
  return { ...task, spec: { ...task.spec!, container: { ...task.spec!.container!, healthcheck } } };
}

/** A runner whose command probes answer from `healthy` (a test flips it). */
function harness() {
  const runtime = new FakeRuntime();
  const images = new FakeImageStore();
  const recorder = new ReportRecorder();
  const timers = new ManualTimers();
  const probe = { healthy: true, output: 'probe output' };
  runtime.execHandler = async () => finishedExecProcess(probe.healthy ? 0 : 1, probe.output);
  const runner = (task: Task, adopted?: ContainerInfo): TaskRunner =>
    new TaskRunner(task, adopted, { runtime, images, report: recorder.report, clock: () => timers.now(), timers, log: silentLogger, files: () => ({ ok: true, files: [] }) });
  const healths = (taskId: string): Array<[string, HealthState]> => recorder.reports.filter((report) => report.taskId === taskId).map((report) => [report.state, report.status.health]);
  return { runtime, images, recorder, timers, probe, runner, healths };
}

describe('task runner health', () => {
  it('task runner keeps a task with a health check starting until its first healthy probe, then running', async () => {
    const { runtime, recorder, timers, runner, healths } = harness();
    const task = healthTask('t1', check());
    runner(task).update(task);
    await vi.waitFor(() => expect(runtime.calls).toEqual(['run t1']), WAIT);
    await timers.advance(INTERVAL_MS - 1);
    expect(recorder.states('t1')).toEqual(['accepted', 'preparing', 'ready', 'starting']);
    expect(recorder.last('t1')?.status.health).toBe(HealthState.HEALTH_STATE_STARTING);
    await timers.advance(1);
    expect(runtime.calls).toEqual(['run t1', 'exec t1 /bin/sh -c test -f /tmp/ok']);
    expect(healths('t1')).toEqual([
      ['accepted', HealthState.HEALTH_STATE_NONE],
      ['preparing', HealthState.HEALTH_STATE_NONE],
      ['ready', HealthState.HEALTH_STATE_NONE],
      ['starting', HealthState.HEALTH_STATE_STARTING],
      ['running', HealthState.HEALTH_STATE_HEALTHY],
    ]);
    expect(recorder.last('t1')?.status).toMatchObject({ containerId: 't1', pid: expect.any(Number) });
  });

  it('task runner fails a task that never becomes healthy after `retries` failures, stopping its container', async () => {
    const { runtime, recorder, timers, probe, runner } = harness();
    probe.healthy = false;
    probe.output = 'test: /tmp/ok: missing\nsecond line';
    const task = healthTask('t1', check({ retries: 2 }));
    const taskRunner = runner(task);
    taskRunner.update(task);
    await vi.waitFor(() => expect(runtime.calls).toEqual(['run t1']), WAIT);
    await timers.advance(INTERVAL_MS);
    expect(recorder.states('t1').at(-1)).toBe('starting');
    await timers.advance(INTERVAL_MS);
    await vi.waitFor(() => expect(recorder.states('t1').at(-1)).toBe('failed'), WAIT);
    expect(runtime.calls.filter((call) => !call.startsWith('exec'))).toEqual(['run t1', 'stop t1']);
    expect(recorder.last('t1')?.status).toMatchObject({
      state: TaskState.TASK_STATE_FAILED,
      health: HealthState.HEALTH_STATE_UNHEALTHY,
      err: 'task: container unhealthy: test: /tmp/ok: missing',
      message: 'test: /tmp/ok: missing\nsecond line',
      exitCode: 143,
      pid: 0,
    });
    // The stop's exit arrives afterwards and changes nothing; no probe runs any more.
    taskRunner.exited(143, false);
    await timers.advance(10 * INTERVAL_MS);
    expect(recorder.states('t1')).toEqual(['accepted', 'preparing', 'ready', 'starting', 'failed']);
    expect(runtime.calls.filter((call) => call.startsWith('exec'))).toHaveLength(2);
  });

  it('task runner fails a running task that turns unhealthy', async () => {
    const { runtime, recorder, timers, probe, runner } = harness();
    const task = healthTask('t1', check({ retries: 3 }));
    runner(task).update(task);
    await vi.waitFor(() => expect(runtime.calls).toEqual(['run t1']), WAIT);
    await timers.advance(INTERVAL_MS);
    expect(recorder.states('t1').at(-1)).toBe('running');
    probe.healthy = false;
    await timers.advance(2 * INTERVAL_MS);
    expect(recorder.states('t1').at(-1)).toBe('running');
    await timers.advance(INTERVAL_MS);
    await vi.waitFor(() => expect(recorder.states('t1').at(-1)).toBe('failed'), WAIT);
    expect(recorder.last('t1')?.status).toMatchObject({ health: HealthState.HEALTH_STATE_UNHEALTHY, err: 'task: container unhealthy: probe output' });
    expect(runtime.calls).toContain('stop t1');
  });

  it('task runner stops probing when the task is shut down, exits or is removed, or the agent stops', async () => {
    for (const ending of ['shutdown', 'exit', 'remove', 'agent stop'] as const) {
      const { runtime, recorder, timers, runner } = harness();
      const task = healthTask('t1', check());
      const taskRunner = runner(task);
      taskRunner.update(task);
      await vi.waitFor(() => expect(runtime.calls).toEqual(['run t1']), WAIT);
      await timers.advance(INTERVAL_MS);
      if (ending === 'shutdown') taskRunner.update(healthTask('t1', check(), { state: TaskState.TASK_STATE_RUNNING, desiredState: TaskState.TASK_STATE_SHUTDOWN }));
      if (ending === 'exit') taskRunner.exited(0, false);
      if (ending === 'remove') await taskRunner.remove();
      if (ending === 'agent stop') taskRunner.stopProbing();
      await vi.waitFor(() => expect(recorder.states('t1').at(-1)).toBe(ending === 'shutdown' ? 'shutdown' : ending === 'exit' ? 'complete' : 'running'), WAIT);
      await timers.advance(5 * INTERVAL_MS);
      expect(runtime.calls.filter((call) => call.startsWith('exec')), ending).toHaveLength(1);
      expect(timers.dueTimesMs, ending).toEqual([]);
      // An agent that stops leaves the container running for the next agent to adopt.
      if (ending === 'agent stop') expect(runtime.calls).toEqual(['run t1', 'exec t1 /bin/sh -c test -f /tmp/ok']);
    }
  });

  it('task runner uses the image HEALTHCHECK when the service sets none, and --no-healthcheck turns it off', async () => {
    const { runtime, images, recorder, timers, runner } = harness();
    images.healthcheck = { test: ['CMD', 'wget', '-q', 'http://localhost/'], intervalMs: 2 * INTERVAL_MS, timeoutMs: 0, startPeriodMs: 0, retries: 0 };
    const task = healthTask('t1', undefined);
    runner(task).update(task);
    await vi.waitFor(() => expect(runtime.calls).toEqual(['run t1']), WAIT);
    await timers.advance(2 * INTERVAL_MS);
    expect(runtime.calls).toEqual(['run t1', 'exec t1 wget -q http://localhost/']);
    expect(recorder.states('t1').at(-1)).toBe('running');

    const off = healthTask('t2', check({ test: ['NONE'] }));
    runner(off).update(off);
    await vi.waitFor(() => expect(recorder.states('t2').at(-1)).toBe('running'), WAIT);
    expect(recorder.last('t2')?.status.health).toBe(HealthState.HEALTH_STATE_NONE);
  });

  it('task runner probes an HTTP check at the task address from the agent', async () => {
    let status = 200;
    const server = http.createServer((_request, response) => response.writeHead(status).end());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const { runtime, recorder, timers, runner, healths } = harness();
      runtime.seed({ containerId: 't1', labels: { [TASK_ID_LABEL]: 't1' }, addresses: ['127.0.0.1'] });
      const task = healthTask('t1', check({ test: [], http: { port, path: '/health' }, retries: 1 }), { state: TaskState.TASK_STATE_STARTING });
      runner(task, (await runtime.inspect('t1'))!).update(task);
      await timers.advance(INTERVAL_MS);
      await vi.waitFor(() => expect(healths('t1')).toEqual([['running', HealthState.HEALTH_STATE_HEALTHY]]), WAIT);
      status = 503;
      await timers.advance(INTERVAL_MS);
      await vi.waitFor(() => expect(recorder.states('t1')).toEqual(['running', 'failed']), WAIT);
      expect(recorder.last('t1')?.status.err).toBe(`task: container unhealthy: GET http://127.0.0.1:${port}/health: 503 Service Unavailable`);
      expect(runtime.calls).toEqual(['stop t1']);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('task runner keeps an adopted running task running and healthy while a new monitor re-establishes health', async () => {
    const { runtime, recorder, timers, probe, runner } = harness();
    runtime.seed({ containerId: 't1', labels: { [TASK_ID_LABEL]: 't1' }, addresses: ['198.18.129.7'] });
    const adopted = (await runtime.inspect('t1'))!;
    const task = healthTask('t1', check({ retries: 2 }), { state: TaskState.TASK_STATE_RUNNING });
    runner(task, adopted).update(task);
    await timers.advance(INTERVAL_MS);
    expect(runtime.calls).toEqual(['exec t1 /bin/sh -c test -f /tmp/ok']);
    expect(recorder.reports).toEqual([]);
    probe.healthy = false;
    await timers.advance(2 * INTERVAL_MS);
    await vi.waitFor(() => expect(recorder.states('t1')).toEqual(['failed']), WAIT);
    expect(recorder.last('t1')?.status).toMatchObject({ health: HealthState.HEALTH_STATE_UNHEALTHY, err: 'task: container unhealthy: probe output' });
  });

  it('task runner keeps an adopted starting task starting until it is healthy', async () => {
    const { runtime, recorder, timers, runner, healths } = harness();
    runtime.seed({ containerId: 't1', labels: { [TASK_ID_LABEL]: 't1' } });
    const adopted = (await runtime.inspect('t1'))!;
    const task = healthTask('t1', check(), { state: TaskState.TASK_STATE_STARTING });
    runner(task, adopted).update(task);
    await timers.advance(INTERVAL_MS - 1);
    expect(recorder.reports).toEqual([]);
    await timers.advance(1);
    expect(healths('t1')).toEqual([['running', HealthState.HEALTH_STATE_HEALTHY]]);
  });
});
