/**
 * The state of one Raft member and the transitions every role shares: term and vote, role
 * changes (etcd's become*), the membership as of the commit index, appending on the leader,
 * and moving the commit index (which applies committed membership changes).
 *
 * The role-specific step functions live in election.ts, follower.ts and replication.ts; raft.ts
 * dispatches to them. Only those modules mutate a RaftNode.
 */
import { applyConfChange, decodeConfChange, isMember, isVoter } from './conf-change.js';
import { asIndex, asTerm, assert } from './invariant.js';
import { Progress } from './progress.js';
import { RaftLog } from './raft-log.js';
import { ReadOnly } from './read-only.js';
import { NO_MEMBER } from './types.js';
import type {
  ConfState, Entry, EntryType, LogIndex, MemberId, Message, RaftConfig, RaftInitialState, ReadState, Role, Snapshot,
  SnapshotMeta, Term,
} from './types.js';

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
/** A message without its envelope; `send` adds from, to and term. */
export type MessageBody = DistributiveOmit<Message, 'from' | 'to' | 'term'>;

/** A snapshot being received from the leader in chunks. */
export interface IncomingSnapshot {
  meta: SnapshotMeta;
  chunks: Uint8Array[];
  received: number;
}

export class RaftNode {
  readonly id: MemberId;
  readonly config: RaftConfig;
  readonly log: RaftLog;
  term: Term;
  vote: MemberId;
  leader: MemberId = NO_MEMBER;
  role: Role = 'follower';
  /** The membership as of the commit index. */
  conf: ConfState;
  /** Config entries up to this index are reflected in `conf`. */
  private confIndex: LogIndex;

  /** Leader only: replication progress of every member, the leader included. */
  progress = new Map<MemberId, Progress>();
  /** (Pre-)candidate only: votes received, by voter. */
  votes = new Map<MemberId, boolean>();
  electionElapsed = 0;
  heartbeatElapsed = 0;
  randomizedElectionTicks = 0;
  /** Leader only: the member leadership is being handed to, or NO_MEMBER. */
  transferee: MemberId = NO_MEMBER;
  /** Leader only: no conf change may be proposed while the commit index is below this. */
  pendingConfIndex: LogIndex = asIndex(0);
  /** Leader only: bytes of entries proposed in this term and not yet committed. */
  uncommittedBytes = 0;
  /** Leader only: reads waiting for a heartbeat quorum. */
  readonly readOnly = new ReadOnly();
  /** Leader only: reads that arrived before the first commit of this term. */
  readsBeforeFirstCommit: string[] = [];
  /** Follower only: the snapshot being received in chunks. */
  incomingSnapshot: IncomingSnapshot | undefined = undefined;

  /** Outputs awaiting the next Ready. */
  messages: Message[] = [];
  readStates: ReadState[] = [];

  constructor(config: RaftConfig, initial: RaftInitialState) {
    validateConfig(config);
    this.id = config.id;
    this.config = config;
    const { hardState, snapshot } = initial;
    this.log = new RaftLog(snapshot, initial.entries, hardState.commit, initial.applied);
    assert(hardState.term >= snapshot.meta.term, () => `recovered term ${hardState.term} is below the snapshot's ${snapshot.meta.term}`);
    assert(hardState.term >= this.log.lastTerm(), () => `recovered term ${hardState.term} is below the last entry's ${this.log.lastTerm()}`);
    this.term = hardState.term;
    this.vote = hardState.vote;
    this.conf = snapshot.meta.conf;
    this.confIndex = snapshot.meta.index;
    this.applyCommittedConfChanges();
    this.resetElectionTimer();
  }

  // ----- output -----

  send(to: MemberId, body: MessageBody, term: Term = this.term): void {
    assert(to !== this.id, () => `${this.id} must not send ${body.type} to itself`);
    this.messages.push({ ...body, from: this.id, to, term } as Message);
  }

  // ----- queries -----

