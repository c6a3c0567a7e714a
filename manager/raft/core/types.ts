/**
 * The public face of the pure Raft core (manager/raft/core): values in, values out. No I/O, no
 * timers, no wall clock, no Math.random: time is `tick()`, randomness is the `random` function
 * the caller passes in. The driver (manager/raft/driver) owns disk and network and must honour
 * the ordering documented on `Ready`.
 *
 * Modelled on etcd-io/raft: tick/step/propose/readIndex/ready/advance, pre-vote, check-quorum,
 * pipelined replication with flow control, snapshots with chunked streaming, learners and
 * one-at-a-time membership change, leadership transfer, ReadIndex.
 */

declare const brand: unique symbol;
type Brand<T, B extends string> = T & { readonly [brand]: B };

/** A Raft member's id: the manager's node id (its certificate CN). */
export type MemberId = Brand<string, 'MemberId'>;
export type Term = Brand<number, 'Term'>;
export type LogIndex = Brand<number, 'LogIndex'>;

export const NO_MEMBER = '' as MemberId;

export type EntryType = 'normal' | 'config';

/** One log entry. `config` entries carry an encoded ConfChange (see encodeConfChange). */
export interface Entry {
  term: Term;
  index: LogIndex;
  type: EntryType;
  data: Uint8Array;
}

/** What must be durable before any message of the same Ready is sent. */
export interface HardState {
  term: Term;
  vote: MemberId;
  commit: LogIndex;
}

/** The membership: voters decide; learners only receive the log. */
export interface ConfState {
  voters: MemberId[];
  learners: MemberId[];
}

/** One membership change; applied when its entry commits. Only one may be pending at a time. */
export type ConfChange =
  | { type: 'addLearner'; member: MemberId }
  | { type: 'promoteLearner'; member: MemberId }
  | { type: 'removeMember'; member: MemberId };

export interface SnapshotMeta {
  index: LogIndex;
  term: Term;
  conf: ConfState;
}

export interface Snapshot {
  meta: SnapshotMeta;
  data: Uint8Array;
}

export type Role = 'follower' | 'preCandidate' | 'candidate' | 'leader';

interface Envelope {
  from: MemberId;
  to: MemberId;
  term: Term;
}

/** Messages between members. The driver delivers them as-is; the core tolerates loss, delay, duplication and reordering. */
export type Message =
  | (Envelope & { type: 'preVote' | 'vote'; lastLogIndex: LogIndex; lastLogTerm: Term; /** set by a leadership transfer: bypasses leader stickiness */ transfer: boolean })
  | (Envelope & { type: 'preVoteResponse' | 'voteResponse'; reject: boolean })
  | (Envelope & { type: 'append'; prevLogIndex: LogIndex; prevLogTerm: Term; entries: Entry[]; commit: LogIndex })
  | (Envelope & { type: 'appendResponse'; reject: boolean; /** accepted: last index matched; rejected: the follower's hint for the next probe */ index: LogIndex;
      /** rejected: the follower's term at `index`, so the leader can skip a whole term per probe (etcd's LogTerm); absent otherwise. Codecs must carry it when present. */ logTerm?: Term })
  | (Envelope & { type: 'heartbeat'; commit: LogIndex; /** ReadIndex round id, '' when none */ context: string })
  | (Envelope & { type: 'heartbeatResponse'; context: string })
  | (Envelope & { type: 'snapshotChunk'; meta: SnapshotMeta; offset: number; data: Uint8Array; last: boolean })
  | (Envelope & { type: 'snapshotResponse'; reject: boolean; /** bytes received so far, for resuming */ offset: number; index: LogIndex })
  | (Envelope & { type: 'timeoutNow' });

/** A linearizable read that may be served once the local state machine has applied `index`. */
export interface ReadState {
  requestId: string;
  index: LogIndex;
}

export interface SoftState {
  leader: MemberId;
  role: Role;
}

