/**
 * Task-status intake: agents' reports are queued and written in one transaction per batch.
 * A report is applied only if the task exists, is assigned to the reporting node, and the
 * observed state moves forward: a late or replayed report can never move a task backwards.
 */
import type { Logger } from '../../common/log.js';
import type { TaskStatusUpdate } from '../../proto/skiff/v1/dispatcher.js';
import { TaskState } from '../../proto/skiff/v1/types.js';
import { isForward, taskStateName } from '../../proto/task-states.js';
import { StoreError } from '../store/errors.js';
import type { Store } from '../store/store.js';

/** Reports written in one transaction at most. */
export const MAX_STATUS_BATCH = 1000;
/**
 * Tasks with a queued report at most. Reports are kept per task (the latest forward one), so
 * this bounds distinct tasks, not messages: agents do not resend a report the manager dropped,
 * and a queue of messages that dropped batches under load lost those tasks' states for good.
 */
export const MAX_STATUS_QUEUE = 200_000;

interface QueuedReport {
  nodeId: string;
  update: TaskStatusUpdate;
}

export class StatusIntake {
  /** The latest report per node and task, in arrival order of each task's first queued report. */
  private queue = new Map<string, QueuedReport>();
  private flushing = false;
  /** Reports per transaction: halved when one was too large for a Raft entry (tasks with large specs), regrown after each success. */
  private batchLimit = MAX_STATUS_BATCH;

  constructor(
    private readonly store: Store,
    private readonly log: Logger,
  ) {}

  /** Queues the reports of one node. Returns false when the queue is full (the caller drops the batch). */
  submit(nodeId: string, updates: readonly TaskStatusUpdate[]): boolean {
    if (this.queue.size + updates.length > MAX_STATUS_QUEUE) return false;
    for (const update of updates) this.enqueue({ nodeId, update });
    if (!this.flushing) void this.flush();
    return true;
  }

  /** Keeps the report unless one further along is queued for the same task already. */
  private enqueue(report: QueuedReport): void {
    const key = `${report.nodeId}\u0000${report.update.taskId}`;
    const queued = this.queue.get(key);
    const state = (queued: QueuedReport): TaskState => queued.update.status?.state ?? TaskState.TASK_STATE_NEW;
    if (queued !== undefined && state(queued) > state(report)) return;
    this.queue.set(key, report);
  }

  private takeBatch(): QueuedReport[] {
    const batch: QueuedReport[] = [];
    for (const [key, report] of this.queue) {
      if (batch.length >= this.batchLimit) break;
      this.queue.delete(key);
      batch.push(report);
    }
    return batch;
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    // Let the reports of this turn join the batch.
    await new Promise((resolve) => setImmediate(resolve));
    try {
      while (this.queue.size > 0) {
        const batch = this.takeBatch();
        try {
          await this.store.update((transaction, reader) => {
            const seen = new Map<string, TaskStatusUpdate>();
            for (const { nodeId, update } of batch) {
              const task = reader.get('task', update.taskId);
              const status = update.status;
              if (task === undefined || status === undefined || task.nodeId !== nodeId) continue;
              const current = seen.get(update.taskId)?.status?.state ?? task.status?.state ?? TaskState.TASK_STATE_NEW;
              if (!isForward(current, status.state)) continue;
              seen.set(update.taskId, update);
              this.log.debug('task state', { taskId: update.taskId, transition: `${taskStateName(current)} -> ${taskStateName(status.state)}`, message: status.message });
            }
            for (const [taskId, update] of seen) {
              const task = reader.get('task', taskId);
              if (task === undefined || update.status === undefined) continue;
              transaction.updateTaskStatus(task, update.status, update.networks);
            }
          });
          this.batchLimit = Math.min(MAX_STATUS_BATCH, this.batchLimit * 2);
        } catch (error) {
          if (error instanceof StoreError && error.code === 'too_large' && batch.length > 1) {
            this.batchLimit = Math.max(1, Math.floor(batch.length / 2));
            this.log.info('status batch too large; retrying with fewer reports', { reports: batch.length, batchLimit: this.batchLimit });
          }
          // A conflict means a task changed under us (e.g. the orchestrator retired it): retry
          // the batch against the new state; forward-only checks keep it safe.
          this.log.debug('status batch retry', { error: String(error) });
          for (const report of batch) {
            const key = `${report.nodeId}\u0000${report.update.taskId}`;
            if (!this.queue.has(key)) this.queue.set(key, report); // a newer report of the task wins
          }
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      }
    } finally {
      this.flushing = false;
    }
  }
}
