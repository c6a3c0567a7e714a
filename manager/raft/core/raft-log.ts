/**
 * The in-memory Raft log of one member: the newest snapshot plus every entry after it.
 *
 * It also does the Ready bookkeeping for the log: which entries have been handed to the driver
 * for persisting (everything after `handedOffIndex` is still owed), whether an installed
 * snapshot is still owed, and which committed entries have been handed out for applying
 * (`applyingIndex`) or confirmed applied by `advance` (`appliedIndex`).
 *
 * Invariants (asserted): entries are contiguous and start right after the snapshot;
 * snapshot index <= applied <= applying <= committed <= last index; committed entries are never
 * truncated.
 */
import { asIndex, assert, maxIndex, minIndex } from './invariant.js';
import type { Entry, LogIndex, Snapshot, SnapshotMeta, Term } from './types.js';

/** Committed entries handed out in one Ready at most (bytes of entry data; at least one entry). */
export const MAX_COMMITTED_BYTES_PER_READY = 64 * 1024 * 1024;

export class RaftLog {
  private snapshot: Snapshot;
  /** entries[k].index === snapshot.meta.index + 1 + k */
  private entries: Entry[];
  private committedIndex: LogIndex;
  /** Entries up to here have been returned by Ready for persisting. */
  private handedOffIndex: LogIndex;
  /**
   * Entries up to here are known durable on this member's disk (recovered, or reported by
   * `stableTo`); never above `handedOffIndex` nor the last index. Lowered when a suffix is
   * replaced, so a write of the old suffix that completes later cannot count for the new one.
   */
  private persistedIndex: LogIndex;
  /** A snapshot received from the leader that the next Ready must return. */
  private snapshotOwed = false;
  /** Committed entries up to here have been returned by Ready for applying. */
  private applyingIndex: LogIndex;
  private appliedIndex: LogIndex;

  constructor(snapshot: Snapshot, entries: Entry[], committed: LogIndex, applied: LogIndex) {
    this.snapshot = snapshot;
    this.entries = [];
    this.committedIndex = snapshot.meta.index;
    this.handedOffIndex = snapshot.meta.index;
    this.persistedIndex = snapshot.meta.index;
    this.applyingIndex = snapshot.meta.index;
    this.appliedIndex = snapshot.meta.index;
    if (entries.length > 0) {
      this.append(entries);
    }
    this.handedOffIndex = this.lastIndex();
    this.persistedIndex = this.lastIndex();
    assert(committed <= this.lastIndex(), () => `recovered commit ${committed} is beyond the last entry ${this.lastIndex()}`);
    this.committedIndex = maxIndex(committed, snapshot.meta.index);
    assert(applied >= snapshot.meta.index && applied <= this.committedIndex,
      () => `recovered applied ${applied} is outside [snapshot ${snapshot.meta.index}, commit ${this.committedIndex}]`);
    this.applyingIndex = applied;
    this.appliedIndex = applied;
  }

  get committed(): LogIndex { return this.committedIndex; }
  get applied(): LogIndex { return this.appliedIndex; }
  get applying(): LogIndex { return this.applyingIndex; }
  get persisted(): LogIndex { return this.persistedIndex; }

  snapshotMeta(): SnapshotMeta { return this.snapshot.meta; }
  currentSnapshot(): Snapshot { return this.snapshot; }
  firstIndex(): LogIndex { return asIndex(this.snapshot.meta.index + 1); }
  lastIndex(): LogIndex { return asIndex(this.snapshot.meta.index + this.entries.length); }
  lastTerm(): Term { return this.mustTerm(this.lastIndex()); }

  /** The term of the entry at `index`, or undefined when it is compacted away or not yet present. */
  term(index: LogIndex): Term | undefined {
    const snapshotIndex = this.snapshot.meta.index;
    if (index === snapshotIndex) {
      return this.snapshot.meta.term;
    }
    if (index < snapshotIndex || index > this.lastIndex()) {
      return undefined;
    }
    return this.entryAt(index).term;
  }

  mustTerm(index: LogIndex): Term {
    const term = this.term(index);
    assert(term !== undefined, () => `term of index ${index} is unknown (snapshot ${this.snapshot.meta.index}, last ${this.lastIndex()})`);
    return term;
  }

