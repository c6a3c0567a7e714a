/**
 * The single-manager store backend: transactions are ordered here and made durable in the local
 * WAL before they are applied and acknowledged. Concurrent proposals share one fdatasync
 * (group commit).
 */
import { StoreSnapshot, StoreTransaction } from '../../proto/skiff/v1/store.js';
import { type CommitSink, STORE_FORMAT, type StoreBackend } from './backend.js';
import { StoreError } from './errors.js';
import { LocalWal, type WalRecord } from '../raft/storage/wal.js';
import type { StoreCommit } from './tables.js';

/** Entries between snapshots; bounds recovery time and WAL size. */
export const SNAPSHOT_INTERVAL_ENTRIES = 1000;
/** Proposals written by one fdatasync at most. */
const MAX_BATCH_ENTRIES = 512;

interface Pending {
  transaction: StoreTransaction;
  resolve: (commit: StoreCommit) => void;
  reject: (error: Error) => void;
}

export class LocalBackend implements StoreBackend {
  private readonly wal: LocalWal;
  private sink: CommitSink | undefined;
  private lastIndex = 0;
  private lastSnapshotIndex = 0;
  private queue: Pending[] = [];
  private flushing = false;
  private closed = false;

  constructor(dir: string) {
    this.wal = new LocalWal(dir);
  }

  async start(sink: CommitSink): Promise<void> {
    this.sink = sink;
    const recovered = await this.wal.recover();
    if (recovered.snapshot !== undefined) {
      sink.restoreSnapshot(StoreSnapshot.decode(recovered.snapshot.payload));
      this.lastIndex = recovered.snapshot.index;
      this.lastSnapshotIndex = recovered.snapshot.index;
    }
    for (const record of recovered.records) {
      // A recorded transaction that conflicted when first applied conflicts again the same way.
      sink.applyEntry(record.index, StoreTransaction.decode(record.payload));
      this.lastIndex = record.index;
    }
  }

  propose(transaction: StoreTransaction): Promise<StoreCommit> {
    if (this.closed || this.sink === undefined) {
      return Promise.reject(new StoreError('unavailable', 'cannot write: the store is closed'));
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ transaction, resolve, reject });
      if (!this.flushing) void this.flush();
    });
  }

  isWritable(): boolean {
    return !this.closed && this.sink !== undefined;
  }

  /** This manager alone reads its log: every format of this build. */
  readsFormat(format: number): boolean {
    return format <= STORE_FORMAT;
  }

  /** Every write is applied here before it is acknowledged: reads are always current. */
  async readBarrier(): Promise<void> {
    if (this.closed) throw new StoreError('unavailable', 'cannot read: the store is closed');
  }

  async close(): Promise<void> {
    this.closed = true;
    while (this.flushing) await new Promise((resolve) => setImmediate(resolve));
    for (const pending of this.queue.splice(0)) pending.reject(new StoreError('unavailable', 'cannot write: the store is closed'));
    await this.wal.close();
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, MAX_BATCH_ENTRIES);
        const records: WalRecord[] = batch.map((pending, offset) => ({
          index: this.lastIndex + 1 + offset,
          payload: StoreTransaction.encode(pending.transaction).finish(),
        }));
        try {
          await this.wal.append(records);
        } catch (error) {
          // Nothing of this batch is acknowledged; the store stays at the last durable index.
          for (const pending of batch) pending.reject(new StoreError('unavailable', `cannot write: ${String(error)}`));
          continue;
        }
        for (const [offset, pending] of batch.entries()) {
          const result = this.requireSink().applyEntry(this.lastIndex + 1 + offset, pending.transaction);
          if (result instanceof Error) pending.reject(result);
          else pending.resolve(result);
        }
        this.lastIndex += batch.length;
        if (this.lastIndex - this.lastSnapshotIndex >= SNAPSHOT_INTERVAL_ENTRIES) await this.snapshot();
      }
    } finally {
      this.flushing = false;
    }
  }

  private async snapshot(): Promise<void> {
    const snapshot = this.requireSink().takeSnapshot();
    await this.wal.writeSnapshot(this.lastIndex, StoreSnapshot.encode(snapshot).finish());
    this.lastSnapshotIndex = this.lastIndex;
  }

  private requireSink(): CommitSink {
    if (this.sink === undefined) throw new Error('assertion failed: backend not started');
    return this.sink;
  }
}
