/**
 * Message and tick dispatch: the term rules every role shares (etcd's Step), then the role's
 * own step function. Roles are step functions: follower.ts, election.ts (pre-candidate and
 * candidate), leader.ts.
 */
import { handleVoteRequest, hup, stepCandidate } from './election.js';
import { stepFollower } from './follower.js';
import { stepLeader, tickLeader } from './leader.js';
import { assert, unreachable } from './invariant.js';
import type { RaftNode } from './raft-node.js';
import { NO_MEMBER } from './types.js';
import type { Message } from './types.js';

/** Feeds one message from a peer to the member. */
export function step(node: RaftNode, message: Message): void {
  assert(message.to === node.id, () => `${node.id} was handed a message for ${message.to}`);
  assert(message.from !== node.id, () => `${node.id} was handed its own ${message.type}`);
  if (message.term > node.term) {
    if (!adoptHigherTerm(node, message)) {
      return;
    }
  } else if (message.term < node.term) {
    answerStaleTerm(node, message);
    return;
  }
  switch (message.type) {
    case 'preVote':
    case 'vote':
      handleVoteRequest(node, message);
      return;
    default:
      stepRole(node, message);
  }
}

function stepRole(node: RaftNode, message: Message): void {
  const role = node.role;
  switch (role) {
    case 'follower':
      stepFollower(node, message, () => hup(node, 'transfer'));
      return;
    case 'preCandidate':
    case 'candidate':
      stepCandidate(node, message);
      return;
    case 'leader':
      stepLeader(node, message);
      return;
    default:
      unreachable(role);
  }
}

/**
 * A message from a later term. Returns false when it must be dropped without effect.
 * - (Pre-)vote requests while we heard from a leader within the election timeout are ignored
 *   (leader stickiness, with check-quorum), unless they come from a leadership transfer.
 * - Pre-votes and granted pre-vote answers never move our term: a pre-vote is a question.
 * - Anything else makes us a follower of that term (of the sender, when it is the leader).
 */
function adoptHigherTerm(node: RaftNode, message: Message): boolean {
  if ((message.type === 'preVote' || message.type === 'vote') && !message.transfer && node.inLeaderLease()) {
    return false;
  }
  if (message.type === 'preVote' || (message.type === 'preVoteResponse' && !message.reject)) {
    return true;
  }
  const fromLeader = message.type === 'append' || message.type === 'heartbeat' || message.type === 'snapshotChunk';
  node.becomeFollower(message.term, fromLeader ? message.from : NO_MEMBER);
  return true;
}

/**
 * A message from an earlier term. An old leader's append or heartbeat gets an answer in our term
 * so it steps down (with check-quorum or pre-vote our term may be ahead of a leader that
 * cannot otherwise learn of it); a pre-vote gets a rejection; everything else is dropped.
 */
function answerStaleTerm(node: RaftNode, message: Message): void {
  if ((node.config.checkQuorum || node.config.preVote) && (message.type === 'append' || message.type === 'heartbeat')) {
    node.send(message.from, { type: 'appendResponse', reject: false, index: node.log.committed });
  } else if (message.type === 'preVote') {
    node.send(message.from, { type: 'preVoteResponse', reject: true });
  }
}

/** Advances the member's clock by one tick. */
export function tick(node: RaftNode): void {
  const role = node.role;
  switch (role) {
    case 'leader':
      tickLeader(node);
      return;
    case 'follower':
    case 'preCandidate':
    case 'candidate':
      node.electionElapsed++;
      if (node.promotable() && node.electionElapsed >= node.randomizedElectionTicks) {
        node.electionElapsed = 0;
        hup(node, node.config.preVote ? 'preElection' : 'election');
      }
      return;
    default:
      unreachable(role);
  }
}
