/**
 * The object store: typed reads of the in-memory tables, transactional writes that go through
 * the backend (durable before acknowledged), and commit notifications in log order.
 */
import { randomBytes } from 'node:crypto';
import type { NetworkAttachment, TaskStatus } from '../../proto/skiff/v1/objects.js';
import { type StoreAction, StoreActionKind, type StoreSnapshot, type StoreTransaction } from '../../proto/skiff/v1/store.js';
import { type CommitSink, type StoreBackend, STORE_FORMAT_TASK_STATUS } from './backend.js';
import { StoreError } from './errors.js';
import { type KindedObject, metaOf, type ObjectKind, type ObjectsByKind, toStoreObject } from './objects.js';
import { type StoreCommit, StoreTables, taskWithStatus } from './tables.js';

/** Read-only view of the tables. Returned objects must not be mutated. */
export type StoreReader = Pick<StoreTables, 'version' | 'get' | 'list' | 'findByName' | 'tasksByService' | 'tasksByNode'>;

/** Largest number of actions in one transaction; bigger batches are split by the caller. */
export const MAX_TRANSACTION_ACTIONS = 10000;

const ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';
/** A new random object id: 25 characters of [a-z0-9], like swarmkit's. */
export function newObjectId(): string {
  // Random bytes come from a pool: one randomBytes call per id was a tenth of a busy leader's CPU.
  if (idPoolOffset + ID_LENGTH > idPool.length) {
    idPool = randomBytes(ID_POOL_BYTES);
    idPoolOffset = 0;
  }
  let id = '';
  for (let index = 0; index < ID_LENGTH; index += 1) id += ID_ALPHABET[(idPool[idPoolOffset + index] ?? 0) % ID_ALPHABET.length];
  idPoolOffset += ID_LENGTH;
  return id;
}
const ID_LENGTH = 25;
const ID_POOL_BYTES = ID_LENGTH * 1024;
let idPool = Buffer.alloc(0);
let idPoolOffset = 0;

/** Collects the actions of one transaction; nothing is visible until the commit. */
export class WriteTransaction {
  readonly actions: StoreAction[] = [];

  /** Asked once, at the first status report: whether every manager reads TASK_STATUS actions (StoreBackend.readsFormat). */
  constructor(private readonly readsTaskStatusActions: () => boolean = () => true) {}
  private taskStatusActions: boolean | undefined;

  /** Adds a new object; its meta.id must be set (see newObjectId). */
  create<K extends ObjectKind>(kind: K, object: ObjectsByKind[K]): void {
    this.push(StoreActionKind.STORE_ACTION_KIND_CREATE, { kind, object } as KindedObject);
  }

  /** Replaces an object; its meta.version must be the version it was read at. */
  update<K extends ObjectKind>(kind: K, object: ObjectsByKind[K]): void {
    this.push(StoreActionKind.STORE_ACTION_KIND_UPDATE, { kind, object } as KindedObject);
  }

  remove<K extends ObjectKind>(kind: K, object: ObjectsByKind[K]): void {
    this.push(StoreActionKind.STORE_ACTION_KIND_REMOVE, { kind, object } as KindedObject);
  }

  /**
   * Records what a task's agent reported: `status` replaces the task's, `networks` are merged into
   * its attachments (tables.ts taskWithStatus). `task` is the task as read; like update, the write
   * conflicts if it changed since. The log entry carries the report only, not the task; while a
   * manager of an older build is a member, the whole task, as an update.
   */
  updateTaskStatus(task: ObjectsByKind['task'], status: TaskStatus, networks: readonly NetworkAttachment[]): void {
    this.taskStatusActions ??= this.readsTaskStatusActions();
    if (!this.taskStatusActions) {
      this.update('task', taskWithStatus(task, status, networks));
      return;
    }
    const meta = metaOf(task);
    this.checkRoom();
    this.actions.push({ kind: StoreActionKind.STORE_ACTION_KIND_TASK_STATUS, object: undefined, taskStatus: { taskId: meta.id, version: meta.version, status, networks: [...networks] } });
  }

  private push(kind: StoreActionKind, target: KindedObject): void {
    metaOf(target.object);
    this.checkRoom();
    this.actions.push({ kind, object: toStoreObject(target), taskStatus: undefined });
  }

  private checkRoom(): void {
    if (this.actions.length >= MAX_TRANSACTION_ACTIONS) {
      throw new StoreError('unavailable', `cannot write: more than ${MAX_TRANSACTION_ACTIONS} actions in one transaction`);
    }
  }
}

export type CommitListener = (commit: StoreCommit) => void;

export class Store {
  private readonly tables = new StoreTables();
  private readonly listeners = new Set<CommitListener>();

  constructor(
    private readonly backend: StoreBackend,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Recovers the durable state; resolves once the store can be read. */
  async start(): Promise<void> {
    const sink: CommitSink = {
      applyEntry: (index, transaction) => this.applyEntry(index, transaction),
      restoreSnapshot: (snapshot: StoreSnapshot) => this.tables.restore(snapshot),
      takeSnapshot: () => this.tables.snapshot(),
    };
    await this.backend.start(sink);
  }

  get reader(): StoreReader {
    return this.tables;
  }

  isWritable(): boolean {
    return this.backend.isWritable();
  }

  /** Resolves once the reader holds every write committed before the call (StoreBackend.readBarrier). */
  readBarrier(): Promise<void> {
    return this.backend.readBarrier();
  }

  /**
   * Runs `build` against the current state and commits the actions it collected as one
   * transaction. Resolves with the commit once durable and applied; undefined when `build`
   * wrote nothing. A conflict rejects with StoreError and changes nothing.
   */
  async update(build: (transaction: WriteTransaction, reader: StoreReader) => void): Promise<StoreCommit | undefined> {
    const transaction = new WriteTransaction(() => this.backend.readsFormat(STORE_FORMAT_TASK_STATUS));
    build(transaction, this.tables);
    if (transaction.actions.length === 0) return undefined;
    const proposal: StoreTransaction = { actions: transaction.actions, proposedAtMs: this.clock() };
    return this.backend.propose(proposal);
  }

  /**
   * Calls `listener` for every commit from now on, in log order. Reading `reader` and then
   * subscribing in the same synchronous turn sees every change exactly once.
   */
  subscribe(listener: CommitListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    await this.backend.close();
    this.listeners.clear();
  }

  private applyEntry(index: number, transaction: StoreTransaction): StoreCommit | Error {
    let commit: StoreCommit;
    try {
      commit = this.tables.apply(index, transaction);
    } catch (error) {
      if (!(error instanceof StoreError)) throw error;
      this.tables.skip(index);
      return error;
    }
    for (const listener of this.listeners) listener(commit);
    return commit;
  }
}
