/**
 * A health monitor for one running task, with Docker's semantics (moby daemon/health.go):
 *
 * - The first probe runs one interval after the monitor starts; each next one an interval after
 *   the previous one ended.
 * - Each probe is bounded by the timeout: one that overruns is aborted (a command is killed) and
 *   counts as a failure, "Health check exceeded timeout (…)".
 * - A success makes the task healthy and resets the failing streak.
 * - A failure while still starting and within the start period (counted from the container's
 *   start) does not count; any other failure extends the streak, and `retries` consecutive ones
 *   make the task unhealthy.
 *
 * The monitor reports every change of health state through onChange; what a change means for the
 * task (running, failed) is the task runner's business. Time comes from injected Timers.
 */
import { HealthState } from '../../proto/skiff/v1/types.js';
import { formatDurationMs, type HealthConfig } from './health-config.js';
import { type Probe, type ProbeResult, truncateOutput } from './health-probes.js';
import type { TimerHandle, Timers } from './timers.js';

export interface HealthStatus {
  state: HealthState;
  /** Consecutive failures that counted. */
  failingStreak: number;
  /** Output of the latest probe (at most MAX_HEALTH_OUTPUT_BYTES). */
  lastOutput: string;
}

export interface HealthMonitorOptions {
  config: HealthConfig;
  probe: Probe;
  timers: Timers;
  /** When the container started: the start period counts from here. */
  startedAtMs: number;
  /** STARTING for a new task; HEALTHY for one already seen healthy (adopted after an agent restart). */
  initial: HealthState.HEALTH_STATE_STARTING | HealthState.HEALTH_STATE_HEALTHY;
  /** Called after each change of `state`, never after stop(). */
  onChange: (status: HealthStatus) => void;
}

export class HealthMonitor {
  private current: HealthStatus;
  private timer: TimerHandle | undefined;
  private inFlight: AbortController | undefined;
  private stopped = false;

  constructor(private readonly options: HealthMonitorOptions) {
    this.current = { state: options.initial, failingStreak: 0, lastOutput: '' };
  }

  get status(): HealthStatus {
    return { ...this.current };
  }

  /** Schedules the first probe, one interval from now. */
  start(): void {
    if (this.stopped || this.timer !== undefined || this.inFlight !== undefined) return;
    this.schedule();
  }

  /** No probe starts after this; one in flight is aborted and its result dropped. */
  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) this.options.timers.clearTimeout(this.timer);
    this.timer = undefined;
    this.inFlight?.abort();
    this.inFlight = undefined;
  }

  private schedule(): void {
    this.timer = this.options.timers.setTimeout(() => {
      this.timer = undefined;
      void this.probeOnce();
    }, this.options.config.intervalMs);
  }

  private async probeOnce(): Promise<void> {
    if (this.stopped) return;
    const { timers, config } = this.options;
    const controller = new AbortController();
    this.inFlight = controller;
    let timeout: TimerHandle | undefined;
    const timedOut = new Promise<ProbeResult>((resolve) => {
      timeout = timers.setTimeout(() => {
        controller.abort();
        resolve({ healthy: false, output: `Health check exceeded timeout (${formatDurationMs(config.timeoutMs)})` });
      }, config.timeoutMs);
    });
    const probed = this.options.probe(controller.signal).catch((error: unknown) => ({ healthy: false, output: String(error) }));
    const result = await Promise.race([probed, timedOut]);
    if (timeout !== undefined) timers.clearTimeout(timeout);
    if (this.stopped || this.inFlight !== controller) return;
    this.inFlight = undefined;
    this.record(result);
    if (!this.stopped) this.schedule();
  }

  private record(result: ProbeResult): void {
    const before = this.current.state;
    const next: HealthStatus = { ...this.current, lastOutput: truncateOutput(result.output) };
    if (result.healthy) {
      next.failingStreak = 0;
      next.state = HealthState.HEALTH_STATE_HEALTHY;
    } else if (!this.inStartPeriod()) {
      next.failingStreak += 1;
      if (next.failingStreak >= this.options.config.retries) next.state = HealthState.HEALTH_STATE_UNHEALTHY;
    }
    this.current = next;
    if (next.state !== before) this.options.onChange(this.status);
  }

  /** Failures do not count while the task has never been healthy and the start period runs. */
  private inStartPeriod(): boolean {
    const { startPeriodMs } = this.options.config;
    return this.current.state === HealthState.HEALTH_STATE_STARTING && startPeriodMs > 0 && this.options.timers.now() - this.options.startedAtMs < startPeriodMs;
  }
}
