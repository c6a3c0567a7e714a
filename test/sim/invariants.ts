/**
 * Raft's safety properties (Raft paper, Figure 3), checked continuously from the outside while the
 * simulated world runs. Members report what they persist, apply and become; the checker keeps the
 * global picture and throws an InvariantViolation the moment a property fails.
 *
 * - Election safety: at most one leader per term.
 * - Log matching: two durable entries with the same index and term are the same entry, and two
 *   durable logs that agree at an index agree on every earlier index they both hold.
 * - Leader completeness: an entry committed while the highest known leader term was T is in the
 *   log of every leader of a term above T (a leader may win an older term late, through delayed
 *   votes, so only commits observed before any leader of its term existed can be demanded).
 * - State-machine safety: no two members apply different entries at the same index.
 * Per member and lifetime (checked by the member): the commit index never decreases; entries are
 * applied in order without gaps.
 */

import type { Entry, MemberId } from '../../manager/raft/core/types.js';
import { entryText } from './kv-state-machine.js';
import type { SimDisk } from './sim-disk.js';

/** A broken invariant. `invariant` is a short stable name; the message says what and where. */
export class InvariantViolation extends Error {
  constructor(
    readonly invariant: string,
    detail: string,
  ) {
    super(`${invariant}: ${detail}`);
    this.name = 'InvariantViolation';
  }
}

interface CommittedEntry {
  text: string;
  /** The highest term any leader was known to hold when the commit was observed. */
  leaderTermBound: number;
  firstAppliedBy: MemberId;
}

export class SafetyChecker {
  /**
   * The disks of a fixed voter set, when the world has one (no membership changes): an entry
   * applied for the first time must then already be durable (synced log, or a snapshot past it)
   * on a majority of them, as Raft's commit rule promises. Counting an entry before it is
   * written, anywhere, breaks this at once, long before a crash happens to expose the loss.
   */
  constructor(private readonly fixedVoterDisks?: () => ReadonlyMap<MemberId, SimDisk>) {}

  private readonly leaderOfTerm = new Map<number, MemberId>();
  private highestLeaderTerm = 0;
  private readonly durableEntryText = new Map<string, { text: string; member: MemberId }>();
  private readonly committed = new Map<number, CommittedEntry>();

  /** A member reports it became leader of `term`, after persisting the Ready that said so. */
  onLeader(member: MemberId, term: number, disk: SimDisk): void {
    const existing = this.leaderOfTerm.get(term);
    if (existing !== undefined && existing !== member) {
      throw new InvariantViolation('election safety', `${existing} and ${member} are both leaders of term ${term}`);
    }
    this.leaderOfTerm.set(term, member);
    if (term > this.highestLeaderTerm) this.highestLeaderTerm = term;
    const snapshotIndex = disk.durableSnapshotIndex();
    for (const [index, committed] of this.committed) {
      if (committed.leaderTermBound >= term || index <= snapshotIndex) continue;
      const entry = disk.durableEntry(index);
      const text = entry === undefined ? 'nothing' : entryText(entry);
      if (text !== committed.text) {
        throw new InvariantViolation(
          'leader completeness',
          `${member} became leader of term ${term} with ${text} at index ${index}, but ${committed.firstAppliedBy} applied ${committed.text} there (committed while the highest leader term was ${committed.leaderTermBound})`,
        );
      }
    }
  }

  /** A member made `entries` durable. */
  onPersisted(member: MemberId, entries: readonly Entry[]): void {
    for (const entry of entries) {
      const key = `${entry.index}:${entry.term}`;
      const text = entryText(entry);
      const known = this.durableEntryText.get(key);
      if (known === undefined) this.durableEntryText.set(key, { text, member });
      else if (known.text !== text) {
        throw new InvariantViolation('log matching', `index ${entry.index} term ${entry.term} holds ${known.text} on ${known.member} but ${text} on ${member}`);
      }
    }
  }

  /** A member is about to apply `entry` to its state machine. */
  onApply(member: MemberId, entry: Entry): void {
    const text = entryText(entry);
    const known = this.committed.get(entry.index);
    if (known === undefined) {
      this.checkDurableOnMajority(member, entry, text);
      this.committed.set(entry.index, { text, leaderTermBound: this.highestLeaderTerm, firstAppliedBy: member });
      return;
    }
    if (known.text !== text) {
      throw new InvariantViolation('state-machine safety', `${known.firstAppliedBy} applied ${known.text} at index ${entry.index} but ${member} applies ${text}`);
    }
  }

  private checkDurableOnMajority(member: MemberId, entry: Entry, text: string): void {
    const disks = this.fixedVoterDisks?.();
    if (disks === undefined) return;
    const holders = [...disks].filter(([, disk]) => disk.durableSnapshotIndex() >= entry.index || disk.durableTerm(entry.index) === entry.term).map(([id]) => id);
    if (holders.length * 2 > disks.size) return;
    throw new InvariantViolation(
      'commit durability',
      `${member} applies ${text} at index ${entry.index}, durable on ${holders.length} of ${disks.size} voters (${holders.join(', ') || 'none'}): a majority must hold it before it commits`,
    );
  }

  /** Log matching over whole durable logs: where two logs agree on a term, they agree on everything before it. */
  checkLogPrefixes(disks: ReadonlyMap<MemberId, SimDisk>): void {
    const members = [...disks.keys()].sort();
    for (let left = 0; left < members.length; left++) {
      for (let right = left + 1; right < members.length; right++) {
        const leftId = members[left] as MemberId;
        const rightId = members[right] as MemberId;
        comparePrefixes(leftId, disks.get(leftId) as SimDisk, rightId, disks.get(rightId) as SimDisk);
      }
    }
  }

  leaderTerms(): number {
    return this.leaderOfTerm.size;
  }

  committedCount(): number {
    return this.committed.size;
  }
}

function comparePrefixes(leftId: MemberId, left: SimDisk, rightId: MemberId, right: SimDisk): void {
  const leftEntries = left.durableEntries();
  const rightEntries = right.durableEntries();
  const leftFirst = leftEntries[0];
  const rightFirst = rightEntries[0];
  if (leftFirst === undefined || rightFirst === undefined) return;
  const low = Math.max(leftFirst.index, rightFirst.index);
  const high = Math.min(leftFirst.index + leftEntries.length, rightFirst.index + rightEntries.length) - 1;
  let highestAgreement = -1;
  for (let index = high; index >= low; index--) {
    if (left.durableTerm(index) === right.durableTerm(index)) {
      highestAgreement = index;
      break;
    }
  }
  for (let index = low; index <= highestAgreement; index++) {
    const leftEntry = left.durableEntry(index) as Entry;
    const rightEntry = right.durableEntry(index) as Entry;
    if (leftEntry.term !== rightEntry.term || entryText(leftEntry) !== entryText(rightEntry)) {
      throw new InvariantViolation(
        'log matching',
        `${leftId} and ${rightId} agree at index ${highestAgreement} but differ at ${index}: ${entryText(leftEntry)} vs ${entryText(rightEntry)}`,
      );
    }
  }
}
