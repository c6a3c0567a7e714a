/**
 * Feeds the pure scheduler: every unassigned task that should run is placed in one run, one
 * batch per service and spec version; a task that cannot be placed stays pending with the
 * scheduler's reason, and is retried whenever nodes change, tasks need placing, or a task on a
 * node ends (freeing its reservation, host ports and replica slot).
 */
import type { Node, Service, Task } from '../../proto/skiff/v1/objects.js';
import type { ServiceSpec } from '../../proto/skiff/v1/specs.js';
import { NodeAvailability, NodeRole, NodeState, TaskState } from '../../proto/skiff/v1/types.js';
import { isTerminal } from '../../proto/task-states.js';
import {
  constraintMet,
  hostPortKey,
  type NodeInfo,
  parseConstraint,
  PLACEMENT_STRATEGY_LABEL,
  type PlacementStrategy,
  schedule,
  type TaskGroup,
} from '../../scheduler/index.js';
import { taskAllocated } from '../allocator/task-networks.js';
import type { StoreReader, WriteTransaction } from '../store/store.js';
import type { StoreCommit } from '../store/tables.js';
import { remainingBudget, type Controller } from './controller-loop.js';

const ALL = 'all';
/** Failures of a service's tasks on a node within this window make the scheduler put the node last. */
export const RECENT_FAILURE_WINDOW_MS = 5 * 60_000;

function needsPlacement(task: Task): boolean {
  const state = task.status?.state ?? TaskState.TASK_STATE_NEW;
  // A task on networks waits for the allocator's addresses first.
  return task.nodeId === '' && task.desiredState <= TaskState.TASK_STATE_RUNNING && state <= TaskState.TASK_STATE_PENDING && taskAllocated(task);
}

/** A task that holds a place on its node: counted for spread, reservations, host ports, max replicas. */
function isLive(task: Task): boolean {
  return task.desiredState <= TaskState.TASK_STATE_RUNNING && !isTerminal(task.status?.state ?? TaskState.TASK_STATE_NEW);
}

function availabilityName(node: Node): NodeInfo['availability'] {
  switch (node.spec?.availability ?? NodeAvailability.NODE_AVAILABILITY_ACTIVE) {
    case NodeAvailability.NODE_AVAILABILITY_PAUSE:
      return 'pause';
    case NodeAvailability.NODE_AVAILABILITY_DRAIN:
      return 'drain';
    default:
      return 'active';
  }
}

/** Host-mode published ports of a service, as the scheduler keys them; ingress and dynamic ports never conflict. */
export function serviceHostPorts(service: Service | undefined): string[] {
  const ports = service?.spec?.endpoint?.ports ?? [];
  return ports.filter((port) => port.publishMode === 'host' && port.publishedPort > 0).map((port) => hostPortKey(port.publishedPort, port.protocol));
}

/** `skiff.placement=binpack` on the service selects binpack; anything else spreads. */
export function placementStrategy(service: Service | undefined): PlacementStrategy {
  return service?.spec?.labels[PLACEMENT_STRATEGY_LABEL] === 'binpack' ? 'binpack' : 'spread';
}

/** Memoised per reconcile run: many tasks share a service. */
function hostPortsLookup(reader: StoreReader): (serviceId: string) => string[] {
  const cache = new Map<string, string[]>();
  return (serviceId) => {
    let ports = cache.get(serviceId);
    if (ports === undefined) {
      ports = serviceHostPorts(reader.get('service', serviceId));
      cache.set(serviceId, ports);
    }
    return ports;
  };
}

type NodeLoad = Pick<NodeInfo, 'reserved' | 'hostPorts' | 'tasksByService' | 'totalTasks'>;

/** One node as the scheduler sees it, with the load of its live tasks. */
function nodeInfo(node: Node, load: NodeLoad): NodeInfo {
  const resources = node.description?.resources;
  return {
    id: node.meta?.id ?? '',
    hostname: node.description?.hostname ?? '',
    role: node.role === NodeRole.NODE_ROLE_MANAGER ? 'manager' : 'worker',
    ready: node.status?.state === NodeState.NODE_STATE_READY,
    availability: availabilityName(node),
    labels: node.spec?.labels ?? {},
    platform: { os: node.description?.platform?.os ?? '', arch: node.description?.platform?.architecture ?? '' },
    capacity: { nanoCpus: resources?.nanoCpus ?? 0, memoryBytes: resources?.memoryBytes ?? 0 },
    ...load,
  };
}

/** The scheduler's model of the cluster, built from the store: each node with its live tasks. */
export function nodeModel(reader: StoreReader): NodeInfo[] {
  const hostPortsOf = hostPortsLookup(reader);
  return reader.list('node').map((node) => {
    const load = { reserved: { nanoCpus: 0, memoryBytes: 0 }, hostPorts: new Set<string>(), tasksByService: new Map<string, number>(), totalTasks: 0 };
    for (const task of reader.tasksByNode(node.meta?.id ?? '')) {
      if (!isLive(task)) continue;
      load.tasksByService.set(task.serviceId, (load.tasksByService.get(task.serviceId) ?? 0) + 1);
      load.totalTasks += 1;
      load.reserved.nanoCpus += task.spec?.resources?.reservations?.nanoCpus ?? 0;
      load.reserved.memoryBytes += task.spec?.resources?.reservations?.memoryBytes ?? 0;
      for (const port of hostPortsOf(task.serviceId)) load.hostPorts.add(port);
    }
    return nodeInfo(node, load);
  });
}

const NO_LOAD: NodeLoad = { reserved: { nanoCpus: 0, memoryBytes: 0 }, hostPorts: new Set(), tasksByService: new Map(), totalTasks: 0 };

