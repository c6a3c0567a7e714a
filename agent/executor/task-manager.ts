/**
 * The agent's set of task runners, kept equal to the manager's assignments for this node.
 * Containers found at start (runtime.list) are adopted by their task; containers of tasks that
 * are no longer assigned are removed once the first full assignment set arrives.
 */
import type { Logger } from '../../common/log.js';
import { AssignmentsKind } from '../../proto/skiff/v1/dispatcher.js';
import type { Config, Secret, Task, TaskStatus } from '../../proto/skiff/v1/objects.js';
import type { ImageStore } from '../image/types.js';
import type { ContainerInfo, Runtime } from '../runtime/types.js';
import { TASK_ID_LABEL } from './container-request.js';
import { TaskDataStore } from './task-data.js';
import { TaskRunner, type TaskRunnerDeps } from './task-runner.js';

export type StatusReporter = (taskId: string, status: TaskStatus, addresses: string[]) => void;

export class TaskManager {
  private readonly runners = new Map<string, TaskRunner>();
  /** Secrets and configs of the current session: memory only. */
  private readonly data = new TaskDataStore();
  /** Containers found at start and not yet claimed by a task, by task id. */
  private unclaimed = new Map<string, ContainerInfo>();
  private stopWatching: (() => void) | undefined;

  constructor(
    private readonly runtime: Runtime,
    private readonly images: ImageStore,
    private readonly report: StatusReporter,
    private readonly clock: () => number,
    private readonly log: Logger,
    private readonly drain: Pick<TaskRunnerDeps, 'drainMs' | 'balanced'> = {},
  ) {}

  /** Lists existing containers for adoption and starts watching exits. Call before the first assignments. */
  async start(): Promise<void> {
    // Watch first: exits that happened while no agent ran are delivered on the first list().
    const pendingExits = new Map<string, { exitCode: number; oomKilled: boolean }>();
    this.stopWatching = this.runtime.watchExits((containerId, exitCode, oomKilled) => {
      const runner = this.runners.get(containerId);
      if (runner !== undefined) {
        runner.exited(exitCode, oomKilled);
        return;
      }
      pendingExits.set(containerId, { exitCode, oomKilled });
      // An exit after list() but before the task's first assignment: the runtime tells it once,
      // so the container waiting to be adopted must remember it.
      for (const [taskId, container] of this.unclaimed) {
        if (container.containerId === containerId) this.unclaimed.set(taskId, { ...container, status: 'stopped', pid: 0, exitCode, oomKilled });
      }
    });
    for (const container of await this.runtime.list()) {
      const taskId = container.labels[TASK_ID_LABEL] ?? container.containerId;
      const exit = pendingExits.get(container.containerId);
      this.unclaimed.set(taskId, exit === undefined ? container : { ...container, status: 'stopped', pid: 0, exitCode: exit.exitCode, oomKilled: exit.oomKilled });
    }
    this.log.info('containers found at start', { count: this.unclaimed.size });
  }

  async stop(): Promise<void> {
    this.stopWatching?.();
    // Containers keep running for the next agent to adopt; their health probes end with this one.
    for (const runner of this.runners.values()) runner.stopProbing();
  }

  /** Image references of this node's tasks, one per task (for image rm/prune/GC). */
  imagesInUse(): string[] {
    return [...this.runners.values()].map((runner) => runner.image).filter((image) => image !== '');
  }

  /** Named volumes the tasks here mount (one entry per task and mount), whatever their state. */
  volumesInUse(): string[] {
    return [...this.runners.values()].flatMap((runner) => runner.volumes);
  }

  /**
   * Applies one assignments message. Its secrets and configs are stored before its tasks are
   * looked at: a task's data comes in the same message or an earlier one of the session.
   */
  apply(kind: AssignmentsKind, updated: readonly Task[], removed: readonly string[], data: { secrets: readonly Secret[]; configs: readonly Config[] } = { secrets: [], configs: [] }): void {
    this.data.add(data.secrets, data.configs);
    if (kind === AssignmentsKind.ASSIGNMENTS_KIND_FULL) {
      const assigned = new Set(updated.map((task) => task.meta?.id ?? ''));
      for (const [taskId, runner] of this.runners) {
        if (!assigned.has(taskId)) void this.drop(taskId, runner);
      }
      for (const [taskId, container] of this.unclaimed) {
        if (assigned.has(taskId)) continue;
        this.log.info('removing container of a task no longer assigned', { taskId, containerId: container.containerId });
        void this.runtime.remove(container.containerId).catch((error: unknown) => this.log.warn('cannot remove container', { taskId, error: String(error) }));
        this.unclaimed.delete(taskId);
      }
    }
    for (const task of updated) this.upsert(task);
    for (const taskId of removed) {
      const runner = this.runners.get(taskId);
      if (runner !== undefined) void this.drop(taskId, runner);
    }
  }

  /** Resends every task's latest status (after a new session starts). */
  resendAll(): void {
    for (const runner of this.runners.values()) runner.resend();
  }

  /**
   * A new session started: it sends again the data its tasks use, so the old session's goes.
   * Runners already hold the files of the tasks they have yet to start.
   */
  sessionStarted(): void {
    this.data.clear();
    this.resendAll();
  }

  /** How many secrets and configs this node holds in memory. */
  get heldData(): { secrets: number; configs: number } {
    return this.data.size;
  }

  private upsert(task: Task): void {
    const taskId = task.meta?.id ?? '';
    let runner = this.runners.get(taskId);
    if (runner === undefined) {
      const adopted = this.unclaimed.get(taskId);
      this.unclaimed.delete(taskId);
      runner = new TaskRunner(task, adopted, { runtime: this.runtime, images: this.images, report: this.report, clock: this.clock, log: this.log, files: (wanted) => this.data.filesFor(wanted), ...this.drain });
      this.runners.set(taskId, runner);
    }
    runner.update(task);
  }

  private async drop(taskId: string, runner: TaskRunner): Promise<void> {
    this.runners.delete(taskId);
    await runner.remove();
  }
}
