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

/** What one live task on a node counts against it. */
interface Holding {
  nodeId: string;
  serviceId: string;
  nanoCpus: number;
  memoryBytes: number;
  hostPorts: readonly string[];
}

function sameHolding(left: Holding, right: Holding): boolean {
  return left.nodeId === right.nodeId
    && left.serviceId === right.serviceId
    && left.nanoCpus === right.nanoCpus
    && left.memoryBytes === right.memoryBytes
    && (left.hostPorts === right.hostPorts || left.hostPorts.join() === right.hostPorts.join());
}

/** A node's load, kept current task by task; host ports are counted, several tasks may hold one. */
interface MutableLoad extends NodeLoad {
  reserved: { nanoCpus: number; memoryBytes: number };
  hostPorts: Set<string>;
  tasksByService: Map<string, number>;
  hostPortCounts: Map<string, number>;
}

/**
 * The scheduler controller's view of the store between runs, kept current from each commit's
 * events (never from reading the store), so that a run costs what it places, not what the
 * cluster holds: the load of every node (as nodeModel computes it from scratch) and the tasks
 * not on a node yet, by service. Rebuilt from the store whenever the runner asks for all keys.
 */
export class PlacementState {
  private readonly held = new Map<string, Holding>();
  private readonly loads = new Map<string, MutableLoad>();
  private readonly portsByService = new Map<string, string[]>();
  /** Tasks with no node that are desired running, by service id: the candidates for placement. */
  readonly unassigned = new Map<string, Set<string>>();
  /**
   * Moves on whenever capacity may have grown: a node changed or a place was freed. A task that
   * could not be placed cannot be placed before it moves (placements only take capacity).
   */
  generation = 0;

  rebuild(reader: StoreReader): void {
    this.generation += 1;
    this.held.clear();
    this.loads.clear();
    this.portsByService.clear();
    this.unassigned.clear();
    for (const service of reader.list('service')) this.portsByService.set(service.meta?.id ?? '', serviceHostPorts(service));
    for (const task of reader.list('task')) this.taskChanged(task);
  }

  /** Applies one commit's events. */
  apply(commit: StoreCommit): void {
    for (const event of commit.events) {
      if (event.kind === 'task') {
        if (event.action === 'remove') this.taskRemoved(event.object);
        else this.taskChanged(event.object);
      } else if (event.kind === 'node') {
        this.generation += 1;
      } else if (event.kind === 'service') {
        this.servicePortsChanged(event.object.meta?.id ?? '', event.action === 'remove' ? [] : serviceHostPorts(event.object));
      }
    }
  }

  /** The scheduler's model: every node of the store with its load (equal to nodeModel(reader)). */
  nodeModel(reader: StoreReader): NodeInfo[] {
    return reader.list('node').map((node) => {
      const load = this.loads.get(node.meta?.id ?? '');
      return nodeInfo(node, load === undefined ? NO_LOAD : { reserved: load.reserved, hostPorts: load.hostPorts, tasksByService: load.tasksByService, totalTasks: load.totalTasks });
    });
  }

  private taskChanged(task: Task): void {
    const id = task.meta?.id ?? '';
    this.setUnassigned(task, task.nodeId === '' && task.desiredState <= TaskState.TASK_STATE_RUNNING);
    const reservations = task.spec?.resources?.reservations;
    const holding: Holding | undefined = task.nodeId === '' || !isLive(task)
      ? undefined
      : {
          nodeId: task.nodeId,
          serviceId: task.serviceId,
          nanoCpus: reservations?.nanoCpus ?? 0,
          memoryBytes: reservations?.memoryBytes ?? 0,
          hostPorts: this.portsByService.get(task.serviceId) ?? [],
        };
    // A status report of a live task (ASSIGNED -> RUNNING) holds what it held: releasing and
    // holding again would also move `generation`, as if capacity had been freed.
    const current = this.held.get(id);
    if (holding !== undefined && current !== undefined && sameHolding(current, holding)) return;
    this.release(id);
    if (holding !== undefined) this.hold(id, holding);
  }

  private taskRemoved(task: Task): void {
    this.release(task.meta?.id ?? '');
    this.setUnassigned(task, false);
  }

  private setUnassigned(task: Task, unassigned: boolean): void {
    const id = task.meta?.id ?? '';
    let ids = this.unassigned.get(task.serviceId);
    if (unassigned) {
      if (ids === undefined) this.unassigned.set(task.serviceId, (ids = new Set()));
      ids.add(id);
      return;
    }
    if (ids === undefined || !ids.delete(id)) return;
    if (ids.size === 0) this.unassigned.delete(task.serviceId);
  }

  /** A service's host ports changed: its tasks on nodes hold the new ones (rare, so a full walk). */
  private servicePortsChanged(serviceId: string, ports: string[]): void {
    const before = this.portsByService.get(serviceId) ?? [];
    if (ports.length === 0) this.portsByService.delete(serviceId);
    else this.portsByService.set(serviceId, ports);
    if (before.join() === ports.join()) return;
    for (const [taskId, holding] of [...this.held]) {
      if (holding.serviceId !== serviceId) continue;
      this.release(taskId);
      this.hold(taskId, { ...holding, hostPorts: ports });
    }
  }

