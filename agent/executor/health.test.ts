import { describe, expect, it } from 'vitest';
import { HealthState } from '../../proto/skiff/v1/types.js';
import { HealthMonitor, type HealthStatus } from './health.js';
import type { HealthConfig } from './health-config.js';
import { commandProbe, type Probe, type ProbeResult } from './health-probes.js';
import { fakeExecProcess, type FakeExecProcess } from './testing/fake-exec.js';
import { FakeRuntime } from './testing/fake-runtime.js';
import { ManualTimers } from './testing/manual-timers.js';

const INTERVAL_MS = 1_000;
const TIMEOUT_MS = 500;

function config(overrides: Partial<HealthConfig> = {}): HealthConfig {
  return { probe: { kind: 'exec', argv: ['true'] }, intervalMs: INTERVAL_MS, timeoutMs: TIMEOUT_MS, retries: 3, startPeriodMs: 0, ...overrides };
}

/** A probe whose answers a test queues; it records when each probe started. */
class ScriptedProbe {
  readonly startedAtMs: number[] = [];
  readonly signals: AbortSignal[] = [];
  private readonly answers: Array<ProbeResult | 'hang'> = [];

  constructor(private readonly timers: ManualTimers) {}

  answer(...results: Array<boolean | 'hang'>): void {
    for (const result of results) this.answers.push(result === 'hang' ? 'hang' : { healthy: result, output: result ? 'ok' : 'not ok' });
  }

  readonly probe: Probe = (signal) => {
    this.startedAtMs.push(this.timers.now());
    this.signals.push(signal);
    const answer = this.answers.shift();
    if (answer === undefined) throw new Error('scripted probe: no answer queued');
    if (answer === 'hang') return new Promise(() => undefined);
    return Promise.resolve(answer);
  };
}

function harness(options: { config?: Partial<HealthConfig>; initial?: HealthState.HEALTH_STATE_STARTING | HealthState.HEALTH_STATE_HEALTHY; startedAgoMs?: number; probe?: Probe } = {}) {
  const timers = new ManualTimers();
  const scripted = new ScriptedProbe(timers);
  const changes: HealthStatus[] = [];
  const monitor = new HealthMonitor({
    config: config(options.config),
    probe: options.probe ?? scripted.probe,
    timers,
    startedAtMs: timers.now() - (options.startedAgoMs ?? 0),
    initial: options.initial ?? HealthState.HEALTH_STATE_STARTING,
    onChange: (status) => changes.push(status),
  });
  const states = (): HealthState[] => changes.map((change) => change.state);
  return { timers, scripted, monitor, changes, states };
}

