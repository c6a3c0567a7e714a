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
import { ForwardProposalResponse, RaftClient, RaftProposal } from '../../proto/skiff/v1/raft.js';
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
    const voters = this.deps.core().status().conf.voters.length;
    if (this.deps.reachableVoters() * 2 <= voters) {
      return Promise.reject(this.noQuorum(`the leader reaches only ${this.deps.reachableVoters()} of ${voters} managers`));
    }
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

  /** Resolves once this manager has applied `index`. */
  waitApplied(index: number): Promise<void> {
    if (this.appliedIndex >= index) return Promise.resolve();
    return new Promise((resolve) => {
      const waiters = this.appliedWaiters.get(index) ?? [];
      waiters.push(resolve);
      this.appliedWaiters.set(index, waiters);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.rejectPending(() => true, 'cannot write: the manager is shutting down');
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

  private async forward(transactionBytes: Uint8Array): Promise<StoreCommit> {
    const addr = this.deps.addressOf(this.leader);
    if (addr === undefined) throw this.noQuorum(`the leader ${this.leader} has no known address`);
    if (this.leaderClient?.addr !== addr) {
      this.leaderClient?.client.close();
      this.leaderClient = { addr, client: new RaftClient(addr, this.deps.credentials, this.deps.channelOptions) };
    }
    const client = this.leaderClient.client;
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

  private noQuorum(detail: string): StoreError {
    return new StoreError(
      'unavailable',
      `cannot write: no quorum: ${detail} (manager ${this.deps.selfName}). A majority of managers must be up and connected; ` +
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
