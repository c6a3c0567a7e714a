/**
 * The leader role: its step function (answers to appends, heartbeats and snapshot chunks), its
 * tick (heartbeats, check-quorum, transfer timeout, snapshot resends), commitment by counting,
 * ReadIndex and leadership transfer.
 */
import { isVoter } from './conf-change.js';
import { assert, unreachable } from './invariant.js';
import { committedIndex, hasQuorum } from './quorum.js';
import type { RaftNode } from './raft-node.js';
import {
  broadcastAppend, broadcastHeartbeat, handleSnapshotProgress, sendAppends, sendEmptyAppend, startSnapshot, tickSnapshotStream,
} from './replication.js';
import { NO_MEMBER } from './types.js';
import type { MemberId, Message } from './types.js';

export function stepLeader(node: RaftNode, message: Message): void {
  switch (message.type) {
    case 'appendResponse':
      handleAppendResponse(node, message);
      return;
    case 'heartbeatResponse':
      handleHeartbeatResponse(node, message);
      return;
    case 'snapshotResponse': {
      const progress = node.progress.get(message.from);
      if (progress !== undefined && progress.state === 'snapshot' && progress.stream?.meta.index === message.index) {
        progress.recentActive = true;
        handleSnapshotProgress(node, progress, message.reject, message.offset);
      }
      return;
    }
    case 'append':
    case 'heartbeat':
    case 'snapshotChunk':
      assert(false, () => `two leaders in term ${node.term}: ${node.id} and ${message.from}`);
      return;
    case 'preVote':
    case 'vote':
    case 'preVoteResponse':
    case 'voteResponse':
    case 'timeoutNow':
      return; // stale election traffic of this term: we already won
    default:
      unreachable(message);
  }
}

type AppendResponse = Extract<Message, { type: 'appendResponse' }>;

function handleAppendResponse(node: RaftNode, message: AppendResponse): void {
  const progress = node.progress.get(message.from);
  if (progress === undefined) {
    return; // no longer a member
  }
  progress.recentActive = true;
  if (message.reject) {
    // With the follower's term at its hint, skip every entry of ours whose term is above it:
    // none of them can match (one probe per term instead of one per entry).
    const hint = message.logTerm === undefined || message.index < progress.match
      ? message.index
      : node.log.findConflictByTerm(message.index, message.logTerm);
    const snapshotIndex = node.log.snapshotMeta().index;
    if (progress.state === 'probe' && progress.next - 1 === snapshotIndex && hint <= snapshotIndex) {
      // It cannot match even at our snapshot (a member that joined without a configuration
      // refuses index 0): only the snapshot can help.
      startSnapshot(node, progress);
    } else if (progress.state !== 'snapshot' && progress.maybeDecreaseTo(hint)) {
      sendAppends(node, message.from, true);
    }
    return;
  }
  // A member that was paused may have missed commit updates: its next append goes out even if empty.
  const wasPaused = progress.isPaused();
  const updated = progress.maybeUpdate(message.index);
  switch (progress.state) {
    case 'probe':
      if (updated || message.index === progress.match) {
        progress.becomeReplicate();
      }
      break;
    case 'snapshot':
      if (progress.match + 1 >= node.log.firstIndex()) {
        progress.becomeProbe();
        progress.becomeReplicate();
      } else if (progress.stream !== undefined && progress.match >= progress.stream.meta.index) {
        // It holds the streamed snapshot, but we compacted past it since: probing starts a newer one.
        progress.becomeProbe();
      }
      break;
    case 'replicate':
      progress.inflights.freeUpTo(message.index);
      break;
  }
  if (updated && maybeCommit(node)) {
    broadcastAppend(node); // carries the new commit index
    if (!afterCommit(node)) {
      return;
    }
  } else if (progress.state !== 'snapshot') {
    sendAppends(node, message.from, wasPaused);
  }
  if (message.from === node.transferee && progress.match === node.log.lastIndex()) {
    node.send(message.from, { type: 'timeoutNow' });
  }
}

type HeartbeatResponse = Extract<Message, { type: 'heartbeatResponse' }>;

