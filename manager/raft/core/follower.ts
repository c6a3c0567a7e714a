/**
 * The follower role: accepting the leader's appends, heartbeats and snapshot chunks, and
 * campaigning at once when the leader hands over leadership (timeoutNow).
 */
import { asIndex, asTerm, minIndex, unreachable } from './invariant.js';
import type { RaftNode } from './raft-node.js';
import type { Message } from './types.js';

export function stepFollower(node: RaftNode, message: Message, campaignForTransfer: () => void): void {
  switch (message.type) {
    case 'append':
    case 'heartbeat':
    case 'snapshotChunk':
      node.electionElapsed = 0;
      node.leader = message.from;
      handleLeaderMessage(node, message);
      return;
    case 'timeoutNow':
      if (node.promotable()) {
        campaignForTransfer();
      }
      return;
    case 'appendResponse':
    case 'heartbeatResponse':
    case 'snapshotResponse':
    case 'preVote':
    case 'vote':
    case 'preVoteResponse':
    case 'voteResponse':
      return; // answers to a leadership or candidacy we no longer hold
    default:
      unreachable(message);
  }
}

type LeaderMessage = Extract<Message, { type: 'append' | 'heartbeat' | 'snapshotChunk' }>;

/** Handles a message from the current leader (also used by candidates that just stepped down). */
export function handleLeaderMessage(node: RaftNode, message: LeaderMessage): void {
  switch (message.type) {
    case 'append':
      handleAppend(node, message);
      return;
    case 'heartbeat':
      node.commitTo(message.commit);
      node.send(message.from, { type: 'heartbeatResponse', context: message.context });
      return;
    case 'snapshotChunk':
      handleSnapshotChunk(node, message);
      return;
    default:
      unreachable(message);
  }
}

function handleAppend(node: RaftNode, message: Extract<Message, { type: 'append' }>): void {
  const log = node.log;
  if (message.prevLogIndex < log.committed) {
    // Everything up to our commit index already matches any leader's log.
    node.send(message.from, { type: 'appendResponse', reject: false, index: log.committed });
    return;
  }
  if (node.needsBaseSnapshot()) {
    // Refuse even index 0: the leader then streams its snapshot, which carries the configuration.
    node.send(message.from, { type: 'appendResponse', reject: true, index: asIndex(0), logTerm: asTerm(0) });
    return;
  }
  const lastNew = log.maybeAppend(message.prevLogIndex, message.prevLogTerm, message.entries);
  if (lastNew !== undefined) {
    // Only entries known to match the leader's log may be committed.
    node.commitTo(minIndex(message.commit, lastNew));
    node.send(message.from, { type: 'appendResponse', reject: false, index: lastNew });
    return;
  }
  // Fast backtracking: skip every entry whose term cannot match the leader's prevLogTerm.
  const hint = log.findConflictByTerm(minIndex(message.prevLogIndex, log.lastIndex()), message.prevLogTerm);
  node.send(message.from, { type: 'appendResponse', reject: true, index: hint, logTerm: log.mustTerm(hint) });
}

function handleSnapshotChunk(node: RaftNode, message: Extract<Message, { type: 'snapshotChunk' }>): void {
  const log = node.log;
  const { meta } = message;
  if (meta.index <= log.committed && !(meta.index === 0 && node.needsBaseSnapshot())) {
    // Already have it (or newer): tell the leader where we are so it resumes with appends.
    node.incomingSnapshot = undefined;
    node.send(message.from, { type: 'appendResponse', reject: false, index: log.committed });
    return;
  }
  let incoming = node.incomingSnapshot;
  if (message.offset === 0) {
    incoming = { meta, chunks: [], received: 0 };
    node.incomingSnapshot = incoming;
  }
  if (incoming === undefined || incoming.meta.index !== meta.index || incoming.meta.term !== meta.term) {
    node.send(message.from, { type: 'snapshotResponse', reject: true, offset: 0, index: meta.index });
    return;
  }
  if (message.offset !== incoming.received) {
    // A duplicate is acknowledged; a gap (a chunk was lost) asks for a resend from what we hold.
    const reject = message.offset > incoming.received;
    node.send(message.from, { type: 'snapshotResponse', reject, offset: incoming.received, index: meta.index });
    return;
  }
  incoming.chunks.push(message.data);
  incoming.received += message.data.length;
  if (!message.last) {
    node.send(message.from, { type: 'snapshotResponse', reject: false, offset: incoming.received, index: meta.index });
    return;
  }
  node.incomingSnapshot = undefined;
  installSnapshot(node, meta, concatenate(incoming.chunks, incoming.received));
  node.send(message.from, { type: 'appendResponse', reject: false, index: log.lastIndex() });
}

function installSnapshot(node: RaftNode, meta: Extract<Message, { type: 'snapshotChunk' }>['meta'], data: Uint8Array): void {
  if (node.log.matchTerm(meta.index, meta.term) && !node.needsBaseSnapshot()) {
    // Our log already holds the snapshot's last entry: it is committed, keep the entries after it.
    node.commitTo(meta.index);
    return;
  }
  node.installSnapshot({ meta, data });
}

function concatenate(chunks: readonly Uint8Array[], totalBytes: number): Uint8Array {
  const result = new Uint8Array(totalBytes);
  let offset = 0;
  for (const chunk of chunks) {
    result.set(chunk, offset);
    offset += chunk.length;
  }
  return result;
}
