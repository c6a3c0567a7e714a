/**
 * Reading skiffd's JSON log for the benchmarks. Pure: no I/O. The agent logs every task state change
 * as `{"time": ISO, "msg": "task state", "taskId": ..., "transition": "old -> new"}` (1 ms resolution).
 */

/** When (epoch ms) each task of `taskIds` was first logged `-> accepted` and last logged `-> running`. */
export interface TaskStateSpan {
  /** How many of the tasks have both an accepted and a running line. */
  tasks: number;
  /** Earliest `-> accepted` among them. */
  firstAcceptedAt: number;
  /** Latest `-> running` among them. */
  lastRunningAt: number;
  /** lastRunningAt - firstAcceptedAt. */
  spanMs: number;
  /** Per task, accepted -> running in ms, in the order of `taskIds`. */
  perTaskMs: number[];
}

interface TaskStateLine {
  time?: unknown;
  msg?: unknown;
  taskId?: unknown;
  transition?: unknown;
}

/**
 * The span from the first task accepted to the last task running, over the tasks in `taskIds`
 * that have both lines in `logText`; undefined when none has. Lines that are not JSON are skipped.
 */
export function taskStateSpan(logText: string, taskIds: readonly string[]): TaskStateSpan | undefined {
  const wanted = new Set(taskIds);
  const accepted = new Map<string, number>();
  const running = new Map<string, number>();
  for (const line of logText.split('\n')) {
    if (!line.includes('task state')) continue;
    let record: TaskStateLine;
    try {
      record = JSON.parse(line) as TaskStateLine;
    } catch {
      continue;
    }
    if (record.msg !== 'task state' || typeof record.taskId !== 'string' || !wanted.has(record.taskId)) continue;
    if (typeof record.time !== 'string' || typeof record.transition !== 'string') continue;
    const at = Date.parse(record.time);
    if (!Number.isFinite(at)) continue;
    if (record.transition.endsWith('-> accepted') && !accepted.has(record.taskId)) accepted.set(record.taskId, at);
    if (record.transition.endsWith('-> running')) running.set(record.taskId, at);
  }
  const complete = taskIds.filter((id) => accepted.has(id) && running.has(id));
  if (complete.length === 0) return undefined;
  const perTaskMs = complete.map((id) => (running.get(id) ?? 0) - (accepted.get(id) ?? 0));
  const firstAcceptedAt = Math.min(...complete.map((id) => accepted.get(id) ?? Infinity));
  const lastRunningAt = Math.max(...complete.map((id) => running.get(id) ?? -Infinity));
  return { tasks: complete.length, firstAcceptedAt, lastRunningAt, spanMs: lastRunningAt - firstAcceptedAt, perTaskMs };
}
