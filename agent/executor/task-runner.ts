/**
 * One task's state machine on the agent: prepare (pull) -> start -> monitor -> report, and stop
 * when the manager says so. Operations on one task never overlap; every report moves the
 * observed state forward only. Idempotent: after an agent restart it adopts the task's
 * container instead of starting another.
 */
import type { Logger } from '../../common/log.js';
import type { Task, TaskStatus } from '../../proto/skiff/v1/objects.js';
import { HealthState, TaskState } from '../../proto/skiff/v1/types.js';
import { isForward, isTerminal, taskStateName } from '../../proto/task-states.js';
import type { ImageStore } from '../image/types.js';
import { RuntimeError, type ContainerInfo, type Runtime } from '../runtime/types.js';
import { containerRequest, stopOptions } from './container-request.js';
import { HealthMonitor, type HealthStatus } from './health.js';
import { type HealthConfig, needsImageHealthcheck, resolveHealthCheck } from './health-config.js';
import { probeFor } from './health-probes.js';
import { type TaskFiles, usesData } from './task-data.js';
import { systemTimers, type Timers } from './timers.js';
import { HOST_BRIDGE_NETWORK } from '../../common/address.js';

/** Grace period between the stop signal and SIGKILL when the spec sets none (Docker's default). */
export const STOP_TIMEOUT_MS = 10_000;
/**
 * How long a task on an overlay network keeps running after its desired state passed RUNNING
 * and before its stop signal: the manager already took it out of every host's load-balancer set
 * and DNS, and this lets that reach every host and lets requests in flight finish.
 */
export const DRAIN_MS = 2_000;

export interface TaskRunnerDeps {
  runtime: Runtime;
  images: ImageStore;
  report: (taskId: string, status: TaskStatus, addresses: string[]) => void;
  clock: () => number;
  log: Logger;
  /** The task's secret and config files from the node's in-memory store, as of now. */
  files: (task: Task) => TaskFiles;
  /** Timers of health probes (default: the process's). */
  timers?: Timers;
  /** Drain delay before stopping a load-balanced task (default DRAIN_MS; 0: none). */
  drainMs?: number;
  /** Whether the task is a load-balancer backend (default: it has an overlay network address). */
  balanced?: (task: Task) => boolean;
}

/** A task with an address on an overlay network (the host-bridge attachment is not one). */
export function onOverlay(task: Task): boolean {
  return task.networks.some((attachment) => attachment.network !== HOST_BRIDGE_NETWORK && attachment.addresses.length > 0);
}

/** The error of a task whose health check failed `retries` times in a row (as Swarm says it). */
export const UNHEALTHY_ERROR = 'task: container unhealthy';
/** Most characters of the last probe output repeated in the task's error (the message has it all). */
const UNHEALTHY_SUMMARY_CHARS = 200;

export class TaskRunner {
  private task: Task;

  /** The image reference this task's container runs (as the manager pinned it). */
  get image(): string {
    return this.task.spec?.container?.image ?? '';
  }

  /** The named volumes this task's container mounts. */
  get volumes(): string[] {
    return (this.task.spec?.container?.mounts ?? []).filter((mount) => mount.type === 'volume' && mount.source !== '').map((mount) => mount.source);
  }
  private observed: TaskState;
  private container: ContainerInfo | undefined;
  private busy: Promise<void> = Promise.resolve();
  private removed = false;
  /**
   * The task's secret and config files, taken when the task arrives (its data comes in the same
   * message, and a new session may empty the node's store before the start) and dropped when the
   * start begins: memory only, held no longer than needed.
   */
  private files: TaskFiles | undefined;
  private startAttempted = false;
  /** Reported with every state; NONE unless the task has a health check. */
  private health: HealthState = HealthState.HEALTH_STATE_NONE;
  /** Probes the running container while it runs, when the task has a health check. */
  private monitor: HealthMonitor | undefined;
  /** Whether this runner looked for the running container's health check (once per container). */
  private healthResolved = false;