  matchTerm(index: LogIndex, term: Term): boolean {
    return this.term(index) === term;
  }

  entryAt(index: LogIndex): Entry {
    const entry = this.entries[index - this.snapshot.meta.index - 1];
    assert(entry !== undefined && entry.index === index, () => `no entry at index ${index}`);
    return entry;
  }

  /** §5.4.1: a candidate whose last entry is (lastIndex, lastTerm) is at least as up to date as us. */
  isUpToDate(lastIndex: LogIndex, lastTerm: Term): boolean {
    const ourLastTerm = this.lastTerm();
    return lastTerm > ourLastTerm || (lastTerm === ourLastTerm && lastIndex >= this.lastIndex());
  }

  /**
   * Entries [from, to], stopping before the byte budget is exceeded (at least one entry is
   * returned when the range is not empty). `from` must not be compacted.
   */
  slice(from: LogIndex, to: LogIndex, maxBytes: number): Entry[] {
    assert(from >= this.firstIndex(), () => `slice from ${from} is compacted (first index ${this.firstIndex()})`);
    const result: Entry[] = [];
    let bytes = 0;
    for (let index = from; index <= to; index++) {
      const entry = this.entryAt(asIndex(index));
      if (result.length > 0 && bytes + entry.data.length > maxBytes) {
        break;
      }
      bytes += entry.data.length;
      result.push(entry);
    }
    return result;
  }

  /** The index of the first entry that conflicts with (or is missing from) our log, or 0. */
  findConflict(entries: readonly Entry[]): LogIndex {
    for (const entry of entries) {
      if (!this.matchTerm(entry.index, entry.term)) {
        return entry.index;
      }
    }
    return asIndex(0);
  }

  /**
   * The fast-backtracking hint a follower returns when it rejects an append: the largest index
   * <= `index` whose term is <= `term`. Entries after it cannot match the leader's log.
   */
  findConflictByTerm(index: LogIndex, term: Term): LogIndex {
    const snapshotIndex = this.snapshot.meta.index;
    for (let candidate = minIndex(index, this.lastIndex()); candidate > snapshotIndex; candidate--) {
      if (this.entryAt(asIndex(candidate)).term <= term) {
        return asIndex(candidate);
      }
    }
    return snapshotIndex;
  }

  /**
   * Follower side of an append: if our log holds (prevIndex, prevTerm), writes `entries` after it,
   * truncating a conflicting suffix, and returns the index of the last new entry; otherwise
   * returns undefined. Does not move the commit index (the caller does, so it can apply
   * membership changes).
   */
  maybeAppend(prevIndex: LogIndex, prevTerm: Term, entries: readonly Entry[]): LogIndex | undefined {
    if (!this.matchTerm(prevIndex, prevTerm)) {
      return undefined;
    }
    entries.forEach((entry, offset) => assert(entry.index === prevIndex + 1 + offset,
      () => `append entries are not contiguous after ${prevIndex}: got ${entry.index} at offset ${offset}`));
    const conflict = this.findConflict(entries);
    if (conflict !== 0) {
      this.append(entries.slice(conflict - prevIndex - 1));
    }
    return asIndex(prevIndex + entries.length);
  }