  private hold(taskId: string, holding: Holding): void {
    this.held.set(taskId, holding);
    let load = this.loads.get(holding.nodeId);
    if (load === undefined) {
      load = { reserved: { nanoCpus: 0, memoryBytes: 0 }, hostPorts: new Set(), tasksByService: new Map(), totalTasks: 0, hostPortCounts: new Map() };
      this.loads.set(holding.nodeId, load);
    }
    load.tasksByService.set(holding.serviceId, (load.tasksByService.get(holding.serviceId) ?? 0) + 1);
    load.totalTasks += 1;
    load.reserved.nanoCpus += holding.nanoCpus;
    load.reserved.memoryBytes += holding.memoryBytes;
    for (const port of holding.hostPorts) {
      load.hostPortCounts.set(port, (load.hostPortCounts.get(port) ?? 0) + 1);
      load.hostPorts.add(port);
    }
  }

  private release(taskId: string): void {
    const holding = this.held.get(taskId);
    if (holding === undefined) return;
    this.held.delete(taskId);
    this.generation += 1;
    const load = this.loads.get(holding.nodeId);
    if (load === undefined) throw new Error(`assertion failed: task ${taskId} held a place on ${holding.nodeId} with no load`);
    const count = (load.tasksByService.get(holding.serviceId) ?? 0) - 1;
    if (count > 0) load.tasksByService.set(holding.serviceId, count);
    else load.tasksByService.delete(holding.serviceId);
    load.totalTasks -= 1;
    load.reserved.nanoCpus -= holding.nanoCpus;
    load.reserved.memoryBytes -= holding.memoryBytes;
    for (const port of holding.hostPorts) {
      const held = (load.hostPortCounts.get(port) ?? 0) - 1;
      if (held > 0) {
        load.hostPortCounts.set(port, held);
        continue;
      }
      load.hostPortCounts.delete(port);
      load.hostPorts.delete(port);
    }
    if (load.totalTasks === 0) this.loads.delete(holding.nodeId);
  }
}

/** What one run leaves for the next: the groups found unplaceable, and where to go on from. */
interface RunMemory {
  /** `serviceId\0specVersion` -> why its tasks could not be placed at `generation`. */
  blocked: Map<string, string>;
  /** The PlacementState generation `blocked` holds for; older entries are dropped. */
  generation: number;
  /** The service a run that stopped early did not reach; the next run starts there. */
  cursor: string | undefined;
}

const groupKey = (task: Task): string => `${task.serviceId}\u0000${task.specVersion}`;

/** Service ids in order, starting at `cursor` and wrapping, so that every service gets its turn. */
function rotated(serviceIds: Iterable<string>, cursor: string | undefined): string[] {
  const sorted = [...serviceIds].sort();
  if (cursor === undefined) return sorted;
  const start = sorted.findIndex((id) => id >= cursor);
  return start <= 0 ? sorted : [...sorted.slice(start), ...sorted.slice(0, start)];
}

/**
 * The scheduler's state between runs and one run's work, shared by schedulerController and
 * placingController (which also places the tasks the replicated orchestrator creates, in the
 * same transaction).
 *
 * A run schedules at most one write budget of tasks. Groups (service and spec version) it could
 * not place entirely are remembered until capacity changes (a node changes, a place is freed):
 * later runs write their reason to the rest of their tasks without scheduling them again and go
 * on to the next services. A run that stops early starts the next one where it stopped. Without
 * both, a first service with more unplaceable tasks than the budget took every run, and the
 * services after it were never placed.
 */
export class TaskScheduler {
  private readonly state = new PlacementState();
  private readonly memory: RunMemory = { blocked: new Map(), generation: 0, cursor: undefined };

  /** Applies a commit; true if it may let a task be placed (the scheduler should run). */
  committed(commit: StoreCommit): boolean {
    this.state.apply(commit);
    return commit.events.some((event) => event.kind === 'node' || (event.kind === 'task' && (needsPlacement(event.object) || freesPlace(event.object) || event.action === 'remove')));
  }

  /** Forgets everything and reads the store again (a new leader trusts nothing it did not read). */
  rebuild(reader: StoreReader): void {
    this.state.rebuild(reader);
    this.memory.blocked.clear();
    this.memory.cursor = undefined;
  }

