/**
 * A simulated disk holding one member's Raft state as a write-ahead log of records.
 *
 * `write*` appends records that are not yet durable; `fsync` makes every written record durable.
 * `crash` keeps a random prefix of the unsynced records (the ones that happened to reach the
 * platter, in order) and may leave the next one torn; recovery (`recover`) drops the torn record
 * and everything after it, as a WAL with a CRC per record does. Snapshots taken by the application
 * (compaction) are written as a separate file, atomically (write, fsync, rename).
 *
 * The durable image is kept materialized (hard state, snapshot, entries) rather than as raw
 * records, so recovery is cheap; `recover` returns copies the core may keep.
 */

import type { Entry, HardState, LogIndex, Snapshot } from '../../manager/raft/core/types.js';
import type { Prng } from './prng.js';

/**
 * As in manager/raft/storage: a received snapshot is its own file, written first; the entries and
 * hard state of one Ready are one WAL record with one CRC, so a crash keeps all of a batch or none.
 */
type WalRecord = { kind: 'snapshot'; snapshot: Snapshot } | { kind: 'batch'; entries: readonly Entry[]; hardState: HardState | undefined };

/** What a member reads back from its disk at start. */
export interface DurableImage {
  hardState: HardState;
  snapshot: Snapshot;
  entries: Entry[];
}

export interface DiskStats {
  fsyncs: number;
  crashes: number;
  /** Unsynced records a crash lost (including torn ones). */
  recordsLost: number;
  /** Torn records recovery found and truncated. */
  tornTailsTruncated: number;
}

/** Thrown when a write would leave a hole in the log: the caller (core or driver) broke the contract. */
export class DiskContractError extends Error {}

export class SimDisk {
  private hardState: HardState;
  private snapshot: Snapshot;
  private entries: Entry[] = [];
  private unsynced: WalRecord[] = [];
  /** Set by a crash that tore a record; cleared (and counted) by recovery. */
  private tornTail = false;
  readonly stats: DiskStats = { fsyncs: 0, crashes: 0, recordsLost: 0, tornTailsTruncated: 0 };

  constructor(bootstrap: DurableImage) {
    this.hardState = { ...bootstrap.hardState };
    this.snapshot = bootstrap.snapshot;
    this.entries = bootstrap.entries.slice();
  }

  writeSnapshot(snapshot: Snapshot): void {
    this.unsynced.push({ kind: 'snapshot', snapshot });
  }

  /** Entries (replacing any conflicting suffix) and the hard state, as one record. */
  writeBatch(entries: readonly Entry[], hardState: HardState | undefined): void {
    if (entries.length === 0 && hardState === undefined) return;
    this.unsynced.push({ kind: 'batch', entries: entries.slice(), hardState: hardState === undefined ? undefined : { ...hardState } });
  }

  hasUnsynced(): boolean {
    return this.unsynced.length > 0;
  }

  /** Makes every written record durable (group commit: one fsync per batch). */
  fsync(): void {
    for (const record of this.unsynced) this.applyRecord(record);
    this.unsynced = [];
    this.stats.fsyncs++;
  }

  /**
   * The machine lost power: a random prefix of the unsynced records survives, the next may be torn,
   * the rest is gone. Returns a short description for the event log.
   */
  crash(random: Prng, tornProbability: number): string {
    const written = this.unsynced.length;
    const survivors = written === 0 ? 0 : random.int(written + 1);
    for (const record of this.unsynced.slice(0, survivors)) this.applyRecord(record);
    this.tornTail = survivors < written && random.chance(tornProbability);
    this.stats.crashes++;
    this.stats.recordsLost += written - survivors;
    this.unsynced = [];
    return `disk kept ${survivors}/${written} unsynced records${this.tornTail ? ', tore the next' : ''}`;
  }

  /** Reads the durable image back, truncating a torn tail first. */
  recover(): DurableImage {
    if (this.unsynced.length > 0) throw new Error('SimDisk.recover: unsynced records exist; crash the disk first');
    if (this.tornTail) {
      this.tornTail = false;
      this.stats.tornTailsTruncated++;
    }
    return { hardState: { ...this.hardState }, snapshot: this.snapshot, entries: this.entries.slice() };
  }

  /**
   * The application's snapshot (compaction): written to its own file and made durable at once;
   * entries it covers are dropped from the log.
   */
  saveApplicationSnapshot(snapshot: Snapshot): void {
    if (snapshot.meta.index <= this.snapshot.meta.index) return;
    this.installSnapshot(snapshot);
  }

  /** The durable log, for invariant checks. Do not mutate. */
  durableEntries(): readonly Entry[] {
    return this.entries;
  }

  durableSnapshotIndex(): LogIndex {
    return this.snapshot.meta.index;
  }

  durableHardState(): HardState {
    return this.hardState;
  }

  /** The durable entry at `index`, if the log (not the snapshot) holds it. */
  durableEntry(index: number): Entry | undefined {
    const first = this.entries[0];
    if (first === undefined) return undefined;
    return this.entries[index - first.index];
  }

  /** The term of a durable entry or of the snapshot's last entry; undefined when unknown. */
  durableTerm(index: number): number | undefined {
    if (index === this.snapshot.meta.index) return this.snapshot.meta.term;
    return this.durableEntry(index)?.term;
  }

  private applyRecord(record: WalRecord): void {
    switch (record.kind) {
      case 'snapshot':
        this.installSnapshot(record.snapshot);
        return;
      case 'batch':
        for (const entry of record.entries) this.appendEntry(entry);
        if (record.hardState !== undefined) this.hardState = record.hardState;
        return;
      default:
        assertNever(record);
    }
  }

  /** Appends one entry, replacing any conflicting suffix. */
  private appendEntry(entry: Entry): void {
    if (entry.index <= this.snapshot.meta.index) return; // already covered by the snapshot
    const first = this.entries[0];
    const expectedFirst = this.snapshot.meta.index + 1;
    if (first === undefined) {
      if (entry.index !== expectedFirst) throw new DiskContractError(`cannot append entry ${entry.index}: the log is empty after snapshot ${this.snapshot.meta.index}`);
      this.entries.push(entry);
      return;
    }
    const offset = entry.index - first.index;
    if (offset > this.entries.length) throw new DiskContractError(`cannot append entry ${entry.index}: the log ends at ${first.index + this.entries.length - 1} (a hole)`);
    this.entries.length = offset; // truncate the conflicting suffix (a no-op when appending at the end)
    this.entries.push(entry);
  }

  private installSnapshot(snapshot: Snapshot): void {
    const index = snapshot.meta.index;
    const keepsTail = this.durableTerm(index) === snapshot.meta.term;
    this.entries = keepsTail ? this.entries.filter((entry) => entry.index > index) : [];
    this.snapshot = snapshot;
  }
}

function assertNever(value: never): never {
  throw new Error(`unexpected value ${JSON.stringify(value)}`);
}
