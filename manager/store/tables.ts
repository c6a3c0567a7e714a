/**
 * The store's state machine: in-memory tables with secondary indexes, changed only by applying
 * a committed transaction. `apply` is deterministic (it reads time only from the transaction)
 * so every manager that applies the same log reaches the same tables.
 */
import type { NetworkAttachment, TaskStatus } from '../../proto/skiff/v1/objects.js';
import type { StoreSnapshot, StoreTransaction } from '../../proto/skiff/v1/store.js';
import { StoreActionKind } from '../../proto/skiff/v1/store.js';
import { StoreError } from './errors.js';
import {
  type AnyObject,
  fromStoreObject,
  type KindedObject,
  metaOf,
  OBJECT_KINDS,
  type ObjectKind,
  type ObjectsByKind,
  toStoreObject,
} from './objects.js';

export type StoreEventAction = 'create' | 'update' | 'remove';

/** One object change inside a commit. For `remove`, `object` is the object as it was. */
export type StoreEvent = KindedObject & { action: StoreEventAction };

/** Everything one transaction changed, at one store version. */
export interface StoreCommit {
  version: number;
  events: StoreEvent[];
}

/** Kinds whose objects have a unique name (spec.name). */
const NAMED_KINDS: ReadonlySet<ObjectKind> = new Set(['service', 'network', 'secret', 'config']);

function nameOf(kinded: KindedObject): string | undefined {
  switch (kinded.kind) {
    case 'service':
    case 'network':
    case 'secret':
    case 'config':
      return kinded.object.spec?.name;
    case 'node':
    case 'task':
    case 'cluster':
      return undefined;
    default: {
      const exhaustive: never = kinded;
      throw new Error(`assertion failed: ${String(exhaustive)}`);
    }
  }
}

type Action = { kind: 'create' | 'update' | 'remove'; target: KindedObject };

/**
 * The actions of a committed transaction, each as the object it leaves (a removal: the object as
 * read). A task status change becomes an update of the task as stored here, carrying the version
 * the writer read, so it conflicts exactly as an update would.
 */
function decodeActions(transaction: StoreTransaction, tasks: ReadonlyMap<string, AnyObject>): Action[] {
  return transaction.actions.map((action) => {
    if (action.kind === StoreActionKind.STORE_ACTION_KIND_TASK_STATUS) {
      const change = action.taskStatus;
      if (change === undefined || change.status === undefined) throw new Error('cannot apply log entry: a task status change carries no status; it was written by a newer skiffd: upgrade this manager');
      const existing = tasks.get(change.taskId) as ObjectsByKind['task'] | undefined;
      if (existing === undefined) throw new StoreError('not_found', `cannot update task ${change.taskId}: it does not exist`);
      const task = taskWithStatus(existing, change.status, change.networks);
      return { kind: 'update', target: { kind: 'task', object: { ...task, meta: { ...metaOf(existing), version: change.version } } } };
    }
    // Not a StoreError (which every manager skips alike, as a conflict): an action this build cannot
    // read came from a newer skiffd, and skipping it would leave this manager's state behind the
    // others' for good. The Raft driver stops the process instead, as etcd does.
    if (action.object === undefined) throw new Error(`cannot apply log entry: a store action of kind ${String(action.kind)} carries no object this skiffd can read; it was written by a newer skiffd: upgrade this manager`);
    const target = fromStoreObject(action.object);
    switch (action.kind) {
      case StoreActionKind.STORE_ACTION_KIND_CREATE:
        return { kind: 'create', target };
      case StoreActionKind.STORE_ACTION_KIND_UPDATE:
        return { kind: 'update', target };
      case StoreActionKind.STORE_ACTION_KIND_REMOVE:
        return { kind: 'remove', target };
      default:
        throw new Error(`cannot apply log entry: unknown store action kind ${String(action.kind)}, written by a newer skiffd: upgrade this manager`);
    }
  });
}

/** A task with its agent's report folded in: the status replaced, reported attachments merged (the reported one wins per network). */
export function taskWithStatus(task: ObjectsByKind['task'], status: TaskStatus, reported: readonly NetworkAttachment[]): ObjectsByKind['task'] {
  return { ...task, status, networks: mergeAttachments(task.networks, reported) };
}

/**
 * The task's attachments with those its agent reported (its host-bridge address) replacing the
 * ones of the same network: the overlay addresses the allocator gave stay, or they would be
 * freed and handed to another task while this one still holds them.
 */