function handleHeartbeatResponse(node: RaftNode, message: HeartbeatResponse): void {
  const progress = node.progress.get(message.from);
  if (progress === undefined) {
    return;
  }
  progress.recentActive = true;
  progress.probeSent = false;
  if (progress.match < node.log.lastIndex() || progress.state === 'probe') {
    if (progress.state === 'replicate' && progress.inflights.full()) {
      sendEmptyAppend(node, message.from);
    } else if (progress.state !== 'snapshot') {
      sendAppends(node, message.from, true);
    }
  }
  if (message.context !== '' && isVoter(node.conf, message.from)) {
    const acks = node.readOnly.recordAck(message.from, message.context);
    if (acks !== undefined && hasQuorum(node.conf.voters, (voter) => acks.has(voter))) {
      node.readStates.push(...node.readOnly.release(message.context));
    }
  }
}

/**
 * Commits by counting: the highest index a majority of voters matched, but only if it is an entry
 * of our own term (Figure 8). Repeats while committed membership changes move the quorum.
 */
export function maybeCommit(node: RaftNode): boolean {
  let advanced = false;
  // Bounded: every round strictly raises the commit index or stops.
  for (;;) {
    const index = committedIndex(node.conf.voters, (voter) => node.progress.get(voter)?.match);
    if (index <= node.log.committed || node.log.term(index) !== node.term) {
      return advanced;
    }
    node.commitTo(index);
    advanced = true;
  }
}

/**
 * Effects of a commit on the leader: reads that waited for the term's first commit go out, and a
 * leader whose removal committed steps down. Returns false if it is no longer the leader.
 */
export function afterCommit(node: RaftNode): boolean {
  if (!isVoter(node.conf, node.id)) {
    // Followers learn the commit of our removal from the broadcast already queued; then we go.
    node.becomeFollower(node.term, NO_MEMBER);
    return false;
  }
  if (node.readsBeforeFirstCommit.length > 0 && node.committedInCurrentTerm()) {
    const reads = node.readsBeforeFirstCommit;
    node.readsBeforeFirstCommit = [];
    startReads(node, reads);
  }
  return true;
}

/** ReadIndex on the leader: queue until the term's first commit, else start a heartbeat round. */
export function requestRead(node: RaftNode, requestId: string): void {
  assert(node.role === 'leader', 'only the leader serves reads');
  assert(requestId !== '', 'a read request id must not be empty');
  if (!node.committedInCurrentTerm()) {
    // Until an entry of our term commits we don't know the commit index of the previous leader.
    node.readsBeforeFirstCommit.push(requestId);
    return;
  }
  startReads(node, [requestId]);
}

function startReads(node: RaftNode, requestIds: readonly string[]): void {
  for (const requestId of requestIds) {
    node.readOnly.add(requestId, node.log.committed, node.id);
  }
  const last = requestIds[requestIds.length - 1];
  if (last === undefined) {
    return;
  }
  if (hasQuorum(node.conf.voters, (voter) => voter === node.id)) {
    node.readStates.push(...node.readOnly.release(last)); // we alone are a majority
    return;
  }
  broadcastHeartbeat(node, last);
}

/** Starts handing leadership to `to`; the caller validated it is another voter. */
export function startTransfer(node: RaftNode, to: MemberId): void {
  node.transferee = to;
  // The transfer must finish within one election timeout, counted from now.
  node.electionElapsed = 0;
  const progress = node.mustProgress(to);
  if (progress.match === node.log.lastIndex()) {
    node.send(to, { type: 'timeoutNow' });
  } else {
    sendAppends(node, to, true);
  }
}

export function tickLeader(node: RaftNode): void {
  node.heartbeatElapsed++;
  node.electionElapsed++;
  if (node.electionElapsed >= node.config.electionTicks) {
    node.electionElapsed = 0;
    if (node.config.checkQuorum && !checkQuorum(node)) {
      node.becomeFollower(node.term, NO_MEMBER);
      return;
    }
    node.transferee = NO_MEMBER; // a transfer not done within an election timeout is abandoned
  }
  for (const progress of node.progress.values()) {
    tickSnapshotStream(node, progress);
  }
  if (node.heartbeatElapsed >= node.config.heartbeatTicks) {
    node.heartbeatElapsed = 0;
    broadcastHeartbeat(node, node.readOnly.lastPending());
  }
}

/** Whether a majority of voters was heard from since the last check; resets the marks. */
function checkQuorum(node: RaftNode): boolean {
  const active = hasQuorum(node.conf.voters, (voter) => voter === node.id || node.progress.get(voter)?.recentActive === true);
  for (const [member, progress] of node.progress) {
    if (member !== node.id) {
      progress.recentActive = false;
    }
  }
  return active;
}