  /**
   * Places `created` (new tasks of this transaction, not in the store yet; each is written here,
   * with its node or its reason) and, if `walkStored`, the stored tasks waiting for a node, within
   * the transaction's budget. Returns false if it stopped before it reached every stored task.
   */
  run(transaction: WriteTransaction, reader: StoreReader, nowMs: number, created: readonly Task[], walkStored: boolean): boolean {
    const { state, memory } = this;
    if (memory.generation !== state.generation) {
      memory.blocked.clear();
      memory.generation = state.generation;
    }
    const ready = created.filter((task) => needsPlacement(task) && task.replacesTaskId === '');
    const isNew = new Set(ready);
    // Tasks that wait for something first (addresses, the task they replace) go in as they are.
    for (const task of created) if (!isNew.has(task)) transaction.create('task', task);
    const stored = walkStored ? candidates(state, memory, transaction, reader, nowMs, ready.length) : { pending: [], stoppedAt: undefined };
    if (walkStored) memory.cursor = stored.stoppedAt;
    const pending = [...ready, ...stored.pending];
    if (pending.length === 0) return stored.stoppedAt === undefined;
    const result = schedule(taskGroups(pending, reader, nowMs), state.nodeModel(reader), String(reader.version));
    for (const task of pending) {
      const id = task.meta?.id ?? '';
      const nodeId = result.assignments.get(id);
      const status = task.status;
      if (status === undefined) throw new Error(`assertion failed: task ${id} to place has no status`);
      let placed: Task;
      if (nodeId !== undefined) {
        placed = { ...task, nodeId, status: { ...status, state: TaskState.TASK_STATE_ASSIGNED, message: 'scheduler assigned task to node', err: '', timestampMs: nowMs } };
      } else {
        const reason = result.unplaced.get(id) ?? 'no suitable node';
        memory.blocked.set(groupKey(task), reason);
        if (!isNew.has(task)) {
          writeReason(transaction, task, reason, nowMs);
          continue;
        }
        placed = { ...task, status: pendingStatus(status, reason, nowMs) };
      }
      if (isNew.has(task)) transaction.create('task', placed);
      else transaction.update('task', placed);
    }
    return stored.stoppedAt === undefined;
  }
}

/** Places pending tasks; runs only on the leader, like every controller. Each runner needs its own. */
export function schedulerController(): Controller {
  const scheduler = new TaskScheduler();
  return {
    name: 'scheduler',
    reportsFinished: true,
    *dirtyKeys(commit: StoreCommit) {
      if (scheduler.committed(commit)) yield ALL;
    },
    allKeys: (reader: StoreReader) => {
      scheduler.rebuild(reader);
      return [ALL];
    },
    reconcile(_keys, transaction: WriteTransaction, reader: StoreReader, nowMs: number, finished: Set<string>) {
      if (scheduler.run(transaction, reader, nowMs, [], true)) finished.add(ALL);
      return undefined;
    },
  };
}

/** The key a scheduler run is dirty under. */
export const SCHEDULER_KEY = ALL;

function pendingStatus(status: NonNullable<Task['status']>, reason: string, nowMs: number): NonNullable<Task['status']> {
  return { ...status, state: TaskState.TASK_STATE_PENDING, message: 'pending task scheduling', err: reason, timestampMs: nowMs };
}

/** Marks a task pending with the scheduler's reason, unless it already says so. */
function writeReason(transaction: WriteTransaction, task: Task, reason: string, nowMs: number): void {
  const status = task.status;
  if (status === undefined || (status.state === TaskState.TASK_STATE_PENDING && status.err === reason)) return;
  transaction.update('task', { ...task, status: pendingStatus(status, reason, nowMs) });
}

/**
 * This run's tasks to schedule, whole services first, from the cursor on: at most the budget,
 * less the reasons it writes directly for groups still blocked. `stoppedAt` is the first service
 * it did not finish, if it stopped early.
 */
function candidates(state: PlacementState, memory: Readonly<RunMemory>, transaction: WriteTransaction, reader: StoreReader, nowMs: number, taken: number): { pending: Task[]; stoppedAt: string | undefined } {
  // A stop-first update's replacement waits until the task it replaces has stopped.
  const replacedStopped = (task: Task): boolean => {
    if (task.replacesTaskId === '') return true;
    const old = reader.get('task', task.replacesTaskId);
    return old === undefined || isTerminal(old.status?.state ?? TaskState.TASK_STATE_NEW) || old.nodeId === '';
  };
  const pending: Task[] = [];
  const room = (): number => remainingBudget(transaction) - taken - pending.length;
  for (const serviceId of rotated(state.unassigned.keys(), memory.cursor)) {
    if (room() <= 0) return { pending, stoppedAt: serviceId };
    const group: Task[] = [];
    for (const id of state.unassigned.get(serviceId) ?? []) {
      const task = reader.get('task', id);
      // A task without a status was not written by the orchestrator; it is left alone.
      if (task === undefined || !needsPlacement(task) || task.status === undefined || !replacedStopped(task)) continue;
      const blockedReason = memory.blocked.get(groupKey(task));
      if (blockedReason !== undefined) {
        if (room() > 0) writeReason(transaction, task, blockedReason, nowMs);
        else return { pending, stoppedAt: serviceId };
        continue;
      }
      group.push(task);
    }
    group.sort((a, b) => a.specVersion - b.specVersion || a.slot - b.slot || compareIds(a, b));
    const taken = group.slice(0, Math.max(0, room()));
    pending.push(...taken);
    if (taken.length < group.length) return { pending, stoppedAt: serviceId };
  }
  return { pending, stoppedAt: undefined };
}

function compareIds(a: Task, b: Task): number {
  const left = a.meta?.id ?? '';
  const right = b.meta?.id ?? '';
  return left < right ? -1 : left > right ? 1 : 0;
}