  constructor(
    task: Task,
    adopted: ContainerInfo | undefined,
    private readonly deps: TaskRunnerDeps,
  ) {
    this.task = task;
    this.observed = task.status?.state ?? TaskState.TASK_STATE_ASSIGNED;
    this.container = adopted;
  }

  get id(): string {
    return this.task.meta?.id ?? '';
  }

  /** The newest version of the task from the manager; reconciles toward its desired state. */
  update(task: Task): void {
    this.task = task;
    if (!this.startAttempted && this.container === undefined && this.files?.ok !== true && usesData(task)) this.files = this.deps.files(task);
    const managerState = task.status?.state ?? TaskState.TASK_STATE_ASSIGNED;
    if (isForward(this.observed, managerState)) this.observed = managerState;
    this.enqueue(() => this.reconcile());
  }

  /** The container exited (seen by the runtime's exit watcher). */
  exited(exitCode: number, oomKilled: boolean): void {
    this.enqueue(async () => {
      this.stopMonitor();
      if (this.container !== undefined) this.container = { ...this.container, status: 'stopped', pid: 0, exitCode };
      if (isTerminal(this.observed)) return;
      if (this.task.desiredState > TaskState.TASK_STATE_RUNNING) {
        this.setState(TaskState.TASK_STATE_SHUTDOWN, 'shutdown', '', exitCode);
      } else if (exitCode === 0) {
        this.setState(TaskState.TASK_STATE_COMPLETE, 'finished', '', 0);
      } else {
        this.setState(TaskState.TASK_STATE_FAILED, 'started', oomKilled ? 'OOMKilled' : `task: non-zero exit (${exitCode})`, exitCode);
      }
    });
  }

  /** The task left this node's assignments: stop and delete its container. */
  remove(): Promise<void> {
    this.removed = true;
    this.stopMonitor();
    this.enqueue(async () => {
      if (this.container !== undefined) await this.deps.runtime.remove(this.id);
      this.container = undefined;
    });
    return this.busy;
  }

  /** The agent stops: health probes end, the container keeps running (the next agent adopts it). */
  stopProbing(): void {
    this.stopMonitor();
  }

  /** Resends the current status (a new session must learn it again). */
  resend(): void {
    if (this.observed >= TaskState.TASK_STATE_ACCEPTED) this.emit(this.lastStatus);
  }

  private lastStatus: TaskStatus | undefined;

  private enqueue(operation: () => Promise<void>): void {
    this.busy = this.busy.then(operation).catch((error: unknown) => this.deps.log.error('task operation failed', { taskId: this.id, error: String(error) }));
  }

  private async reconcile(): Promise<void> {
    if (this.removed) return;
    const desiredRunning = this.task.desiredState <= TaskState.TASK_STATE_RUNNING;
    if (!desiredRunning) {
      this.stopMonitor();
      if (this.container?.status === 'running' || this.container?.status === 'created') {
        const drainMs = this.deps.drainMs ?? DRAIN_MS;
        if (this.container.status === 'running' && drainMs > 0 && (this.deps.balanced ?? onOverlay)(this.task)) await new Promise((resolve) => setTimeout(resolve, drainMs));
        const { signal, timeoutMs } = stopOptions(this.task, STOP_TIMEOUT_MS);
        await this.deps.runtime.stop(this.id, timeoutMs, signal);
        this.container = { ...this.container, status: 'stopped', pid: 0 };
      }
      if (!isTerminal(this.observed)) this.setState(TaskState.TASK_STATE_SHUTDOWN, 'shutdown', '', this.container?.exitCode ?? 0);
      return;
    }
    if (isTerminal(this.observed)) return;
    if (this.container !== undefined) {
      // With a health check, the monitor decides when the task runs (or fails).
      if (this.container.status === 'running' && (this.monitor !== undefined || (await this.adoptHealth()))) return;
      if (this.observed !== TaskState.TASK_STATE_RUNNING || this.container.status !== 'running') this.adopt(this.container);
      return;
    }
    if (this.observed >= TaskState.TASK_STATE_STARTING) {
      // The manager saw this task start, but its container is gone (e.g. the host crashed).
      this.setState(TaskState.TASK_STATE_FAILED, 'starting', 'task container not found on this node', 255);
      return;
    }
    await this.start();
  }

