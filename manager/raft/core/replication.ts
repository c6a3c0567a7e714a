/**
 * What the leader sends to keep followers' logs in step with its own: appends (batched up to
 * maxMessageBytes, pipelined within each member's inflight window), heartbeats, and snapshot
 * chunks when the entries a member needs were compacted away.
 *
 * Sending only reads the log; it mutates Progress (next, inflights, stream offsets).
 */
import { asIndex, assert, minIndex } from './invariant.js';
import type { Progress } from './progress.js';
import { SNAPSHOT_WINDOW_CHUNKS } from './progress.js';
import type { RaftNode } from './raft-node.js';
import type { MemberId } from './types.js';

/**
 * Sends `to` one append starting at its `next` index, unless its flow is paused. With
 * `sendIfEmpty` false an append without entries is not sent. Starts a snapshot stream when the
 * entries it needs were compacted. Returns whether a message went out.
 */
export function sendAppend(node: RaftNode, to: MemberId, sendIfEmpty: boolean): boolean {
  const progress = node.mustProgress(to);
  if (progress.isPaused()) {
    return false;
  }
  const prevLogIndex = asIndex(progress.next - 1);
  const prevLogTerm = node.log.term(prevLogIndex);
  if (prevLogTerm === undefined) {
    assert(prevLogIndex < node.log.snapshotMeta().index, () => `next ${progress.next} of ${to} is beyond our log`);
    startSnapshot(node, progress);
    return true;
  }
  const lastIndex = node.log.lastIndex();
  const entries = progress.next <= lastIndex ? node.log.slice(progress.next, lastIndex, node.config.maxMessageBytes) : [];
  if (entries.length === 0 && !sendIfEmpty) {
    return false;
  }
  node.send(to, { type: 'append', prevLogIndex, prevLogTerm, entries, commit: node.log.committed });
  progress.sentAppend(asIndex(prevLogIndex + entries.length), entries.length);
  return true;
}

/** Sends `to` as many appends as its flow control allows (the first one even if empty when asked). */
export function sendAppends(node: RaftNode, to: MemberId, sendIfEmpty: boolean): void {
  if (!sendAppend(node, to, sendIfEmpty)) {
    return;
  }
  const progress = node.mustProgress(to);
  // Bounded: each round either pauses the flow or advances `next` toward the last index.
  while (progress.state === 'replicate' && sendAppend(node, to, false)) {
    // keep pipelining
  }
}

/**
 * An append without entries at `next - 1`, sent even when the inflight window is full: if every
 * message in the window was lost, the member rejects it and we fall back to probing.
 */
export function sendEmptyAppend(node: RaftNode, to: MemberId): void {
  const progress = node.mustProgress(to);
  const prevLogIndex = asIndex(progress.next - 1);
  const prevLogTerm = node.log.term(prevLogIndex);
  if (prevLogTerm === undefined) {
    // What is in flight was compacted since: if it was lost only a snapshot helps, so probe.
    progress.becomeProbe();
    sendAppends(node, to, true);
    return;
  }
  node.send(to, { type: 'append', prevLogIndex, prevLogTerm, entries: [], commit: node.log.committed });
}

/** Sends every other member an append, even an empty one (to carry a new commit index). */
export function broadcastAppend(node: RaftNode): void {
  for (const member of node.progress.keys()) {
    if (member !== node.id) {
      sendAppends(node, member, true);
    }
  }
}

/** Sends every other member a heartbeat carrying our commit (capped at its match) and a read context. */
export function broadcastHeartbeat(node: RaftNode, context: string): void {
  for (const [member, progress] of node.progress) {
    if (member !== node.id) {
      // A member must not commit past what it has matched: its log beyond may still diverge.
      const commit = minIndex(progress.match, node.log.committed);
      node.send(member, { type: 'heartbeat', commit, context });
    }
  }
}

// ----- snapshot streaming (leader side) -----

/** Switches `progress` to streaming our current snapshot and sends the first chunks. */
export function startSnapshot(node: RaftNode, progress: Progress): void {
  const snapshot = node.log.currentSnapshot();
  progress.becomeSnapshot(snapshot.meta, snapshot.data);
  sendSnapshotChunks(node, progress);
}

/** Sends the next chunks of the stream to its member, keeping at most the window unacknowledged. */
export function sendSnapshotChunks(node: RaftNode, progress: Progress): void {
  const stream = progress.stream;
  assert(progress.state === 'snapshot' && stream !== undefined, 'no snapshot stream to send');
  const chunkBytes = node.config.snapshotChunkBytes;
  const windowBytes = SNAPSHOT_WINDOW_CHUNKS * chunkBytes;
  // Bounded: each round advances `sent` by a chunk or marks the last chunk sent.
  while (!stream.lastSent && stream.sent - stream.acked < windowBytes) {
    const offset = stream.sent;
    const data = stream.data.subarray(offset, offset + chunkBytes);
    const last = offset + data.length >= stream.data.length;
    node.send(progress.member, { type: 'snapshotChunk', meta: stream.meta, offset, data, last });
    stream.sent = offset + data.length;
    stream.lastSent = last;
  }
}

/** Resends the stream from `offset` (what the member holds). */
export function rewindSnapshotStream(node: RaftNode, progress: Progress, offset: number): void {
  const stream = progress.stream;
  assert(stream !== undefined, 'no snapshot stream to rewind');
  assert(offset >= 0 && offset <= stream.data.length, () => `rewind offset ${offset} outside the snapshot`);
  stream.acked = offset;
  stream.sent = offset;
  stream.lastSent = false;
  stream.rewoundTo = offset;
  stream.idleTicks = 0;
  sendSnapshotChunks(node, progress);
}

/** A member acknowledged (or, rejecting, told us) how many bytes of the stream it holds. */
export function handleSnapshotProgress(node: RaftNode, progress: Progress, reject: boolean, offset: number): void {
  const stream = progress.stream;
  if (stream === undefined || offset < 0 || offset > stream.data.length) {
    return;
  }
  stream.idleTicks = 0;
  if (!reject) {
    stream.acked = Math.max(stream.acked, offset);
    stream.sent = Math.max(stream.sent, stream.acked);
    sendSnapshotChunks(node, progress);
    return;
  }
  // A gap (a chunk was lost) or the member lost its partial copy: resend from what it holds,
  // once per offset — every chunk after a gap produces the same rejection.
  if (stream.rewoundTo !== offset) {
    rewindSnapshotStream(node, progress, offset);
  }
}

/** Leader tick: a stream without any answer for an election timeout is resent from its acked offset. */
export function tickSnapshotStream(node: RaftNode, progress: Progress): void {
  const stream = progress.stream;
  if (stream === undefined) {
    return;
  }
  stream.idleTicks++;
  if (stream.idleTicks >= node.config.electionTicks) {
    rewindSnapshotStream(node, progress, stream.acked);
  }
}
