/** The rows `service ls` and `service ps` print. Field names are a public interface: never rename. */
import type { ServiceReplicaCounts } from '../../proto/skiff/v1/control.js';
import type { Node, Service, Task } from '../../proto/skiff/v1/objects.js';
import { healthStateName, taskStateName, type TaskHealth } from '../../proto/task-states.js';
import { HealthState, TaskState } from '../../proto/skiff/v1/types.js';
import { type OutputFormat, printJson, printTable } from '../output.js';

export interface ServiceRow {
  id: string;
  name: string;
  mode: 'replicated' | 'global';
  replicas: string;
  image: string;
  /** updating, paused, completed, rollback_started, rollback_paused, rollback_completed; '' before any update. */
  updateStatus: string;
  /** Why it paused or rolled back, or '' . */
  updateMessage: string;
}

export interface TaskRow {
  id: string;
  name: string;
  slot: number;
  nodeId: string;
  hostname: string;
  desiredState: string;
  state: string;
  error: string;
  exitCode: number;
  containerId: string;
  pid: number;
  image: string;
  addresses: string[];
  /** '' without a health check; else starting, healthy or unhealthy. */
  health: TaskHealth;
}

/** CURRENT STATE with health the way `docker ps` shows it: "running (healthy)", "starting (health: starting)". */
export function stateWithHealth(row: Pick<TaskRow, 'state' | 'health'>): string {
  if (row.health === '') return row.state;
  return `${row.state} (${row.health === 'starting' ? 'health: starting' : row.health})`;
}

/** An image as `service ls`/`ps` show it: a pinned `name:tag@sha256:...` without its digest, as Docker does. */
export function displayImage(image: string): string {
  const at = image.indexOf('@');
  if (at === -1) return image;
  const name = image.slice(0, at);
  return name.lastIndexOf(':') > name.lastIndexOf('/') ? name : image;
}

export function serviceRow(service: Service, counts: ServiceReplicaCounts | undefined): ServiceRow {
  return {
    id: service.meta?.id ?? '',
    name: service.spec?.name ?? '',
    mode: service.spec?.mode?.$case === 'global' ? 'global' : 'replicated',
    replicas: `${counts?.running ?? 0}/${counts?.desired ?? 0}`,
    image: displayImage(service.spec?.taskTemplate?.container?.image ?? ''),
    updateStatus: service.updateStatus?.state ?? '',
    updateMessage: service.updateStatus?.message ?? '',
  };
}

export function taskRow(task: Task, nodes: ReadonlyMap<string, Node>): TaskRow {
  const state = task.status?.state ?? TaskState.TASK_STATE_NEW;
  return {
    id: task.meta?.id ?? '',
    // A global task's slot is 0: it is named after its node, as in Swarm.
    name: task.slot === 0 ? `${task.serviceName}.${task.nodeId}` : `${task.serviceName}.${task.slot}`,
    slot: task.slot,
    nodeId: task.nodeId,
    hostname: nodes.get(task.nodeId)?.description?.hostname ?? '',
    desiredState: taskStateName(task.desiredState),
    state: taskStateName(state),
    error: task.status?.err ?? '',
    exitCode: task.status?.exitCode ?? 0,
    containerId: task.status?.containerId ?? '',
    pid: state === TaskState.TASK_STATE_RUNNING ? (task.status?.pid ?? 0) : 0,
    image: displayImage(task.spec?.container?.image ?? ''),
    addresses: task.networks.flatMap((attachment) => attachment.addresses),
    health: healthStateName(task.status?.health ?? HealthState.HEALTH_STATE_NONE),
  };
}

/** Newest first within a slot, slots ascending: the order `docker service ps` uses. */
export function sortTasks(tasks: Task[]): Task[] {
  return [...tasks].sort((a, b) => a.slot - b.slot || (b.meta?.createdAtMs ?? 0) - (a.meta?.createdAtMs ?? 0));
}

/** `service ls` (and `stack services`) output: the rows as JSON, or the table. */
export function printServiceRows(rows: readonly ServiceRow[], format: OutputFormat): void {
  if (format === 'json') printJson(rows);
  else printTable(rows, [['ID', (r) => r.id.slice(0, 12)], ['NAME', (r) => r.name], ['MODE', (r) => r.mode], ['REPLICAS', (r) => r.replicas], ['IMAGE', (r) => r.image], ['UPDATE', (r) => r.updateStatus]]);
}

/** `service ps` (and `stack ps`) output: the rows as JSON, or the table. */
export function printTaskRows(rows: readonly TaskRow[], format: OutputFormat): void {
  if (format === 'json') {
    printJson(rows);
    return;
  }
  printTable(rows, [
    ['ID', (r) => r.id.slice(0, 12)],
    ['NAME', (r) => r.name],
    ['IMAGE', (r) => r.image],
    ['NODE', (r) => r.hostname],
    ['DESIRED STATE', (r) => r.desiredState],
    ['CURRENT STATE', (r) => stateWithHealth(r)],
    ['ADDRESSES', (r) => r.addresses.join(',')],
    ['ERROR', (r) => r.error],
  ]);
}
