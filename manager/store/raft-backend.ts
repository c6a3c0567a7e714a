/**
 * The store on Raft: one store transaction is one log entry, applied on every manager in log
 * order. A write on the leader commits through a quorum before it is acknowledged; a write on a
 * follower is forwarded to the leader, then acknowledged once this manager has applied it too
 * (so a client reads its own writes). Without a leader, writes fail at once with "no quorum".
 */
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../common/log.js';
import { StoreSnapshot, StoreTransaction } from '../../proto/skiff/v1/store.js';
import { ForwardProposalResponse, RaftClient, RaftProposal, ReadIndexResponse } from '../../proto/skiff/v1/raft.js';
import type { Entry, LogIndex, MemberId, RaftCore, SoftState } from '../raft/core/types.js';
import { type CommitSink, STORE_FORMAT, type StoreBackend } from './backend.js';
import { StoreError } from './errors.js';
import type { StoreCommit } from './tables.js';

/**
 * The largest store transaction one Raft entry carries, encoded. An entry travels whole in one
 * gRPC message between managers (and a follower forwards a proposal in one), whose limit is
 * MAX_GRPC_MESSAGE_BYTES (4 MiB): a larger entry could be committed by no one, and every
 * append carrying it would fail for good. The rest of the 4 MiB is left for the envelope.
 */
export const MAX_PROPOSAL_BYTES = 3 * 1024 * 1024;

/** How long a proposal may wait for its commit before the caller is told to retry. */
export const PROPOSAL_TIMEOUT_MS = 5_000;
/** How long a linearizable read may wait for the leader's confirmation and this manager's catch-up. */
export const READ_TIMEOUT_MS = 5_000;
/** Results kept per applied index, for forwarded proposals that ask after the fact. */
const MAX_REMEMBERED_RESULTS = 10_000;

export interface RaftStoreDeps {
  core: () => RaftCore;
  /** Schedules Ready processing after the core changed. */
  kick: () => void;
  /** The address of a member, for forwarding to the leader. */
  addressOf: (member: MemberId) => string | undefined;
  /** Voters heard from recently, including this manager. */
  reachableVoters: () => number;
  /** The store format a member last said it reads (its Raft messages carry it); undefined if not heard from. */
  storeFormatOf: (member: MemberId) => number | undefined;
  credentials: grpc.ChannelCredentials;
  channelOptions: grpc.ChannelOptions;
  selfName: string;
  log: Logger;
}

/** A read waiting for the index it may be served from. */
interface ReadWaiter {
  resolve: (index: number) => void;
  reject: (error: Error) => void;
}