  private adopt(container: ContainerInfo): void {
    if (container.status === 'running') {
      this.setState(TaskState.TASK_STATE_RUNNING, 'started', '', 0);
    } else if (container.status === 'stopped') {
      const exitCode = container.exitCode ?? 255;
      if (exitCode === 0) this.setState(TaskState.TASK_STATE_COMPLETE, 'finished', '', 0);
      else this.setState(TaskState.TASK_STATE_FAILED, 'started', container.oomKilled === true ? 'OOMKilled' : `task: non-zero exit (${exitCode})`, exitCode);
    }
  }

  private async start(): Promise<void> {
    const image = this.task.spec?.container?.image ?? '';
    this.setState(TaskState.TASK_STATE_ACCEPTED, 'accepted', '', 0);
    this.setState(TaskState.TASK_STATE_PREPARING, 'preparing', '', 0);
    this.startAttempted = true;
    const files = usesData(this.task) ? (this.files ?? this.deps.files(this.task)) : { ok: true as const, files: [] };
    this.files = undefined;
    if (!files.ok) {
      this.setState(TaskState.TASK_STATE_REJECTED, 'preparing', files.error, 0);
      return;
    }
    let pulled;
    try {
      pulled = await this.deps.images.pull(image);
    } catch (error) {
      this.setState(TaskState.TASK_STATE_REJECTED, 'preparing', errorMessage(error), 0);
      return;
    }
    if (this.removed || this.task.desiredState > TaskState.TASK_STATE_RUNNING) return this.reconcile();
    const healthCheck = resolveHealthCheck(this.task.spec?.container?.healthcheck, pulled.config.healthcheck);
    this.healthResolved = true;
    this.setState(TaskState.TASK_STATE_READY, 'prepared', '', 0);
    if (healthCheck !== undefined) this.health = HealthState.HEALTH_STATE_STARTING;
    this.setState(TaskState.TASK_STATE_STARTING, 'starting', '', 0);
    try {
      this.container = await this.deps.runtime.run(containerRequest(this.task, pulled, files.files));
    } catch (error) {
      this.health = HealthState.HEALTH_STATE_NONE;
      // A request this node cannot honour (a ulimit above its limits, a missing bind source) is rejected, as in Swarm.
      const refused = error instanceof RuntimeError && error.code === 'invalid_request';
      this.setState(refused ? TaskState.TASK_STATE_REJECTED : TaskState.TASK_STATE_FAILED, 'starting', errorMessage(error), 0);
      return;
    }
    if (this.container.status === 'stopped') {
      this.adopt(this.container);
      return;
    }
    if (healthCheck !== undefined) this.watchHealth(healthCheck, HealthState.HEALTH_STATE_STARTING);
    else this.setState(TaskState.TASK_STATE_RUNNING, 'started', '', 0);
  }

  /**
   * A running container this runner did not start (adopted after an agent restart): if its task
   * has a health check, a new monitor takes over and true is returned. A task the manager already
   * saw running stays running and is taken as healthy (it was, to become running), so `retries`
   * failures in a row still fail it; the start period counts from the container's start as
   * before. A task not yet running stays starting until its first success.
   */
  private async adoptHealth(): Promise<boolean> {
    if (this.healthResolved) return false;
    this.healthResolved = true;
    const container = this.task.spec?.container;
    const image = needsImageHealthcheck(container?.healthcheck) ? await this.deps.images.getLocal(container?.image ?? '').catch(() => undefined) : undefined;
    const healthCheck = resolveHealthCheck(container?.healthcheck, image?.config.healthcheck);
    if (healthCheck === undefined || this.removed || this.container?.status !== 'running') return false;
    const running = this.observed === TaskState.TASK_STATE_RUNNING;
    this.health = running ? HealthState.HEALTH_STATE_HEALTHY : HealthState.HEALTH_STATE_STARTING;
    this.setState(TaskState.TASK_STATE_STARTING, 'starting', '', 0);
    this.watchHealth(healthCheck, running ? HealthState.HEALTH_STATE_HEALTHY : HealthState.HEALTH_STATE_STARTING);
    return true;
  }

