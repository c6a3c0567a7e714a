/**
 * How a user's task reference finds tasks: a task id, a unique id prefix, a task name
 * (`web.2`, `web.<node id>` for global services, or the full `web.2.<task id>`), or, for logs, a
 * service (id, name, prefix) meaning all of its tasks, history included.
 */
import type { Task } from '../../proto/skiff/v1/objects.js';
import { TaskState } from '../../proto/skiff/v1/types.js';
import type { StoreReader } from '../store/store.js';
import { ApiError } from './errors.js';
import { resolveService } from './control-common.js';

/** `web.2` for replicated tasks, `web.<node id>` for global ones (as LogMessage.task_name). */
export function shortTaskName(task: Task): string {
  return `${task.serviceName}.${task.slot === 0 ? task.nodeId : String(task.slot)}`;
}

/** Newest first; among tasks of one name, the one meant to run wins. */
function preference(a: Task, b: Task): number {
  const running = (task: Task): number => (task.desiredState === TaskState.TASK_STATE_RUNNING ? 1 : 0);
  return running(b) - running(a) || (b.meta?.createdAtMs ?? 0) - (a.meta?.createdAtMs ?? 0) || (b.meta?.version ?? 0) - (a.meta?.version ?? 0);
}

/** One task, by id, name or unique id prefix; a name shared by a slot's history picks the current task. */
export function resolveTask(reader: StoreReader, reference: string): Task {
  if (reference === '') throw new ApiError('invalid_argument', 'cannot find task: no task name or id given');
  const exact = reader.get('task', reference);
  if (exact !== undefined) return exact;
  const tasks = reader.list('task');
  const named = tasks.filter((task) => shortTaskName(task) === reference || `${shortTaskName(task)}.${task.meta?.id ?? ''}` === reference).sort(preference);
  if (named[0] !== undefined) return named[0];
  const prefixed = tasks.filter((task) => task.meta?.id.startsWith(reference));
  if (prefixed.length === 1 && prefixed[0] !== undefined) return prefixed[0];
  if (prefixed.length > 1) throw new ApiError('invalid_argument', `cannot find task "${reference}": the id prefix is ambiguous`);
  throw new ApiError('not_found', `cannot find task "${reference}": no such task`);
}

/**
 * The tasks whose logs `skiff service logs REF` shows: a service's tasks (stopped ones too: their
 * containers may still be on their nodes), or one task. Only tasks that reached a node count.
 */
export function tasksForLogs(reader: StoreReader, service: string, task: string): Task[] {
  if (task !== '') return [resolveTask(reader, task)].filter((found) => found.nodeId !== '');
  if (service === '') throw new ApiError('invalid_argument', 'cannot read logs: give a service or a task');
  let found;
  try {
    found = resolveService(reader, service);
  } catch (error) {
    // `skiff service logs web.2`: the CLI passes one reference; a task name is fine too.
    if (error instanceof ApiError && error.code === 'not_found') return [resolveTask(reader, service)].filter((one) => one.nodeId !== '');
    throw error;
  }
  return reader.tasksByService(found.meta?.id ?? '').filter((one) => one.nodeId !== '');
}