export function mergeAttachments(current: readonly NetworkAttachment[], reported: readonly NetworkAttachment[]): NetworkAttachment[] {
  if (reported.length === 0) return [...current];
  const reportedIds = new Set(reported.map((attachment) => attachment.network));
  return [...current.filter((attachment) => !reportedIds.has(attachment.network)), ...reported];
}

/** In-memory tables. Objects handed out are frozen by convention: never mutate them; copy first. */
export class StoreTables {
  private readonly objects = new Map<ObjectKind, Map<string, AnyObject>>(OBJECT_KINDS.map((kind) => [kind, new Map()]));
  private readonly names = new Map<ObjectKind, Map<string, string>>([...NAMED_KINDS].map((kind) => [kind, new Map()]));
  private readonly tasksByServiceIndex = new Map<string, Set<string>>();
  private readonly tasksByNodeIndex = new Map<string, Set<string>>();
  private currentVersion = 0;

  get version(): number {
    return this.currentVersion;
  }

  get<K extends ObjectKind>(kind: K, id: string): ObjectsByKind[K] | undefined {
    return this.table(kind).get(id) as ObjectsByKind[K] | undefined;
  }

  list<K extends ObjectKind>(kind: K): ObjectsByKind[K][] {
    return [...this.table(kind).values()] as ObjectsByKind[K][];
  }

  /** Looks up a named object (service, network, secret, config) by its spec.name. */
  findByName<K extends ObjectKind>(kind: K, name: string): ObjectsByKind[K] | undefined {
    const id = this.names.get(kind)?.get(name);
    return id === undefined ? undefined : this.get(kind, id);
  }

  tasksByService(serviceId: string): ObjectsByKind['task'][] {
    return this.idsToTasks(this.tasksByServiceIndex.get(serviceId));
  }

  tasksByNode(nodeId: string): ObjectsByKind['task'][] {
    return this.idsToTasks(this.tasksByNodeIndex.get(nodeId));
  }

  /**
   * Applies one committed transaction at `version`. Either every action applies or none does:
   * all checks run before the first change. Throws StoreError on a conflict.
   */
  apply(version: number, transaction: StoreTransaction): StoreCommit {
    if (version <= this.currentVersion) {
      throw new Error(`assertion failed: apply version ${version} <= current ${this.currentVersion}`);
    }
    const actions = decodeActions(transaction, this.table('task'));
    this.check(actions);
    const events: StoreEvent[] = [];
    for (const action of actions) events.push(this.applyAction(version, transaction.proposedAtMs, action));
    this.currentVersion = version;
    return { version, events };
  }

  /** Advances the version without changes (a log entry that carried no store transaction). */
  skip(version: number): void {
    if (version > this.currentVersion) this.currentVersion = version;
  }

  snapshot(): StoreSnapshot {
    const objects = OBJECT_KINDS.flatMap((kind) =>
      this.list(kind).map((object) => toStoreObject({ kind, object } as KindedObject)),
    );
    return { version: this.currentVersion, objects };
  }

  /** Replaces every table with the snapshot's content. */
  restore(snapshot: StoreSnapshot): void {
    for (const table of this.objects.values()) table.clear();
    for (const names of this.names.values()) names.clear();
    this.tasksByServiceIndex.clear();
    this.tasksByNodeIndex.clear();
    for (const stored of snapshot.objects) this.insert(fromStoreObject(stored));
    this.currentVersion = snapshot.version;
  }

  private check(actions: Action[]): void {
    const touched = new Set<string>();
    const claimedNames = new Map<string, string>();
    for (const { kind: actionKind, target } of actions) {
      const id = metaOf(target.object).id;
      const key = `${target.kind}/${id}`;
      if (touched.has(key)) throw new StoreError('version_conflict', `cannot apply transaction: ${key} changed twice`);
      touched.add(key);
      const existing = this.get(target.kind, id);
      if (actionKind === 'create' && existing !== undefined) {
        throw new StoreError('already_exists', `cannot create ${target.kind} ${id}: it already exists`);
      }
      if (actionKind !== 'create' && existing === undefined) {
        throw new StoreError('not_found', `cannot ${actionKind} ${target.kind} ${id}: it does not exist`);
      }
      if (actionKind === 'update' && existing !== undefined) {
        const expected = metaOf(target.object).version;
        const current = metaOf(existing).version;
        if (expected !== current) {
          throw new StoreError(
            'version_conflict',
            `cannot update ${target.kind} ${id}: it changed since it was read (version ${expected}, now ${current})`,
          );
        }
      }
      const name = actionKind === 'remove' ? undefined : nameOf(target);
      if (name !== undefined && NAMED_KINDS.has(target.kind)) {
        const owner = this.names.get(target.kind)?.get(name);
        const nameKey = `${target.kind}/${name}`;
        if ((owner !== undefined && owner !== id) || (claimedNames.get(nameKey) ?? id) !== id) {
          throw new StoreError('name_conflict', `cannot ${actionKind} ${target.kind} "${name}": the name is already in use`);
        }
        claimedNames.set(nameKey, id);
      }
    }
  }

