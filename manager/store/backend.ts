/**
 * The seam between the store and whatever orders and persists its transactions. The local
 * backend (a WAL on this manager's disk) serves a single manager; the Raft backend replicates
 * the same transactions to a quorum. Both call the sink in log order, on every manager.
 */
import type { StoreSnapshot, StoreTransaction } from '../../proto/skiff/v1/store.js';
import type { StoreCommit } from './tables.js';

/**
 * The newest store log format this build reads. 1: TASK_STATUS actions (a task's status report
 * logged alone). A manager tells the others with every Raft message batch.
 */
export const STORE_FORMAT = 1;
/** The format that brought TASK_STATUS actions. */
export const STORE_FORMAT_TASK_STATUS = 1;

/** The store's side of the seam: the state machine the backend drives. */
export interface CommitSink {
  /**
   * Applies the committed entry at `index`. Returns the commit, or the StoreError that made the
   * transaction a no-op (a conflict is decided identically on every manager).
   */
  applyEntry(index: number, transaction: StoreTransaction): StoreCommit | Error;
  /** Replaces the state with a snapshot (at start, or when a follower installs one). */
  restoreSnapshot(snapshot: StoreSnapshot): void;
  /** The state as of the last applied entry, for compaction. */
  takeSnapshot(): StoreSnapshot;
}

export interface StoreBackend {
  /** Recovers durable state into the sink (snapshot, then entries in order) and starts accepting proposals. */
  start(sink: CommitSink): Promise<void>;
  /**
   * Proposes one transaction. Resolves once it is durable (on a quorum, for a replicated
   * backend) and applied locally; rejects with the apply error (a conflict) or with
   * StoreError('unavailable') when this manager cannot commit (not leader, no quorum, closed).
   */
  propose(transaction: StoreTransaction): Promise<StoreCommit>;
  /** Whether proposals from this manager can commit now (leader with quorum, or the local backend). */
  isWritable(): boolean;
  /**
   * Whether every manager that applies this backend's entries reads store log `format`: an older
   * one stops at an entry it cannot read (exit 70), so writers keep to the older form until then.
   */
  readsFormat(format: number): boolean;
  /**
   * Resolves once every write committed before the call is applied here, so a read that follows
   * sees it (linearizable); rejects with StoreError('unavailable') when that cannot be confirmed
   * (no leader, no quorum), rather than let a cut-off manager serve stale state.
   */
  readBarrier(): Promise<void>;
  close(): Promise<void>;
}