  /** May this member campaign? Only voters may (learners and removed members never do). */
  promotable(): boolean {
    return isVoter(this.conf, this.id);
  }

  /** Check-quorum lease: we heard from a leader within the election timeout (etcd's inLease). */
  inLeaderLease(): boolean {
    return this.config.checkQuorum && this.leader !== NO_MEMBER && this.electionElapsed < this.config.electionTicks;
  }

  /**
   * A member that joined with no configuration (no voters known) and an empty log: it must get
   * the leader's snapshot, even an index-0 one, because the bootstrap configuration lives only in
   * snapshots, never in log entries.
   */
  needsBaseSnapshot(): boolean {
    return this.conf.voters.length === 0 && this.log.snapshotMeta().index === 0;
  }

  /** Whether the commit index already covers an entry of the current term. */
  committedInCurrentTerm(): boolean {
    return this.log.term(this.log.committed) === this.term;
  }

  mustProgress(member: MemberId): Progress {
    const progress = this.progress.get(member);
    assert(progress !== undefined, () => `no progress for ${member}`);
    return progress;
  }

  /** The membership as of `index` (snapshot index <= index <= commit), for snapshot metadata. */
  confAt(index: LogIndex): ConfState {
    const meta = this.log.snapshotMeta();
    assert(index >= meta.index && index <= this.log.committed, () => `conf at ${index} is outside [${meta.index}, ${this.log.committed}]`);
    let conf = meta.conf;
    for (let at = meta.index + 1; at <= index; at++) {
      const entry = this.log.entryAt(asIndex(at));
      if (entry.type === 'config') {
        conf = applyConfChange(conf, decodeConfChange(entry.data));
      }
    }
    return conf;
  }

  // ----- role transitions -----

  resetElectionTimer(): void {
    this.electionElapsed = 0;
    const electionTicks = this.config.electionTicks;
    const draw = this.config.random();
    assert(draw >= 0 && draw < 1, () => `config.random() returned ${draw}, outside [0, 1)`);
    this.randomizedElectionTicks = electionTicks + Math.floor(draw * electionTicks);
  }

  private reset(term: Term): void {
    if (term !== this.term) {
      assert(term > this.term, () => `term must not go back from ${this.term} to ${term}`);
      this.term = term;
      this.vote = NO_MEMBER;
      this.incomingSnapshot = undefined;
    }
    this.leader = NO_MEMBER;
    this.resetElectionTimer();
    this.heartbeatElapsed = 0;
    this.transferee = NO_MEMBER;
    this.votes.clear();
    this.progress.clear();
    this.pendingConfIndex = asIndex(0);
    this.uncommittedBytes = 0;
    this.readOnly.clear();
    this.readsBeforeFirstCommit = [];
  }

  becomeFollower(term: Term, leader: MemberId): void {
    this.reset(term);
    this.leader = leader;
    this.role = 'follower';
  }

  becomePreCandidate(): void {
    assert(this.role !== 'leader', 'a leader cannot become a pre-candidate');
    // Term and vote stay: a pre-vote changes nothing durable, so a partitioned member that keeps
    // failing pre-votes does not inflate its term.
    this.votes.clear();
    this.leader = NO_MEMBER;
    this.resetElectionTimer();
    this.role = 'preCandidate';
  }

  becomeCandidate(): void {
    assert(this.role !== 'leader', 'a leader cannot become a candidate');
    this.reset(asTerm(this.term + 1));
    this.vote = this.id;
    this.role = 'candidate';
  }

  /** Wins the election: tracks every member's progress and appends an empty entry of the new term. */
  becomeLeader(): void {
    assert(this.role === 'candidate', () => `only a candidate can become leader, not a ${this.role}`);
    this.reset(this.term);
    this.leader = this.id;
    this.role = 'leader';
    this.syncProgressWithConf();
    const self = this.mustProgress(this.id);
    // Only what is durable here counts toward commit; the rest counts when `advance` reports it.
    self.match = this.log.persisted;
    self.becomeReplicate();
    self.recentActive = true;
    // Figure 8: entries of older terms only commit through an entry of ours.
    const empty = this.appendLocal('normal', new Uint8Array(0));
    // No conf change until that entry commits: then everything an older leader may have
    // proposed is settled (etcd waits for its log at election; the dissertation's fix for
    // single-server changes waits for the new term's first commit, which implies it).
    this.pendingConfIndex = empty.index;
  }