  private applyAction(version: number, nowMs: number, action: Action): StoreEvent {
    const { target } = action;
    const id = metaOf(target.object).id;
    if (action.kind === 'remove') {
      const existing = this.get(target.kind, id);
      if (existing === undefined) throw new Error('assertion failed: checked remove target vanished');
      const previous = { kind: target.kind, object: existing } as KindedObject;
      this.delete(previous);
      return { ...previous, action: 'remove' };
    }
    const previous = this.get(target.kind, id);
    const createdAtMs = previous === undefined ? nowMs : metaOf(previous).createdAtMs;
    const stored = {
      kind: target.kind,
      object: { ...target.object, meta: { id, version: version, createdAtMs, updatedAtMs: nowMs } },
    } as KindedObject;
    if (previous === undefined) {
      this.insert(stored);
    } else if (!this.replaceInPlace(previous, stored)) {
      this.delete({ kind: target.kind, object: previous } as KindedObject);
      this.insert(stored);
    }
    return { ...stored, action: action.kind };
  }

  /**
   * Replaces a task whose service and node stay the same without touching the indexes (most
   * updates: status reports, desired-state changes). False for anything else: delete and insert.
   */
  private replaceInPlace(previous: AnyObject, stored: KindedObject): boolean {
    if (stored.kind !== 'task') return false;
    const before = previous as ObjectsByKind['task'];
    if (before.serviceId !== stored.object.serviceId || before.nodeId !== stored.object.nodeId) return false;
    this.table('task').set(metaOf(stored.object).id, stored.object);
    return true;
  }

  private insert(kinded: KindedObject): void {
    const id = metaOf(kinded.object).id;
    this.table(kinded.kind).set(id, kinded.object);
    const name = nameOf(kinded);
    if (name !== undefined) this.names.get(kinded.kind)?.set(name, id);
    if (kinded.kind === 'task') {
      addToIndex(this.tasksByServiceIndex, kinded.object.serviceId, id);
      if (kinded.object.nodeId !== '') addToIndex(this.tasksByNodeIndex, kinded.object.nodeId, id);
    }
  }

  private delete(kinded: KindedObject): void {
    const id = metaOf(kinded.object).id;
    this.table(kinded.kind).delete(id);
    const name = nameOf(kinded);
    if (name !== undefined && this.names.get(kinded.kind)?.get(name) === id) this.names.get(kinded.kind)?.delete(name);
    if (kinded.kind === 'task') {
      removeFromIndex(this.tasksByServiceIndex, kinded.object.serviceId, id);
      removeFromIndex(this.tasksByNodeIndex, kinded.object.nodeId, id);
    }
  }

  private table(kind: ObjectKind): Map<string, AnyObject> {
    const table = this.objects.get(kind);
    if (table === undefined) throw new Error(`assertion failed: no table for ${kind}`);
    return table;
  }

  private idsToTasks(ids: Set<string> | undefined): ObjectsByKind['task'][] {
    if (ids === undefined) return [];
    const tasks: ObjectsByKind['task'][] = [];
    for (const id of ids) {
      const task = this.get('task', id);
      if (task !== undefined) tasks.push(task);
    }
    return tasks;
  }
}

function addToIndex(index: Map<string, Set<string>>, key: string, id: string): void {
  let ids = index.get(key);
  if (ids === undefined) {
    ids = new Set();
    index.set(key, ids);
  }
  ids.add(id);
}

function removeFromIndex(index: Map<string, Set<string>>, key: string, id: string): void {
  const ids = index.get(key);
  if (ids === undefined) return;
  ids.delete(id);
  if (ids.size === 0) index.delete(key);
}