/** The leader's ReadIndex round handed to the core, waiting for a majority's heartbeat acknowledgements. */
interface ReadRound {
  id: string;
  resolve: (index: number) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * Batches reads into rounds, one round in flight at a time (as etcd's read loop does): the reads
 * of one turn form a round; reads that arrive while a round is in flight wait for the next one,
 * which starts when the round in flight settles. A read never joins a round already started:
 * that round's confirmation may predate the read.
 */
export class ReadBatcher {
  private collecting: ReadWaiter[] | undefined;
  private inFlight = false;

  /** `round` obtains one index for a whole batch. */
  constructor(private readonly round: () => Promise<number>) {}

  next(): Promise<number> {
    return new Promise((resolve, reject) => {
      if (this.collecting === undefined) {
        this.collecting = [];
        if (!this.inFlight) queueMicrotask(() => this.flush());
      }
      this.collecting.push({ resolve, reject });
    });
  }

  private flush(): void {
    const batch = this.collecting;
    if (batch === undefined || this.inFlight) return;
    this.collecting = undefined;
    this.inFlight = true;
    let settled: Promise<number>;
    try {
      settled = this.round();
    } catch (error) {
      settled = Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    settled
      .then(
        (index) => {
          for (const waiter of batch) waiter.resolve(index);
        },
        (error: Error) => {
          for (const waiter of batch) waiter.reject(error);
        },
      )
      .finally(() => {
        this.inFlight = false;
        this.flush();
      });
  }
}

interface Pending {
  resolve: (commit: StoreCommit) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
  /** The log index the entry got on this manager (as leader): it commits there or nowhere. */
  index: LogIndex;
}

/** Applies committed entries to the store and matches them with the proposals waiting on them. */
export class RaftStoreBackend implements StoreBackend {
  private sink: CommitSink | undefined;
  private leader: MemberId = '' as MemberId;
  private readonly pending = new Map<string, Pending>();
  private readonly results = new Map<number, StoreCommit | Error>();
  private readonly appliedWaiters = new Map<number, Array<() => void>>();
  private appliedIndex = 0;
  private closed = false;
  private leaderClient: { addr: string; client: InstanceType<typeof RaftClient> } | undefined;
  /** The leader's ReadIndex round in flight (at most one: `leaderReads` batches the rest). */
  private readRound: ReadRound | undefined;
  private readSequence = 0;
  /** Reads on this manager as leader: one heartbeat round per batch. */
  private readonly leaderReads = new ReadBatcher(() => this.startReadRound());
  /** Reads on this manager as follower: one ReadIndex call to the leader per batch. */
  private readonly followerReads = new ReadBatcher(() => this.readIndexFromLeader());

  constructor(private readonly deps: RaftStoreDeps) {}

  /** The state machine's side; the Raft node calls these. */
  readonly machine = {
    apply: (entry: Entry): void => this.applyEntry(entry),
    restore: (data: Uint8Array): void => {
      // Only a manager that lost leadership can have proposals waiting here; the snapshot does
      // not say which entries it holds, so their outcome is unknown.
      this.rejectPending(() => true, 'cannot write: leadership moved while the write was in flight and this manager caught up from a snapshot; it may or may not have been applied: re-read before retrying');
      if (data.length > 0) this.requireSink().restoreSnapshot(StoreSnapshot.decode(data));
    },
    snapshot: (): Uint8Array => StoreSnapshot.encode(this.requireSink().takeSnapshot()).finish(),
  };

  async start(sink: CommitSink): Promise<void> {
    this.sink = sink;
  }

  onSoftState(state: SoftState): void {
    this.leader = state.leader;
    // The core drops its pending reads with leadership: they cannot be confirmed any more.
    if (state.role !== 'leader') this.rejectReads('cannot read: leadership moved while the read was being confirmed; retry');
  }

  /** The core confirmed a ReadIndex round (Ready.readStates): every read in it may be served from `index` on. */
  onReadState(requestId: string, index: LogIndex): void {
    const round = this.readRound;
    if (round?.id !== requestId) return;
    this.readRound = undefined;
    clearTimeout(round.timer);
    round.resolve(index);
  }

  /**
   * Resolves once this manager has applied every write committed before the call, so a read of
   * the store that follows is linearizable (Raft's ReadIndex: the leader confirms with a
   * majority that it still leads, and its commit index at the call is the read's index).
   * Rejects with 'unavailable' when there is no leader or no majority to confirm it: a manager
   * cut off from the others refuses to read rather than serve a stale store.
   */
  async readBarrier(): Promise<void> {
    if (this.closed) throw new StoreError('unavailable', 'cannot read: the manager is shutting down');
    if (this.leader === '') throw this.noQuorum('this manager sees no leader', 'read');
    const index = this.leader === this.deps.core().status().id ? await this.leaderReadIndex() : await this.followerReads.next();
    if (this.appliedIndex >= index) return;
    await this.waitApplied(index, READ_TIMEOUT_MS).catch(() => {
      throw new StoreError('unavailable', `cannot read: this manager did not catch up with the leader's commit index ${index} within ${READ_TIMEOUT_MS} ms (applied ${this.appliedIndex}); retry, or ask another manager`);
    });
  }

  /** On the leader: the commit index once a majority confirmed this manager still leads (batched, see ReadBatcher). */
  leaderReadIndex(): Promise<number> {
    return this.leaderReads.next();
  }

  /** Hands one ReadIndex round to the core; settles on its read state, a leadership move or the timeout. */
  private startReadRound(): Promise<number> {
    if (this.closed) return Promise.reject(new StoreError('unavailable', 'cannot read: the manager is shutting down'));
    const shortfall = this.quorumShortfall('read');
    if (shortfall !== undefined) return Promise.reject(shortfall);
    const id = `read-${(this.readSequence += 1)}`;
    const result = this.deps.core().readIndex(id);
    if (!result.ok) return Promise.reject(new StoreError('unavailable', 'cannot read: leadership moved; retry'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.readRound = undefined;
        reject(this.noQuorum(`a majority did not confirm the leader within ${READ_TIMEOUT_MS} ms`, 'read'));
      }, READ_TIMEOUT_MS);
      this.readRound = { id, resolve, reject, timer };
      this.deps.kick();
    });
  }

  private rejectReads(message: string): void {
    const round = this.readRound;
    if (round === undefined) return;
    this.readRound = undefined;
    clearTimeout(round.timer);
    round.reject(new StoreError('unavailable', message));
  }

  /** On a follower: the leader's read index, asked over the Raft service. */
  private async readIndexFromLeader(): Promise<number> {
    const client = this.leaderRaftClient('read');
    const response = await new Promise<ReadIndexResponse>((resolve, reject) => {
      client.readIndex({}, new grpc.Metadata(), { deadline: Date.now() + READ_TIMEOUT_MS }, (error, value) => {
        if (error === null) resolve(value);
        else reject(new StoreError('unavailable', `cannot read through the leader: ${error.details || error.message}`));
      });
    });
    return response.index;
  }

  onApplied(index: LogIndex): void {
    this.appliedIndex = index;
    // A proposal whose index is applied without its entry was overwritten by a newer leader's
    // log: it can never commit (nothing proposes it again), so the caller may safely retry.
    this.rejectPending((pending) => pending.index <= index, 'cannot write: leadership moved before the write was committed and the new leader wrote other entries in its place; it was not applied: retry');
    for (const [waitIndex, waiters] of this.appliedWaiters) {
      if (waitIndex > index) continue;
      this.appliedWaiters.delete(waitIndex);
      for (const wake of waiters) wake();
    }
  }

  get currentLeader(): MemberId {
    return this.leader;
  }

  isWritable(): boolean {
    return !this.closed && this.leader !== '';
  }

  /** Every member of the configuration, voters and learners, reads `format` (those unheard of count as not). */
  readsFormat(format: number): boolean {
    if (format > STORE_FORMAT) return false;
    const { conf, id } = this.deps.core().status();
    return [...conf.voters, ...conf.learners].every((member) => member === id || (this.deps.storeFormatOf(member) ?? 0) >= format);
  }

  async propose(transaction: StoreTransaction): Promise<StoreCommit> {
    if (this.closed) throw new StoreError('unavailable', 'cannot write: the manager is shutting down');
    const core = this.deps.core();
    if (this.leader === '') throw this.noQuorum('this manager sees no leader');
    // Encoded once: the same bytes go into the entry, or to the leader when forwarded.
    const bytes = StoreTransaction.encode(transaction).finish();
    checkProposalSize(bytes.length, transaction.actions.length);
    if (this.leader !== core.status().id) return this.forward(bytes);
    return this.proposeLocally(bytes);
  }

  /** Proposes an encoded transaction on this manager, which must be the leader; resolves when applied here. */
  proposeLocally(transactionBytes: Uint8Array): Promise<StoreCommit> {
    const shortfall = this.quorumShortfall('write');
    if (shortfall !== undefined) return Promise.reject(shortfall);
    const proposalId = randomUUID();
    const data = RaftProposal.encode({ proposalId, storeTransaction: transactionBytes }).finish();
    const result = this.deps.core().propose(data);
    if (!result.ok) {
      const reason = result.reason === 'not_leader' ? 'leadership moved' : result.message;
      return Promise.reject(new StoreError('unavailable', `cannot write: ${reason}; retry`));
    }
    this.deps.kick();
    const index = result.index;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(proposalId);
        reject(this.notCommittedInTime());
      }, PROPOSAL_TIMEOUT_MS);
      this.pending.set(proposalId, { resolve, reject, timer, index });
    });
  }

  /** A proposal's commit wait ran out: a quorum was not reached, or leadership moved meanwhile. */
  private notCommittedInTime(): StoreError {
    const self = this.deps.core().status().id;
    if (this.leader === self) return this.noQuorum(`the write was not committed within ${PROPOSAL_TIMEOUT_MS} ms`);
    const now = this.leader === '' ? 'no manager leads yet' : `manager ${this.deps.addressOf(this.leader) ?? this.leader} leads now`;
    return new StoreError(
      'unavailable',
      `cannot write: leadership moved while the write was in flight (${now}) and it was not committed within ${PROPOSAL_TIMEOUT_MS} ms; it may still be: re-read before retrying`,
    );
  }

  private rejectPending(matches: (pending: Pending) => boolean, message: string): void {
    for (const [id, pending] of this.pending) {
      if (!matches(pending)) continue;
      this.pending.delete(id);
      clearTimeout(pending.timer);
      pending.reject(new StoreError('unavailable', message));
    }
  }

  /** Handles a proposal forwarded by a follower: the log index it committed at. */
  async acceptForwarded(transactionBytes: Uint8Array): Promise<number> {
    // Checked again here: the follower that forwarded it may run an older skiffd.
    checkProposalSize(transactionBytes.length, undefined);
    const commit = await this.proposeLocally(transactionBytes);
    return commit.version;
  }

  /**
   * Resolves once this manager has applied `index`. With `timeoutMs`, rejects after that long
   * instead and forgets the waiter.
   */
  waitApplied(index: number, timeoutMs?: number): Promise<void> {
    if (this.appliedIndex >= index) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiters = this.appliedWaiters.get(index) ?? [];
      this.appliedWaiters.set(index, waiters);
      if (timeoutMs === undefined) {
        waiters.push(resolve);
        return;
      }
      const wake = (): void => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        const left = waiters.filter((waiter) => waiter !== wake);
        if (left.length === 0) this.appliedWaiters.delete(index);
        else this.appliedWaiters.set(index, left);
        reject(new Error(`index ${index} not applied within ${timeoutMs} ms`));
      }, timeoutMs);
      waiters.push(wake);
    });
  }

  /** How many indexes have callers waiting for them to be applied (for tests). */
  get appliedWaitCount(): number {
    return this.appliedWaiters.size;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.rejectPending(() => true, 'cannot write: the manager is shutting down');
    this.rejectReads('cannot read: the manager is shutting down');
    this.leaderClient?.client.close();
  }

  private applyEntry(entry: Entry): void {
    const proposal = RaftProposal.decode(entry.data);
    const result = this.requireSink().applyEntry(entry.index, StoreTransaction.decode(proposal.storeTransaction));
    this.results.set(entry.index, result);
    if (this.results.size > MAX_REMEMBERED_RESULTS) this.results.delete(this.results.keys().next().value as number);
    const pending = this.pending.get(proposal.proposalId);
    if (pending === undefined) return;
    this.pending.delete(proposal.proposalId);
    clearTimeout(pending.timer);
    if (result instanceof Error) pending.reject(result);
    else pending.resolve(result);
  }

  /** A Raft client to the current leader, kept while the leader stays. */
  private leaderRaftClient(verb: 'write' | 'read'): InstanceType<typeof RaftClient> {
    const addr = this.deps.addressOf(this.leader);
    if (addr === undefined) throw this.noQuorum(`the leader ${this.leader} has no known address`, verb);
    if (this.leaderClient?.addr !== addr) {
      this.leaderClient?.client.close();
      this.leaderClient = { addr, client: new RaftClient(addr, this.deps.credentials, this.deps.channelOptions) };
    }
    return this.leaderClient.client;
  }

  private async forward(transactionBytes: Uint8Array): Promise<StoreCommit> {
    const client = this.leaderRaftClient('write');
    const response = await new Promise<ForwardProposalResponse>((resolve, reject) => {
      client.forwardProposal(
        { storeTransaction: transactionBytes },
        new grpc.Metadata(),
        { deadline: Date.now() + PROPOSAL_TIMEOUT_MS + 1_000 },
        (error, value) => {
          if (error === null) resolve(value);
          else if (error.code === grpc.status.RESOURCE_EXHAUSTED) reject(new StoreError('too_large', error.details));
          else if (error.code === grpc.status.ALREADY_EXISTS || error.code === grpc.status.ABORTED || error.code === grpc.status.NOT_FOUND) {
            reject(new StoreError(error.code === grpc.status.ABORTED ? 'version_conflict' : error.code === grpc.status.NOT_FOUND ? 'not_found' : 'name_conflict', error.details));
          } else reject(new StoreError('unavailable', `cannot write through the leader: ${error.details || error.message}`));
        },
      );
    });
    await this.waitApplied(response.index);
    const result = this.results.get(response.index);
    if (result === undefined) throw new StoreError('unavailable', 'cannot confirm the write: this manager applied past it already; re-read');
    if (result instanceof Error) throw result;
    return result;
  }

  /** The refusal when this leader does not reach a majority of the voters, else undefined. */
  private quorumShortfall(verb: 'write' | 'read'): StoreError | undefined {
    const voters = this.deps.core().status().conf.voters.length;
    const reachable = this.deps.reachableVoters();
    return reachable * 2 <= voters ? this.noQuorum(`the leader reaches only ${reachable} of ${voters} managers`, verb) : undefined;
  }

  private noQuorum(detail: string, verb: 'write' | 'read' = 'write'): StoreError {
    return new StoreError(
      'unavailable',
      `cannot ${verb}: no quorum: ${detail} (manager ${this.deps.selfName}). A majority of managers must be up and connected; ` +
        'if they are gone for good, restart one surviving manager with --force-new-cluster',
    );
  }

  private requireSink(): CommitSink {
    if (this.sink === undefined) throw new Error('assertion failed: raft backend not started');
    return this.sink;
  }
}

/** Refuses a transaction too large for one Raft entry, naming its size and the limit. */
function checkProposalSize(bytes: number, actions: number | undefined): void {
  if (bytes <= MAX_PROPOSAL_BYTES) return;
  throw new StoreError(
    'too_large',
    `cannot write: the transaction is ${bytes} bytes${actions === undefined ? '' : ` (${actions} changes)`}, over the ${MAX_PROPOSAL_BYTES}-byte limit of one Raft entry; write fewer or smaller objects at a time`,
  );
}
