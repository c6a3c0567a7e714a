/**
 * Majority arithmetic over the voters of one configuration. Learners never count: callers pass
 * voters only. Pure functions.
 */
import { asIndex, assert } from './invariant.js';
import type { LogIndex, MemberId } from './types.js';

export type VoteResult = 'won' | 'lost' | 'pending';

/** Members needed for a majority of `voterCount` voters. */
export function quorumSize(voterCount: number): number {
  assert(voterCount > 0, 'a configuration without voters has no quorum');
  return Math.floor(voterCount / 2) + 1;
}

/**
 * The largest index that a majority of voters has matched: the quorum-th highest match.
 * Voters without a known match count as 0.
 */
export function committedIndex(voters: readonly MemberId[], matchOf: (member: MemberId) => LogIndex | undefined): LogIndex {
  const matches = voters.map((voter) => matchOf(voter) ?? 0).sort((a, b) => b - a);
  const index = matches[quorumSize(voters.length) - 1];
  assert(index !== undefined, 'quorum position is inside the voter list');
  return asIndex(index);
}

/** Whether `granted` voters reach a majority, can no longer reach one, or not yet either. */
export function voteResult(voters: readonly MemberId[], votes: ReadonlyMap<MemberId, boolean>): VoteResult {
  let granted = 0;
  let rejected = 0;
  for (const voter of voters) {
    const vote = votes.get(voter);
    if (vote === true) {
      granted++;
    } else if (vote === false) {
      rejected++;
    }
  }
  const quorum = quorumSize(voters.length);
  if (granted >= quorum) {
    return 'won';
  }
  if (voters.length - rejected < quorum) {
    return 'lost';
  }
  return 'pending';
}

/** Whether the voters for which `active` holds form a majority. */
export function hasQuorum(voters: readonly MemberId[], active: (member: MemberId) => boolean): boolean {
  return voters.filter(active).length >= quorumSize(voters.length);
}