describe('health monitor', () => {
  it('health monitor probes one interval after start, then an interval after each probe ends', async () => {
    const { timers, scripted, monitor, states } = harness();
    const startMs = timers.now();
    scripted.answer(true, true, true);
    monitor.start();
    await timers.advance(INTERVAL_MS - 1);
    expect(scripted.startedAtMs).toEqual([]);
    await timers.advance(1);
    expect(scripted.startedAtMs).toEqual([startMs + INTERVAL_MS]);
    expect(states()).toEqual([HealthState.HEALTH_STATE_HEALTHY]);
    await timers.advance(2 * INTERVAL_MS);
    expect(scripted.startedAtMs).toEqual([startMs + INTERVAL_MS, startMs + 2 * INTERVAL_MS, startMs + 3 * INTERVAL_MS]);
    // Healthy stays healthy: one change only.
    expect(states()).toEqual([HealthState.HEALTH_STATE_HEALTHY]);
    monitor.stop();
  });

  it('health monitor turns unhealthy after `retries` consecutive failures, keeping the last output', async () => {
    const { timers, scripted, monitor, changes } = harness({ config: { retries: 3 } });
    scripted.answer(true, false, false);
    monitor.start();
    await timers.advance(3 * INTERVAL_MS);
    expect(monitor.status).toMatchObject({ state: HealthState.HEALTH_STATE_HEALTHY, failingStreak: 2 });
    scripted.answer(false);
    await timers.advance(INTERVAL_MS);
    expect(changes.map((change) => change.state)).toEqual([HealthState.HEALTH_STATE_HEALTHY, HealthState.HEALTH_STATE_UNHEALTHY]);
    expect(changes.at(-1)).toEqual({ state: HealthState.HEALTH_STATE_UNHEALTHY, failingStreak: 3, lastOutput: 'not ok' });
    monitor.stop();
  });

  it('health monitor resets the failing streak on a success and recovers from unhealthy', async () => {
    const { timers, scripted, monitor, states } = harness({ config: { retries: 2 } });
    scripted.answer(false, true, false, true, false, false, true);
    monitor.start();
    await timers.advance(4 * INTERVAL_MS);
    // fail, ok, fail, ok: never two in a row.
    expect(states()).toEqual([HealthState.HEALTH_STATE_HEALTHY]);
    await timers.advance(2 * INTERVAL_MS);
    expect(states()).toEqual([HealthState.HEALTH_STATE_HEALTHY, HealthState.HEALTH_STATE_UNHEALTHY]);
    await timers.advance(INTERVAL_MS);
    expect(states()).toEqual([HealthState.HEALTH_STATE_HEALTHY, HealthState.HEALTH_STATE_UNHEALTHY, HealthState.HEALTH_STATE_HEALTHY]);
    expect(monitor.status.failingStreak).toBe(0);
    monitor.stop();
  });

  it('health monitor ignores failures during the start period, but a success there makes it healthy', async () => {
    const { timers, scripted, monitor, states } = harness({ config: { retries: 1, startPeriodMs: 3 * INTERVAL_MS + 1 } });
    scripted.answer(false, false, false);
    monitor.start();
    await timers.advance(3 * INTERVAL_MS);
    expect(monitor.status).toMatchObject({ state: HealthState.HEALTH_STATE_STARTING, failingStreak: 0 });
    expect(states()).toEqual([]);
    // Past the start period, one failure (retries 1) is enough.
    scripted.answer(false);
    await timers.advance(INTERVAL_MS);
    expect(states()).toEqual([HealthState.HEALTH_STATE_UNHEALTHY]);
    monitor.stop();

    const second = harness({ config: { retries: 1, startPeriodMs: 10 * INTERVAL_MS } });
    second.scripted.answer(false, true, false);
    second.monitor.start();
    await second.timers.advance(2 * INTERVAL_MS);
    expect(second.states()).toEqual([HealthState.HEALTH_STATE_HEALTHY]);
    // Once healthy, the start period no longer shields failures.
    await second.timers.advance(INTERVAL_MS);
    expect(second.states()).toEqual([HealthState.HEALTH_STATE_HEALTHY, HealthState.HEALTH_STATE_UNHEALTHY]);
    second.monitor.stop();
  });

  it('health monitor counts the start period from the container start, not from the monitor start', async () => {
    const { timers, scripted, monitor, states } = harness({ config: { retries: 1, startPeriodMs: 5 * INTERVAL_MS }, startedAgoMs: 10 * INTERVAL_MS });
    scripted.answer(false);
    monitor.start();
    await timers.advance(INTERVAL_MS);
    expect(states()).toEqual([HealthState.HEALTH_STATE_UNHEALTHY]);
    monitor.stop();
  });

  it('health monitor fails a probe that overruns its timeout and aborts it', async () => {
    const { timers, scripted, monitor, changes } = harness({ config: { retries: 1 } });
    scripted.answer('hang');
    monitor.start();
    await timers.advance(INTERVAL_MS);
    expect(scripted.signals[0]?.aborted).toBe(false);
    await timers.advance(TIMEOUT_MS - 1);
    expect(changes).toEqual([]);
    await timers.advance(1);
    expect(scripted.signals[0]?.aborted).toBe(true);
    expect(changes).toEqual([{ state: HealthState.HEALTH_STATE_UNHEALTHY, failingStreak: 1, lastOutput: 'Health check exceeded timeout (500ms)' }]);
    // The next probe starts an interval after the timeout ended the last one.
    scripted.answer(true);
    await timers.advance(INTERVAL_MS);
    expect(scripted.startedAtMs).toHaveLength(2);
    monitor.stop();
  });

  it('health monitor kills a command probe that overruns its timeout', async () => {
    const runtime = new FakeRuntime();
    await runtime.run({ containerId: 'c1', hostname: 'c1', layerDirs: [], argv: ['sleep'], env: [], user: '', workingDir: '/', memoryLimitBytes: 0, nanoCpus: 0, pidsLimit: 0, labels: {}, files: [] });
    const processes: FakeExecProcess[] = [];
    runtime.execHandler = async () => {
      const process = fakeExecProcess();
      processes.push(process);
      return process;
    };
    const probe = commandProbe({ runtime, containerId: 'c1', address: () => undefined }, ['/bin/sh', '-c', 'sleep 100']);
    const { timers, monitor, changes } = harness({ config: { retries: 1, timeoutMs: 2_000 }, probe });
    monitor.start();
    await timers.advance(INTERVAL_MS + 2_000);
    expect(runtime.calls).toContain('exec c1 /bin/sh -c sleep 100');
    expect(processes[0]?.signals).toEqual(['SIGKILL']);
    expect(changes).toEqual([{ state: HealthState.HEALTH_STATE_UNHEALTHY, failingStreak: 1, lastOutput: 'Health check exceeded timeout (2s)' }]);
    monitor.stop();
  });

  it('health monitor starts from healthy when told so, and stop ends probing without reports', async () => {
    const { timers, scripted, monitor, changes } = harness({ initial: HealthState.HEALTH_STATE_HEALTHY, config: { retries: 2 } });
    scripted.answer(false, 'hang');
    monitor.start();
    await timers.advance(2 * INTERVAL_MS);
    expect(monitor.status).toMatchObject({ state: HealthState.HEALTH_STATE_HEALTHY, failingStreak: 1 });
    expect(scripted.startedAtMs).toHaveLength(2);
    monitor.stop();
    expect(scripted.signals[1]?.aborted).toBe(true);
    await timers.advance(10 * INTERVAL_MS);
    expect(scripted.startedAtMs).toHaveLength(2);
    expect(changes).toEqual([]);
    expect(timers.dueTimesMs).toEqual([]);
  });
});
