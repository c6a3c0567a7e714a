/**
 * The leader's view of one member's replication (etcd's tracker.Progress), with its flow control.
 *
 * - probe: we don't know where the member's log matches ours; one append is in flight until it
 *   answers (or a heartbeat response arrives), and rejections walk `next` back.
 * - replicate: the member is matched; appends are pipelined optimistically, at most
 *   `maxInflightMessages` unacknowledged at a time.
 * - snapshot: the entries it needs are compacted; a snapshot is being streamed in chunks and no
 *   appends are sent until the member reports it installed.
 *
 * Only the leader creates and changes Progress values.
 */
import { asIndex, assert, maxIndex } from './invariant.js';
import type { LogIndex, MemberId, ProgressStatus, SnapshotMeta } from './types.js';

/** The last indexes of appends in flight to one member, oldest first, bounded by `capacity`. */
export class Inflights {
  private readonly lastIndexes: LogIndex[] = [];

  constructor(readonly capacity: number) {
    assert(capacity > 0, 'inflight capacity must be positive');
  }

  get count(): number { return this.lastIndexes.length; }

  full(): boolean {
    return this.lastIndexes.length >= this.capacity;
  }

  add(lastIndex: LogIndex): void {
    assert(!this.full(), 'cannot add to a full inflight window');
    const newest = this.lastIndexes[this.lastIndexes.length - 1];
    assert(newest === undefined || lastIndex > newest, () => `inflight ${lastIndex} is not after ${String(newest)}`);
    this.lastIndexes.push(lastIndex);
  }

  /** Frees every message whose last index is <= `index` (the member acknowledged up to it). */
  freeUpTo(index: LogIndex): void {
    let freed = 0;
    while (freed < this.lastIndexes.length && (this.lastIndexes[freed] ?? Infinity) <= index) {
      freed++;
    }
    this.lastIndexes.splice(0, freed);
  }

  reset(): void {
    this.lastIndexes.length = 0;
  }
}

/** Snapshot chunks in flight (sent, unacknowledged) to one member at most. */
export const SNAPSHOT_WINDOW_CHUNKS = 4;

/** A snapshot being streamed to one member in chunks. */
export interface SnapshotStream {
  readonly meta: SnapshotMeta;
  readonly data: Uint8Array;
  /** Bytes the member confirmed it holds. */
  acked: number;
  /** Bytes sent so far (acked <= sent <= data.length). */
  sent: number;
  /** True once the chunk marked `last` went out (sent may equal data.length === 0). */
  lastSent: boolean;
  /** Leader ticks since the member last reported progress; drives resending. */
  idleTicks: number;
  /** The offset we last rewound to on a rejection, so duplicate rejections do not rewind twice. */
  rewoundTo: number;
}

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

export class Progress {
  match: LogIndex = asIndex(0);
  next: LogIndex;
  state: ProgressState = 'probe';
  /** probe state: an append is outstanding, wait for an answer before sending another. */
  probeSent = false;
  /** Heard from the member since the last check-quorum round. */
  recentActive = false;
  learner: boolean;
  stream: SnapshotStream | undefined = undefined;
  readonly inflights: Inflights;

  constructor(readonly member: MemberId, next: LogIndex, learner: boolean, maxInflightMessages: number) {
    this.next = next;
    this.learner = learner;
    this.inflights = new Inflights(maxInflightMessages);
  }

  becomeProbe(): void {
    if (this.state === 'snapshot' && this.stream !== undefined) {
      this.next = asIndex(Math.max(this.match + 1, this.stream.meta.index + 1));
    } else {
      this.next = asIndex(this.match + 1);
    }
    this.reset('probe');
  }

  becomeReplicate(): void {
    this.next = asIndex(this.match + 1);
    this.reset('replicate');
  }

  becomeSnapshot(meta: SnapshotMeta, data: Uint8Array): void {
    this.reset('snapshot');
    this.stream = { meta, data, acked: 0, sent: 0, lastSent: false, idleTicks: 0, rewoundTo: -1 };
  }

  private reset(state: ProgressState): void {
    this.state = state;
    this.probeSent = false;
    this.stream = undefined;
    this.inflights.reset();
  }

  /** The member acknowledged its log matches ours up to `index`; true if that is news. */
  maybeUpdate(index: LogIndex): boolean {
    const updated = index > this.match;
    if (updated) {
      this.match = index;
      this.probeSent = false;
    }
    this.next = maxIndex(this.next, asIndex(index + 1));
    return updated;
  }

  /**
   * The member rejected an append and hinted its log can match ours at most up to `hint`.
   * Returns false when the rejection is stale (the member matched beyond it since).
   */
  maybeDecreaseTo(hint: LogIndex): boolean {
    if (hint < this.match) {
      return false;
    }
    if (this.state === 'replicate') {
      this.becomeProbe();
      return true;
    }
    assert(this.state === 'probe', 'append rejections are not handled while streaming a snapshot');
    this.next = asIndex(Math.max(this.match + 1, Math.min(this.next - 1, hint + 1)));
    this.probeSent = false;
    return true;
  }

  /** Whether an append (with entries) may be sent now. */
  isPaused(): boolean {
    switch (this.state) {
      case 'probe': return this.probeSent;
      case 'replicate': return this.inflights.full();
      case 'snapshot': return true;
    }
  }

  /** Records that an append ending at `lastIndex` with `entryCount` entries went out. */
  sentAppend(lastIndex: LogIndex, entryCount: number): void {
    if (this.state === 'replicate') {
      if (entryCount > 0) {
        this.inflights.add(lastIndex);
        this.next = asIndex(lastIndex + 1);
      }
      return;
    }
    assert(this.state === 'probe', 'appends are not sent while streaming a snapshot');
    this.probeSent = true;
  }

  status(): ProgressStatus {
    return { match: this.match, next: this.next, state: this.state, recentActive: this.recentActive, learner: this.learner };
  }
}
