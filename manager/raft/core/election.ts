/**
 * Elections: campaigning (with the pre-vote phase), the (pre-)candidate step function, and how
 * any member answers a (pre-)vote request.
 */
import { asTerm, unreachable } from './invariant.js';
import { handleLeaderMessage } from './follower.js';
import { afterCommit, maybeCommit } from './leader.js';
import { voteResult } from './quorum.js';
import type { RaftNode } from './raft-node.js';
import { broadcastAppend } from './replication.js';
import { NO_MEMBER } from './types.js';
import type { MemberId, Message } from './types.js';

/** preElection: ask for pre-votes first; election: a real vote; transfer: a real vote that bypasses leader stickiness. */
export type CampaignKind = 'preElection' | 'election' | 'transfer';

/** Starts a campaign if this member may (a voter that is not already leader). */
export function hup(node: RaftNode, kind: CampaignKind): void {
  if (node.role === 'leader' || !node.promotable()) {
    return;
  }
  campaign(node, kind);
}

function campaign(node: RaftNode, kind: CampaignKind): void {
  if (kind === 'preElection') {
    node.becomePreCandidate();
  } else {
    node.becomeCandidate();
  }
  // A pre-vote asks about the term we would campaign in, without moving to it.
  const voteTerm = kind === 'preElection' ? asTerm(node.term + 1) : node.term;
  const type = kind === 'preElection' ? 'preVote' : 'vote';
  if (recordVote(node, node.id, true)) {
    return; // we alone are a majority
  }
  const lastLogIndex = node.log.lastIndex();
  const lastLogTerm = node.log.lastTerm();
  for (const voter of node.conf.voters) {
    if (voter !== node.id) {
      node.send(voter, { type, lastLogIndex, lastLogTerm, transfer: kind === 'transfer' }, voteTerm);
    }
  }
}

/** Counts a vote; returns true when the campaign is decided (won or lost). */
function recordVote(node: RaftNode, from: MemberId, granted: boolean): boolean {
  // Only voters' answers count: voteResult looks at voters alone, so learners' are ignored.
  if (!node.votes.has(from)) {
    node.votes.set(from, granted);
  }
  const result = voteResult(node.conf.voters, node.votes);
  switch (result) {
    case 'won':
      if (node.role === 'preCandidate') {
        campaign(node, 'election');
      } else {
        becomeLeaderAndAnnounce(node);
      }
      return true;
    case 'lost':
      node.becomeFollower(node.term, NO_MEMBER);
      return true;
    case 'pending':
      return false;
    default:
      return unreachable(result);
  }
}

function becomeLeaderAndAnnounce(node: RaftNode): void {
  node.becomeLeader();
  if (maybeCommit(node) && !afterCommit(node)) {
    return;
  }
  broadcastAppend(node);
}

/** The step function of pre-candidates and candidates. */
export function stepCandidate(node: RaftNode, message: Message): void {
  switch (message.type) {
    case 'append':
    case 'heartbeat':
    case 'snapshotChunk':
      // A leader exists in our term (or, pre-candidate, in our current term): follow it.
      node.becomeFollower(message.term, message.from);
      handleLeaderMessage(node, message);
      return;
    case 'preVoteResponse':
      if (node.role === 'preCandidate') {
        recordVote(node, message.from, !message.reject);
      }
      return;
    case 'voteResponse':
      if (node.role === 'candidate') {
        recordVote(node, message.from, !message.reject);
      }
      return;
    case 'timeoutNow':
    case 'appendResponse':
    case 'heartbeatResponse':
    case 'snapshotResponse':
    case 'preVote':
    case 'vote':
      return;
    default:
      unreachable(message);
  }
}

type VoteRequest = Extract<Message, { type: 'preVote' | 'vote' }>;

/**
 * Answers a (pre-)vote request at our term or above (raft.ts already moved us to a higher term
 * for real votes). Grants when we have not voted for someone else in this term (or it is a pre-vote
 * for a later term) and the candidate's log is at least as up to date as ours.
 */
export function handleVoteRequest(node: RaftNode, message: VoteRequest): void {
  const responseType = message.type === 'preVote' ? 'preVoteResponse' : 'voteResponse';
  const canVote =
    node.vote === message.from ||
    (node.vote === NO_MEMBER && node.leader === NO_MEMBER) ||
    (message.type === 'preVote' && message.term > node.term);
  if (canVote && node.log.isUpToDate(message.lastLogIndex, message.lastLogTerm)) {
    // Answer in the request's term: a pre-candidate ignores answers from older terms.
    node.send(message.from, { type: responseType, reject: false }, message.term);
    if (message.type === 'vote') {
      node.electionElapsed = 0;
      node.vote = message.from;
    }
    return;
  }
  node.send(message.from, { type: responseType, reject: true });
}
