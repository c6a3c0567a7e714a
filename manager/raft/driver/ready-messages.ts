/**
 * Pure helpers for what a driver does with a Ready's messages: merge the appends the core queued
 * one per proposal into one per follower, and tell which messages may leave before the Ready is
 * durable. The real driver (raft-node.ts) and the simulator's member loop (test/sim) both use
 * them, so the simulation checks exactly what runs.
 */
import type { Message, MemberId } from '../core/types.js';

/** Entry bytes one merged append carries at most (the core's default maxMessageBytes). */
export const MAX_COALESCED_APPEND_BYTES = 1024 * 1024;

type Append = Extract<Message, { type: 'append' }>;

const entryBytes = (message: Append): number => message.entries.reduce((sum, entry) => sum + entry.data.length, 0);

/**
 * Merges each run of appends to one member that continue one another (the next starts where the
 * last ended, same term) into one append with all their entries and the last commit index. The
 * core emits one append per proposal; under load a Ready holds dozens per follower, and each
 * costs an encode, a frame and, on the follower, a step and an acknowledgement. Merging changes
 * nothing Raft sees except fewer, larger messages (the follower acknowledges the last index, and
 * the leader frees every inflight slot up to it). Other messages keep their order.
 */
export function coalesceAppends(messages: readonly Message[]): Message[] {
  const out: Message[] = [];
  /** Per member: the position in `out` of its last message, if that is an append we may extend. */
  const open = new Map<MemberId, { at: number; bytes: number }>();
  for (const message of messages) {
    const last = open.get(message.to);
    const previous = last === undefined ? undefined : out[last.at];
    if (message.type === 'append' && last !== undefined && previous?.type === 'append' && previous.term === message.term &&
        previous.prevLogIndex + previous.entries.length === message.prevLogIndex) {
      const bytes = entryBytes(message);
      if (last.bytes + bytes <= MAX_COALESCED_APPEND_BYTES) {
        out[last.at] = { ...previous, entries: [...previous.entries, ...message.entries], commit: message.commit > previous.commit ? message.commit : previous.commit };
        last.bytes += bytes;
        continue;
      }
    }
    if (message.type === 'append') open.set(message.to, { at: out.length, bytes: entryBytes(message) });
    else open.delete(message.to);
    out.push(message);
  }
  return out;
}

/**
 * Whether a message may be sent before the Ready it came with is durable. A leader's replication
 * traffic may (Raft thesis §10.2.1): it promises nothing about our own disk, and the leader
 * counts its own entries toward commit only once they are persisted (core.advance). Everything
 * else waits for the disk: an acknowledgement or a vote is a promise that what it covers is
 * durable here.
 */
export function mayPrecedePersist(message: Message): boolean {
  return message.type === 'append' || message.type === 'heartbeat' || message.type === 'snapshotChunk' || message.type === 'timeoutNow';
}