/**
 * Work for the driver. Ordering, which the driver must honour:
 * 1. persist `snapshot` (if any), then `entries` (replacing any conflicting suffix), then
 *    `hardState` (if any) — all durable (fsync), and entries with hard state as ONE atomic
 *    record: a crash between two records could leave entries newer than the stored term,
 *    which the core refuses at start (manager/raft/storage writes one record per Ready) —
 *    and Readies are persisted in the order they were taken;
 * 2. send `messages` that promise something about this member's disk (acknowledgements,
 *    votes: everything but a leader's append, heartbeat, snapshotChunk and timeoutNow) only
 *    after step 1; a leader's replication traffic may go before or during it (Raft thesis
 *    §10.2.1: the leader counts its own entries toward commit only once `advance` says they
 *    are durable, as etcd-raft's asynchronous storage does);
 * 3. apply `committedEntries` in order (installing `snapshot` into the state machine first).
 *    They are committed, so a quorum holds them durably, and they may be applied (and
 *    answered) before this Ready is persisted here;
 * 4. call `advance(ready)` once step 1 is done, Readies in order. The driver may take the next
 *    Ready before that (one write in flight while the next Ready is sent and applied).
 */
export interface Ready {
  softState: SoftState | undefined;
  hardState: HardState | undefined;
  entries: Entry[];
  snapshot: Snapshot | undefined;
  messages: Message[];
  committedEntries: Entry[];
  readStates: ReadState[];
}

export type ProposeResult =
  | { ok: true; index: LogIndex; term: Term }
  | { ok: false; reason: 'not_leader'; leader: MemberId }
  | { ok: false; reason: 'transfer_in_progress' | 'conf_change_pending' | 'too_many_uncommitted' | 'invalid_conf_change'; message: string };

export interface RaftConfig {
  id: MemberId;
  /** Ticks without a leader before a follower campaigns; randomized in [electionTicks, 2*electionTicks). Default 10. */
  electionTicks: number;
  /** Ticks between leader heartbeats. Default 1. */
  heartbeatTicks: number;
  /** Deterministic randomness in [0, 1), e.g. a seeded PRNG. */
  random: () => number;
  preVote: boolean;
  checkQuorum: boolean;
  /** Append messages in flight per follower at most (pipelining window). */
  maxInflightMessages: number;
  /** Bytes of entry data per append message at most (batching). */
  maxMessageBytes: number;
  /** Uncommitted entry bytes a leader accepts before refusing proposals. */
  maxUncommittedBytes: number;
  /** Snapshot bytes per chunk message. */
  snapshotChunkBytes: number;
}

/** What the member recovered from its own disk at start. */
export interface RaftInitialState {
  hardState: HardState;
  /** The newest snapshot on disk, or one with index 0 and the bootstrap conf. */
  snapshot: Snapshot;
  /** Entries after the snapshot, in order. */
  entries: Entry[];
  /** Index of the last entry already applied to the state machine (>= snapshot index). */
  applied: LogIndex;
}

export interface ProgressStatus {
  match: LogIndex;
  next: LogIndex;
  state: 'probe' | 'replicate' | 'snapshot';
  recentActive: boolean;
  learner: boolean;
}

export interface RaftStatus {
  id: MemberId;
  term: Term;
  role: Role;
  leader: MemberId;
  commit: LogIndex;
  applied: LogIndex;
  lastIndex: LogIndex;
  conf: ConfState;
  /** Leader only: per-member replication progress. */
  progress: Map<MemberId, ProgressStatus>;
}

/** The pure core. Every method is synchronous and deterministic given the same inputs. */
export interface RaftCore {
  tick(): void;
  step(message: Message): void;
  propose(data: Uint8Array): ProposeResult;
  proposeConfChange(change: ConfChange): ProposeResult;
  /** Starts a linearizable read; its ReadState appears in a later Ready (leader only; else not_leader). */
  readIndex(requestId: string): { ok: true } | { ok: false; reason: 'not_leader'; leader: MemberId };
  /** Asks the leader to hand leadership to `to` (a caught-up voter). */
  transferLeadership(to: MemberId): { ok: true } | { ok: false; reason: string };
  /** The application took a snapshot of its state at `index`; the core may drop entries up to it and will stream it to lagging followers. */
  compact(index: LogIndex, data: Uint8Array): void;
  /** The driver could not reach `member` (lets the leader move it back to probing). */
  reportUnreachable(member: MemberId): void;
  hasReady(): boolean;
  ready(): Ready;
  advance(ready: Ready): void;
  status(): RaftStatus;
}