  /** Leader: the progress map follows the configuration (new members probe from our log's end). */
  syncProgressWithConf(): void {
    const members = [...this.conf.voters, ...this.conf.learners];
    for (const member of members) {
      const learner = !isVoter(this.conf, member);
      const existing = this.progress.get(member);
      if (existing === undefined) {
        this.progress.set(member, new Progress(member, asIndex(this.log.lastIndex() + 1), learner, this.config.maxInflightMessages));
      } else {
        existing.learner = learner;
      }
    }
    for (const member of this.progress.keys()) {
      if (!isMember(this.conf, member) && member !== this.id) {
        this.progress.delete(member);
      }
    }
    if (this.transferee !== NO_MEMBER && !isVoter(this.conf, this.transferee)) {
      this.transferee = NO_MEMBER;
    }
  }

  // ----- the log -----

  /**
   * Leader: appends one entry of the current term. Our own copy counts toward commit only once
   * the driver reports it durable (core.advance -> persisted): a commit must never rest on an
   * entry still on its way to our disk, which lets the driver send and apply while it writes.
   */
  appendLocal(type: EntryType, data: Uint8Array): Entry {
    assert(this.role === 'leader', 'only the leader appends its own entries');
    const entry: Entry = { term: this.term, index: asIndex(this.log.lastIndex() + 1), type, data };
    this.log.append([entry]);
    this.uncommittedBytes += data.length;
    return entry;
  }

  /** Moves the commit index to `index` and applies the membership changes committed with it. */
  commitTo(index: LogIndex): boolean {
    const previous = this.log.committed;
    if (!this.log.commitTo(index)) {
      return false;
    }
    if (this.role === 'leader') {
      for (let at = previous + 1; at <= index; at++) {
        const entry = this.log.entryAt(asIndex(at));
        if (entry.term === this.term) {
          this.uncommittedBytes = Math.max(0, this.uncommittedBytes - entry.data.length);
        }
      }
    }
    this.applyCommittedConfChanges();
    return true;
  }

  private applyCommittedConfChanges(): void {
    const committed = this.log.committed;
    if (this.confIndex >= committed) {
      return;
    }
    let changed = false;
    for (let at = this.confIndex + 1; at <= committed; at++) {
      const entry = this.log.entryAt(asIndex(at));
      if (entry.type === 'config') {
        this.conf = applyConfChange(this.conf, decodeConfChange(entry.data));
        changed = true;
      }
    }
    this.confIndex = committed;
    if (changed && this.role === 'leader') {
      this.syncProgressWithConf();
    }
  }

  /** Follower: replaces the log with a snapshot from the leader (the next Ready returns it). */
  installSnapshot(snapshot: Snapshot): void {
    this.log.restore(snapshot);
    this.conf = snapshot.meta.conf;
    this.confIndex = snapshot.meta.index;
  }
}

function validateConfig(config: RaftConfig): void {
  const positive: (keyof RaftConfig)[] = [
    'electionTicks', 'heartbeatTicks', 'maxInflightMessages', 'maxMessageBytes', 'maxUncommittedBytes', 'snapshotChunkBytes',
  ];
  for (const key of positive) {
    const value = config[key];
    assert(typeof value === 'number' && Number.isInteger(value) && value > 0, () => `config.${key} must be a positive integer, got ${String(value)}`);
  }
  assert(config.heartbeatTicks < config.electionTicks, () =>
    `config.heartbeatTicks (${config.heartbeatTicks}) must be below config.electionTicks (${config.electionTicks})`);
  assert(config.id !== NO_MEMBER, 'config.id must not be empty');
}