/**
 * Whether the node meets every placement constraint of the spec, with the scheduler's parser and
 * matcher; a malformed constraint (refused at the API edge, so only in old data) is never met.
 * Fits the global orchestrator's ConstraintCheck.
 */
export function meetsPlacementConstraints(spec: ServiceSpec | undefined, node: Node): boolean {
  const constraints = spec?.taskTemplate?.placement?.constraints ?? [];
  if (constraints.length === 0) return true;
  const info = nodeInfo(node, NO_LOAD);
  return constraints.every((text) => {
    const parsed = parseConstraint(text);
    return parsed.ok && constraintMet(parsed.value, info);
  });
}

/** Tasks of the service that failed or were rejected on each node since `sinceMs`. */
export function recentFailuresByNode(reader: StoreReader, serviceId: string, sinceMs: number): Map<string, number> {
  const failures = new Map<string, number>();
  for (const task of reader.tasksByService(serviceId)) {
    const state = task.status?.state;
    // ORPHANED is the node's failure, not the task's: a node coming back should not be shunned for it.
    if (task.nodeId === '' || (state !== TaskState.TASK_STATE_FAILED && state !== TaskState.TASK_STATE_REJECTED)) continue;
    if ((task.status?.timestampMs ?? 0) < sinceMs) continue;
    failures.set(task.nodeId, (failures.get(task.nodeId) ?? 0) + 1);
  }
  return failures;
}

/**
 * One group per service and spec version, in the order of `pending`. The requirements come from
 * the first task's spec: every task of one spec version was made from the same spec.
 */
export function taskGroups(pending: readonly Task[], reader: StoreReader, nowMs: number): TaskGroup[] {
  const groups = new Map<string, TaskGroup & { taskIds: string[] }>();
  const hostPortsOf = hostPortsLookup(reader);
  for (const task of pending) {
    const key = `${task.serviceId}\u0000${task.specVersion}`;
    let group = groups.get(key);
    if (group === undefined) {
      const placement = task.spec?.placement;
      const reservations = task.spec?.resources?.reservations;
      group = {
        serviceId: task.serviceId,
        taskIds: [],
        constraints: placement?.constraints ?? [],
        preferences: (placement?.preferences ?? []).map((preference) => preference.spread),
        reservations: { nanoCpus: reservations?.nanoCpus ?? 0, memoryBytes: reservations?.memoryBytes ?? 0 },
        hostPorts: hostPortsOf(task.serviceId),
        maxReplicasPerNode: placement?.maxReplicasPerNode ?? 0,
        strategy: placementStrategy(reader.get('service', task.serviceId)),
        recentFailuresByNode: recentFailuresByNode(reader, task.serviceId, nowMs - RECENT_FAILURE_WINDOW_MS),
      };
      groups.set(key, group);
    }
    group.taskIds.push(task.meta?.id ?? '');
  }
  return [...groups.values()];
}

function freesPlace(task: Task): boolean {
  return task.nodeId !== '' && !isLive(task);
}

/** Places pending tasks; runs only on the leader, like every controller. */
export const schedulerController: Controller = {
  name: 'scheduler',
  *dirtyKeys(commit: StoreCommit) {
    for (const event of commit.events) {
      if (event.kind === 'node' || (event.kind === 'task' && (needsPlacement(event.object) || freesPlace(event.object) || event.action === 'remove'))) {
        yield ALL;
        return;
      }
    }
  },
  allKeys: () => [ALL],
  reconcile(_keys, transaction: WriteTransaction, reader: StoreReader, nowMs: number) {
    // A task without a status was not written by the orchestrator; it is left alone, and takes no place.
    // A stop-first update's replacement waits until the task it replaces has stopped.
    const replacedStopped = (task: Task): boolean => {
      if (task.replacesTaskId === '') return true;
      const old = reader.get('task', task.replacesTaskId);
      return old === undefined || isTerminal(old.status?.state ?? TaskState.TASK_STATE_NEW) || old.nodeId === '';
    };
    const pending = reader.list('task').filter((task) => needsPlacement(task) && task.status !== undefined && replacedStopped(task));
    if (pending.length === 0) return undefined;
    // One transaction's worth, whole services first, in a stable order; the runner runs again for
    // the rest. Grouping first keeps this linear: sorting 100,000 pending tasks on every run was not.
    const byService = new Map<string, Task[]>();
    for (const task of pending) {
      const group = byService.get(task.serviceId);
      if (group === undefined) byService.set(task.serviceId, [task]);
      else group.push(task);
    }
    const budget = remainingBudget(transaction);
    pending.length = 0;
    for (const serviceId of [...byService.keys()].sort()) {
      if (pending.length >= budget) break;
      const group = byService.get(serviceId) ?? [];
      group.sort((a, b) => a.specVersion - b.specVersion || a.slot - b.slot);
      pending.push(...group.slice(0, budget - pending.length));
    }
    const result = schedule(taskGroups(pending, reader, nowMs), nodeModel(reader), String(reader.version));
    for (const task of pending) {
      const id = task.meta?.id ?? '';
      const nodeId = result.assignments.get(id);
      const status = task.status;
      if (status === undefined) continue; // filtered out above; narrows the type
      if (nodeId !== undefined) {
        const message = 'scheduler assigned task to node';
        transaction.update('task', { ...task, nodeId, status: { ...status, state: TaskState.TASK_STATE_ASSIGNED, message, err: '', timestampMs: nowMs } });
        continue;
      }
      const reason = result.unplaced.get(id) ?? 'no suitable node';
      if (status.state === TaskState.TASK_STATE_PENDING && status.err === reason) continue;
      transaction.update('task', { ...task, status: { ...status, state: TaskState.TASK_STATE_PENDING, message: 'pending task scheduling', err: reason, timestampMs: nowMs } });
    }
    return undefined;
  },
};
