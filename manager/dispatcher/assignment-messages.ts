/**
 * Splitting a set of task changes into Assignments messages for one session, each carrying the
 * secrets and configs (with their data) that its tasks use and the session has not sent yet.
 * A task's data travels in the same message as the task or an earlier one of the same session,
 * so the agent holds it the moment it learns about the task; a node never receives data that
 * none of its tasks uses. Pure: the store is read through `lookup`, time is not involved.
 */
import { type Assignments, AssignmentsKind } from '../../proto/skiff/v1/dispatcher.js';
import type { Config, Secret, Task } from '../../proto/skiff/v1/objects.js';
import { TaskState } from '../../proto/skiff/v1/types.js';
import { MAX_TASK_DATA_BYTES } from '../api/validate-references.js';
import type { StoreReader } from '../store/store.js';

/** Tasks per assignments message at most; a larger set is split. */
export const MAX_TASKS_PER_MESSAGE = 500;
/**
 * Secret and config bytes per assignments message at most (one task's data may fill it alone).
 * With the tasks beside them, messages stay under the agents' 4 MiB receive limit.
 */
export const MAX_DATA_BYTES_PER_MESSAGE = MAX_TASK_DATA_BYTES;

/** The ids of the secrets and configs a session has sent. Owned by that session only. */
export interface SentData {
  secrets: Set<string>;
  configs: Set<string>;
}

export function newSentData(): SentData {
  return { secrets: new Set(), configs: new Set() };
}

/** Reads secrets and configs by id. */
export type DataLookup = Pick<StoreReader, 'get'>;

/**
 * True when the agent may still start `task`, and so needs its secrets and configs. A task the
 * agent reported starting (or later) has used them already: its container keeps its own tmpfs,
 * and an agent that lost that container fails the task rather than starting it again.
 */
export function needsData(task: Task): boolean {
  const state = task.status?.state ?? TaskState.TASK_STATE_NEW;
  return task.desiredState <= TaskState.TASK_STATE_RUNNING && state < TaskState.TASK_STATE_STARTING;
}

interface TaskData {
  secrets: Secret[];
  configs: Config[];
  bytes: number;
}

/** The data `task` uses that `sent` does not hold. Missing objects are skipped (the agent rejects the task). */
function unsentData(task: Task, lookup: DataLookup, sent: SentData): TaskData {
  const result: TaskData = { secrets: [], configs: [], bytes: 0 };
  const container = task.spec?.container;
  if (container === undefined || !needsData(task)) return result;
  for (const secretId of new Set(container.secrets.map((reference) => reference.secretId))) {
    const secret = sent.secrets.has(secretId) ? undefined : lookup.get('secret', secretId);
    if (secret === undefined) continue;
    result.secrets.push(secret);
    result.bytes += secret.spec?.data.length ?? 0;
  }
  for (const configId of new Set(container.configs.map((reference) => reference.configId))) {
    const config = sent.configs.has(configId) ? undefined : lookup.get('config', configId);
    if (config === undefined) continue;
    result.configs.push(config);
    result.bytes += config.spec?.data.length ?? 0;
  }
  return result;
}

/**
 * The messages that tell the agent about `updated` and `removed`: the first of `kind`, any
 * further ones INCREMENTAL (a FULL set larger than one message goes as FULL followed by
 * INCREMENTAL parts). Records in `sent` the data they carry: the caller must write them all.
 */
export function assignmentMessages(kind: AssignmentsKind, updated: readonly Task[], removed: readonly string[], lookup: DataLookup, sent: SentData): Assignments[] {
  const messages: Assignments[] = [];
  let current: Assignments = { kind, updated: [], removed: [...removed], secrets: [], configs: [] };
  let currentBytes = 0;
  for (const task of updated) {
    const data = unsentData(task, lookup, sent);
    if (current.updated.length >= MAX_TASKS_PER_MESSAGE || (current.updated.length > 0 && currentBytes + data.bytes > MAX_DATA_BYTES_PER_MESSAGE)) {
      messages.push(current);
      current = { kind: AssignmentsKind.ASSIGNMENTS_KIND_INCREMENTAL, updated: [], removed: [], secrets: [], configs: [] };
      currentBytes = 0;
    }
    current.updated.push(task);
    current.secrets.push(...data.secrets);
    current.configs.push(...data.configs);
    for (const secret of data.secrets) sent.secrets.add(secret.meta?.id ?? '');
    for (const config of data.configs) sent.configs.add(config.meta?.id ?? '');
    currentBytes += data.bytes;
  }
  messages.push(current);
  return messages;
}
