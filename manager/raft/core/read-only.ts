/**
 * ReadIndex bookkeeping on the leader (etcd's readOnly, "safe" option): each request remembers
 * the commit index when it arrived; it may be served once a heartbeat round sent after it was
 * acknowledged by a majority of voters, which proves no newer leader existed at that point.
 * Requests are released in arrival order: confirming a later request confirms the earlier ones.
 */
import { assert } from './invariant.js';
import type { LogIndex, MemberId, ReadState } from './types.js';

interface PendingRead {
  index: LogIndex;
  acks: Set<MemberId>;
}

export class ReadOnly {
  private readonly pending = new Map<string, PendingRead>();
  private readonly queue: string[] = [];

  get size(): number { return this.queue.length; }

  has(requestId: string): boolean {
    return this.pending.has(requestId);
  }

  add(requestId: string, index: LogIndex, self: MemberId): void {
    assert(requestId !== '', 'a read request id must not be empty (empty means "no read" on the wire)');
    if (this.pending.has(requestId)) {
      return;
    }
    this.pending.set(requestId, { index, acks: new Set([self]) });
    this.queue.push(requestId);
  }

  /** Records that `from` answered the heartbeat round for `requestId`; returns the acks so far. */
  recordAck(from: MemberId, requestId: string): ReadonlySet<MemberId> | undefined {
    const read = this.pending.get(requestId);
    read?.acks.add(from);
    return read?.acks;
  }

  /** Releases `requestId` and every request queued before it. */
  release(requestId: string): ReadState[] {
    const position = this.queue.indexOf(requestId);
    assert(position >= 0, () => `released read ${requestId} is not pending`);
    const released = this.queue.splice(0, position + 1);
    return released.map((id) => {
      const read = this.pending.get(id);
      assert(read !== undefined, () => `queued read ${id} has no record`);
      this.pending.delete(id);
      return { requestId: id, index: read.index };
    });
  }

  /** The newest pending request, carried by periodic heartbeats so lost rounds are retried. */
  lastPending(): string {
    return this.queue[this.queue.length - 1] ?? '';
  }

  clear(): void {
    this.pending.clear();
    this.queue.length = 0;
  }
}
