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
import type { ContainerInfo, Runtime } from '../runtime/types.js';
import { containerRequest } from './container-request.js';
import { type TaskFiles, usesData } from './task-data.js';

/** Grace period between SIGTERM and SIGKILL when stopping a task (Docker's default). */
export const STOP_TIMEOUT_MS = 10_000;

export interface TaskRunnerDeps {
  runtime: Runtime;
  images: ImageStore;
  report: (taskId: string, status: TaskStatus, addresses: string[]) => void;
  clock: () => number;
  log: Logger;
  /** The task's secret and config files from the node's in-memory store, as of now. */
  files: (task: Task) => TaskFiles;
}

export class TaskRunner {
  private task: Task;

  /** The image reference this task's container runs (as the manager pinned it). */
  get image(): string {
    return this.task.spec?.container?.image ?? '';
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
    this.enqueue(async () => {
      if (this.container !== undefined) await this.deps.runtime.remove(this.id);
      this.container = undefined;
    });
    return this.busy;
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
      if (this.container?.status === 'running' || this.container?.status === 'created') {
        await this.deps.runtime.stop(this.id, STOP_TIMEOUT_MS);
        this.container = { ...this.container, status: 'stopped', pid: 0 };
      }
      if (!isTerminal(this.observed)) this.setState(TaskState.TASK_STATE_SHUTDOWN, 'shutdown', '', this.container?.exitCode ?? 0);
      return;
    }
    if (isTerminal(this.observed)) return;
    if (this.container !== undefined) {
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
    this.setState(TaskState.TASK_STATE_READY, 'prepared', '', 0);
    this.setState(TaskState.TASK_STATE_STARTING, 'starting', '', 0);
    try {
      this.container = await this.deps.runtime.run(containerRequest(this.task, pulled, files.files));
    } catch (error) {
      this.setState(TaskState.TASK_STATE_FAILED, 'starting', errorMessage(error), 0);
      return;
    }
    if (this.container.status === 'stopped') {
      this.adopt(this.container);
      return;
    }
    this.setState(TaskState.TASK_STATE_RUNNING, 'started', '', 0);
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
      health: HealthState.HEALTH_STATE_NONE,
    });
  }

  private emit(status: TaskStatus | undefined): void {
    if (status === undefined) return;
    this.lastStatus = status;
    this.deps.report(this.id, status, this.container?.addresses ?? []);
  }
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