  /** Writes `entries` (contiguous) after index entries[0].index - 1, dropping any suffix there. */
  append(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) {
      return;
    }
    assert(first.index > this.committedIndex, () => `cannot overwrite committed index ${first.index} (commit ${this.committedIndex})`);
    assert(first.index <= this.lastIndex() + 1, () => `append at ${first.index} leaves a gap after ${this.lastIndex()}`);
    const previousTerm = this.mustTerm(asIndex(first.index - 1));
    assert(first.term >= previousTerm, () => `entry ${first.index} has term ${first.term} below its predecessor's ${previousTerm}`);
    this.entries.length = first.index - this.snapshot.meta.index - 1;
    let expected = first.index;
    for (const entry of entries) {
      assert(entry.index === expected, () => `appended entries are not contiguous at ${entry.index}`);
      this.entries.push(entry);
      expected++;
    }
    this.handedOffIndex = minIndex(this.handedOffIndex, asIndex(first.index - 1));
    this.persistedIndex = minIndex(this.persistedIndex, asIndex(first.index - 1));
  }

  /** Moves the commit index forward (never back). */
  commitTo(index: LogIndex): boolean {
    if (index <= this.committedIndex) {
      return false;
    }
    assert(index <= this.lastIndex(), () => `commit ${index} is beyond the last index ${this.lastIndex()}`);
    this.committedIndex = index;
    return true;
  }

  /** Replaces the whole log with a snapshot received from the leader; the next Ready returns it. */
  restore(snapshot: Snapshot): void {
    // The one exception to "newer than our commit": a joining member with an empty log takes the
    // leader's index-0 snapshot for its configuration.
    const baseForEmptyLog = snapshot.meta.index === 0 && this.lastIndex() === 0;
    assert(snapshot.meta.index > this.committedIndex || baseForEmptyLog,
      () => `restoring snapshot ${snapshot.meta.index} at or below commit ${this.committedIndex}`);
    // What stays known durable is the committed prefix we had (the snapshot's history holds it);
    // the snapshot itself counts once `stableTo` reports it.
    this.persistedIndex = minIndex(this.persistedIndex, this.committedIndex);
    this.snapshot = snapshot;
    this.entries = [];
    this.committedIndex = snapshot.meta.index;
    this.handedOffIndex = snapshot.meta.index;
    this.applyingIndex = snapshot.meta.index;
    this.snapshotOwed = true;
  }

  /** The application snapshotted its state at `meta.index`: drop entries up to it. Stale calls are ignored. */
  compact(meta: SnapshotMeta, data: Uint8Array): void {
    if (meta.index <= this.snapshot.meta.index) {
      return;
    }
    assert(meta.index <= this.appliedIndex, () => `cannot compact to ${meta.index}: only ${this.appliedIndex} is applied`);
    assert(meta.term === this.term(meta.index), () => `compaction term ${meta.term} does not match the log at ${meta.index}`);
    this.entries = this.entries.slice(meta.index - this.snapshot.meta.index);
    this.snapshot = { meta, data };
  }

  // ----- Ready bookkeeping -----

  hasUnstable(): boolean {
    return this.snapshotOwed || this.handedOffIndex < this.lastIndex();
  }

  hasCommittedToApply(): boolean {
    return !this.snapshotOwed && this.applyingIndex < this.committedIndex;
  }

  /** Hands out the owed snapshot (if any) and the entries not yet handed out for persisting. */
  takeUnstable(): { snapshot: Snapshot | undefined; entries: Entry[] } {
    const snapshot = this.snapshotOwed ? this.snapshot : undefined;
    this.snapshotOwed = false;
    const entries = this.entries.slice(this.handedOffIndex - this.snapshot.meta.index);
    this.handedOffIndex = this.lastIndex();
    return { snapshot, entries };
  }

  /** Hands out committed entries not yet handed out for applying. Call after takeUnstable. */
  takeCommitted(): Entry[] {
    if (!this.hasCommittedToApply()) {
      return [];
    }
    const entries = this.slice(asIndex(this.applyingIndex + 1), this.committedIndex, MAX_COMMITTED_BYTES_PER_READY);
    const last = entries[entries.length - 1];
    if (last !== undefined) {
      this.applyingIndex = last.index;
    }
    return entries;
  }

  /**
   * The driver made a Ready durable whose last entry (or snapshot) is (index, term). Ignored when
   * the log no longer holds that entry (its suffix was replaced while the write was in flight;
   * the write of the replacement reports itself).
   */
  stableTo(index: LogIndex, term: Term): void {
    if (index <= this.persistedIndex || index > this.handedOffIndex || this.term(index) !== term) {
      return;
    }
    this.persistedIndex = index;
  }

  /** The driver applied everything up to `index` (from a Ready's snapshot or committed entries). */
  appliedTo(index: LogIndex): void {
    assert(index <= this.applyingIndex, () => `applied ${index} was never handed out (applying ${this.applyingIndex})`);
    this.appliedIndex = maxIndex(this.appliedIndex, index);
  }
}