  private watchHealth(config: HealthConfig, initial: HealthState.HEALTH_STATE_STARTING | HealthState.HEALTH_STATE_HEALTHY): void {
    const container = this.container;
    if (container === undefined) return;
    const timers = this.deps.timers ?? systemTimers;
    const target = { runtime: this.deps.runtime, containerId: container.containerId, address: () => this.container?.addresses[0] };
    const monitor: HealthMonitor = new HealthMonitor({
      config,
      probe: probeFor(config.probe, target),
      timers,
      startedAtMs: container.startedAtMs > 0 ? container.startedAtMs : timers.now(),
      initial,
      onChange: (status) => this.enqueue(() => this.healthChanged(monitor, status)),
    });
    this.monitor = monitor;
    monitor.start();
  }

  private stopMonitor(): void {
    this.monitor?.stop();
    this.monitor = undefined;
  }

  private async healthChanged(monitor: HealthMonitor, status: HealthStatus): Promise<void> {
    if (this.monitor !== monitor || this.removed || isTerminal(this.observed) || this.task.desiredState > TaskState.TASK_STATE_RUNNING) return;
    this.deps.log.info('task health', { taskId: this.id, transition: `${healthName(this.health)} -> ${healthName(status.state)}` });
    if (status.state === HealthState.HEALTH_STATE_HEALTHY) {
      this.health = status.state;
      this.setState(TaskState.TASK_STATE_RUNNING, 'started', '', 0);
    } else if (status.state === HealthState.HEALTH_STATE_UNHEALTHY) {
      await this.failUnhealthy(status.lastOutput);
    }
  }

  /** Stops the container (as for a shutdown), then fails the task so its restart policy replaces it. */
  private async failUnhealthy(output: string): Promise<void> {
    this.stopMonitor();
    this.health = HealthState.HEALTH_STATE_UNHEALTHY;
    try {
      const { signal, timeoutMs } = stopOptions(this.task, STOP_TIMEOUT_MS);
      await this.deps.runtime.stop(this.id, timeoutMs, signal);
    } catch (error) {
      this.deps.log.warn('cannot stop unhealthy container', { taskId: this.id, error: errorMessage(error) });
    }
    const stopped = await this.deps.runtime.inspect(this.id).catch(() => undefined);
    const exitCode = stopped?.exitCode ?? this.container?.exitCode ?? 0;
    if (this.container !== undefined) this.container = { ...this.container, status: 'stopped', pid: 0, exitCode };
    const summary = output.trim().split('\n')[0]?.slice(0, UNHEALTHY_SUMMARY_CHARS) ?? '';
    this.setState(TaskState.TASK_STATE_FAILED, output, summary === '' ? UNHEALTHY_ERROR : `${UNHEALTHY_ERROR}: ${summary}`, exitCode);
  }

  private setState(state: TaskState, message: string, err: string, exitCode: number): void {
    if (!isForward(this.observed, state)) return;
    this.deps.log.info('task state', { taskId: this.id, transition: `${taskStateName(this.observed)} -> ${taskStateName(state)}`, err });
    this.observed = state;
    this.emit({
      state,
      message,
      err,
      timestampMs: this.deps.clock(),
      exitCode,
      containerId: this.container?.containerId ?? '',
      pid: this.container?.status === 'running' ? this.container.pid : 0,
      health: this.health,
    });
  }

  private emit(status: TaskStatus | undefined): void {
    if (status === undefined) return;
    this.lastStatus = status;
    this.deps.report(this.id, status, this.container?.addresses ?? []);
  }
}

const HEALTH_NAMES: Record<HealthState, string> = {
  [HealthState.HEALTH_STATE_NONE]: 'none',
  [HealthState.HEALTH_STATE_STARTING]: 'starting',
  [HealthState.HEALTH_STATE_HEALTHY]: 'healthy',
  [HealthState.HEALTH_STATE_UNHEALTHY]: 'unhealthy',
  [HealthState.UNRECOGNIZED]: 'unknown',
};

function healthName(state: HealthState): string {
  return HEALTH_NAMES[state];
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
