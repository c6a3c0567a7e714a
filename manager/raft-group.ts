/**
 * This manager's membership in the Raft group: storage, the pure core, the driver, the transport
 * and the Raft-backed store, plus the Raft gRPC service (message streams, proposal forwarding,
 * joining). New managers join as learners and are promoted once caught up; `forceNewCluster`
 * turns a lone survivor into a one-member group that keeps every object.
 */
import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../common/log.js';
import type { RaftServer } from '../proto/skiff/v1/raft.js';
import { JoinResponse, RaftClient } from '../proto/skiff/v1/raft.js';
import { createRaftCore, defaultRaftConfig } from './raft/core/index.js';
import type { ConfState, LogIndex, MemberId, RaftCore, RaftInitialState, SoftState } from './raft/core/types.js';
import { RaftNode } from './raft/driver/raft-node.js';
import { RaftStorage } from './raft/storage/raft-storage.js';
import { GrpcTransport } from './raft/transport/grpc-transport.js';
import { peerIdentity } from '../pki/grpc-credentials.js';
import { toGrpcError } from './api/status-mapping.js';
import { RaftStoreBackend } from './store/raft-backend.js';
import { STORE_FORMAT } from './store/backend.js';

/** A voter counts as reachable for a membership change only if heard from this recently. */
export const MEMBERSHIP_REACHABLE_WINDOW_MS = 1_000;
/** How often the leader looks for learners to promote. */
const PROMOTION_CHECK_MS = 500;
/** A learner within this many entries of the leader's log counts as caught up. */
export const PROMOTION_MAX_LAG_ENTRIES = 50;
const JOIN_TIMEOUT_MS = 10_000;
/** How long a new manager keeps asking to join before it gives up and exits. */
export const JOIN_DEADLINE_MS = 60_000;
const JOIN_RETRY_MS = 300;
/**
 * How long start() waits for a leader: past two maximum election timeouts (2 x 20 ticks), so a
 * healthy group is writable when start() returns, while a manager without quorum still comes up.
 */
export const STARTUP_LEADER_WAIT_MS = 4_500;
const LEADER_POLL_MS = 20;

export interface RaftGroupOptions {
  dir: string;
  selfId: MemberId;
  selfAddr: string;
  selfName: string;
  clusterId: string;
  credentials: grpc.ChannelCredentials;
  channelOptions: grpc.ChannelOptions;
  /** A manager of the group to join, for a new manager; undefined bootstraps a new group. */
  join: string | undefined;
  /** More managers to try when `join` does not answer as the leader or with its address. */
  joinAlternatives?: readonly string[];
  forceNewCluster: boolean;
  onLeadership: (leader: boolean) => void;
  /** Records a joining manager's address durably (in the store) before it is told it joined. */
  onJoin: (member: MemberId, addr: string) => Promise<void>;
  /** Encrypts the WAL and snapshots at rest; undefined keeps a plaintext directory plaintext. */
  dataKey?: Buffer | undefined;
  log: Logger;
}

/** A seeded PRNG (mulberry32): the core's randomness, reproducible from the seed in logs. */
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class RaftGroup {
  readonly backend: RaftStoreBackend;
  readonly transport: GrpcTransport;
  private node: RaftNode | undefined;
  private core: RaftCore | undefined;
  private readonly storage: RaftStorage;
  private promotionTimer: NodeJS.Timeout | undefined;
  private isLeader = false;

  constructor(private readonly options: RaftGroupOptions) {
    this.storage = new RaftStorage(options.dir, options.dataKey === undefined ? {} : { dataKey: options.dataKey });
    this.transport = new GrpcTransport({
      selfId: options.selfId,
      clusterId: options.clusterId,
      credentials: options.credentials,
      channelOptions: options.channelOptions,
      deliver: (message) => this.node?.step(message),
      unreachable: (member) => {
        this.core?.reportUnreachable(member);
        this.node?.kick();
      },
      storeFormat: STORE_FORMAT,
      log: options.log,
    });
    this.backend = new RaftStoreBackend({
      core: () => this.requireCore(),
      kick: () => this.node?.kick(),
      addressOf: (member) => this.transport.addressOf(member),
      reachableVoters: () => this.requireCore().status().conf.voters.filter((voter) => this.transport.isReachable(voter, Date.now())).length,
      storeFormatOf: (member) => this.transport.storeFormatOf(member),
      credentials: options.credentials,
      channelOptions: options.channelOptions,
      selfName: options.selfName,
      log: options.log,
    });
  }

  /**
   * Opens storage and starts the node. Must run after the store has handed the backend its
   * sink (Store.start) — the snapshot and committed entries replay into it here.
   */
  async start(): Promise<void> {
    const bootstrap: ConfState = { voters: this.options.join === undefined ? [this.options.selfId] : [], learners: [] };
    const opened = await this.storage.open(bootstrap);
    const fresh = opened.fresh;
    const initial = this.options.forceNewCluster ? await this.forceSingleMember(opened.initial) : opened.initial;
    const seed = randomBytes(4).readUInt32LE(0);
    this.options.log.info('raft starting', { member: this.options.selfId, fresh, seed, snapshotIndex: initial.snapshot.meta.index, entries: initial.entries.length });
    const core = createRaftCore(defaultRaftConfig(this.options.selfId, mulberry32(seed)), initial);
    this.core = core;
    if (!this.options.forceNewCluster) this.backend.machine.restore(initial.snapshot.data);
    this.backend.onApplied(initial.snapshot.meta.index);
    this.node = new RaftNode(core, this.storage, this.backend.machine, this.transport, {
      onSoftState: (state) => this.softStateChanged(state),
      onApplied: (index) => this.backend.onApplied(index),
      onReadState: (requestId, index) => this.backend.onReadState(requestId, index),
    }, this.options.log.child({ component: 'raft' }), { snapshotIndex: initial.snapshot.meta.index, snapshotTerm: initial.snapshot.meta.term, entries: initial.entries });
    this.node.start();
    if (fresh && this.options.join !== undefined) await this.requestJoin(this.options.join);
    await this.backend.waitApplied(initial.hardState.commit);
    await this.waitForLeader(STARTUP_LEADER_WAIT_MS);
    this.promotionTimer = setInterval(() => this.promoteCaughtUpLearners(), PROMOTION_CHECK_MS);
  }

  /**
   * --force-new-cluster: the committed state of this manager becomes a one-member group.
   * Entries past the commit index were never acknowledged to anyone and are dropped; the new
   * membership is made durable as a snapshot at the commit index before the core starts.
   */
  private async forceSingleMember(initial: RaftInitialState): Promise<RaftInitialState> {
    const commit = initial.hardState.commit;
    this.backend.machine.restore(initial.snapshot.data);
    let term = initial.snapshot.meta.term;
    for (const entry of initial.entries) {
      if (entry.index > commit) break;
      if (entry.type === 'normal' && entry.data.length > 0) this.backend.machine.apply(entry);
      term = entry.term;
    }
    const snapshot = { meta: { index: commit, term, conf: { voters: [this.options.selfId], learners: [] } }, data: this.backend.machine.snapshot() };
    await this.storage.compact(snapshot, []);
    this.options.log.warn('forced a new one-member cluster from this manager\'s committed state', { commit, droppedUncommitted: initial.entries.filter((entry) => entry.index > commit).length });
    return { hardState: initial.hardState, snapshot, entries: [], applied: commit };
  }

  /** Resolves when a leader is known, or after `timeoutMs` regardless. */
  private async waitForLeader(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.backend.currentLeader === '' && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, LEADER_POLL_MS));
    }
  }

  async stop(): Promise<void> {
    if (this.promotionTimer !== undefined) clearInterval(this.promotionTimer);
    await this.node?.stop();
    this.transport.close();
    await this.backend.close();
    await this.storage.close();
  }

  get leaderId(): MemberId {
    return this.backend.currentLeader;
  }

  status() {
    return this.requireCore().status();
  }

  /**
   * Why removing `member` from the voters would lose quorum, or undefined when it would not:
   * the voters that remain must still have a reachable majority (the leader's view of who is
   * reachable). Only the leader can tell; elsewhere the answer is "ask the leader".
   */
  removalBlocker(member: MemberId): string | undefined {
    const status = this.requireCore().status();
    if (status.role !== 'leader') return 'this manager is not the leader; retry (the CLI tries every manager)';
    if (!status.conf.voters.includes(member)) return undefined;
    const remaining = status.conf.voters.filter((id) => id !== member);
    if (remaining.length === 0) return 'it is the last manager; the cluster would have none';
    // Strict: heard from within the last second, not merely "active" within an election timeout,
    // so a manager that just died does not count.
    const now = Date.now();
    const reachable = remaining.filter((id) => id === this.options.selfId || (status.progress.get(id)?.recentActive === true && this.transport.isReachable(id, now, MEMBERSHIP_REACHABLE_WINDOW_MS))).length;
    const quorum = Math.floor(remaining.length / 2) + 1;
    if (reachable < quorum) {
      return `the ${remaining.length} remaining managers would need ${quorum} reachable for a quorum, but only ${reachable} are reachable`;
    }
    return undefined;
  }

  /** Removes `member` from the group (leader only) and waits until the change is applied here. */
  async removeMember(member: MemberId, timeoutMs = 10_000): Promise<void> {
    if (!this.isMember(member)) return;
    const result = this.requireCore().proposeConfChange({ type: 'removeMember', member });
    this.node?.kick();
    if (!result.ok) throw new Error(`cannot remove manager ${member} from the raft group: ${result.reason}`);
    const deadline = Date.now() + timeoutMs;
    while (this.isMember(member)) {
      if (Date.now() > deadline) throw new Error(`cannot remove manager ${member} from the raft group: the change did not commit within ${timeoutMs} ms (no quorum?)`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    this.options.log.info('removed a manager from the raft group', { member });
  }

  /**
   * Hands leadership to the most caught-up other voter that is reachable, and waits (up to
   * `timeoutMs`) until this manager no longer leads. Throws when there is no such voter.
   */
  async transferLeadershipAway(timeoutMs = 5_000): Promise<string> {
    const status = this.requireCore().status();
    const now = Date.now();
    const candidates = status.conf.voters
      .filter((id) => id !== this.options.selfId && this.transport.isReachable(id, now, MEMBERSHIP_REACHABLE_WINDOW_MS))
      .sort((a, b) => (status.progress.get(b)?.match ?? 0) - (status.progress.get(a)?.match ?? 0));
    const target = candidates[0];
    if (target === undefined) throw new Error('no other reachable manager to take over leadership');
    const result = this.requireCore().transferLeadership(target);
    this.node?.kick();
    if (!result.ok) throw new Error(`cannot transfer leadership to ${target}: ${result.reason}`);
    const deadline = Date.now() + timeoutMs;
    while (this.isLeader) {
      if (Date.now() > deadline) throw new Error(`leadership did not move to ${target} within ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return target;
  }

  /** Whether this manager leads the group now. */
  get leading(): boolean {
    return this.isLeader;
  }

  /** Whether `member` is a voter or a learner of the group, as this manager knows it. */
  isMember(member: MemberId): boolean {
    if (this.core === undefined) return false;
    const conf = this.core.status().conf;
    return conf.voters.includes(member) || conf.learners.includes(member);
  }

  /** The Raft gRPC service's handlers. */
  handlers(): RaftServer {
    return {
      send: this.transport.sendHandler(),
      forwardProposal: (call, callback) => {
        // Only managers forward writes: a worker's or an admin's certificate may not write the
        // store through the Raft service.
        const identity = this.clusterManager(call);
        if (identity === undefined) {
          callback({ code: grpc.status.PERMISSION_DENIED, details: 'cannot accept a forwarded write: a manager certificate of this cluster is required' } as grpc.ServiceError);
          return;
        }
        if (!this.isLeader) {
          callback(toGrpcError(new Error('cannot accept a forwarded write: this manager is not the leader')));
          return;
        }
        this.backend.acceptForwarded(call.request.storeTransaction).then(
          (index) => callback(null, { index }),
          (error: unknown) => callback(toGrpcError(error)),
        );
      },
      readIndex: (call, callback) => {
        const identity = this.clusterManager(call);
        if (identity === undefined) {
          callback({ code: grpc.status.PERMISSION_DENIED, details: 'cannot confirm a read: a manager certificate of this cluster is required' } as grpc.ServiceError);
          return;
        }
        // A removed manager no longer receives entries: its reads could never catch up.
        if (!this.isMember(identity.nodeId as MemberId)) {
          callback({ code: grpc.status.FAILED_PRECONDITION, details: `cannot confirm a read for ${identity.nodeId}: it is not a member of the raft group (demoted or removed)` } as grpc.ServiceError);
          return;
        }
        if (!this.isLeader) {
          callback({ code: grpc.status.UNAVAILABLE, details: 'cannot confirm a read: this manager is not the leader' } as grpc.ServiceError);
          return;
        }
        this.backend.leaderReadIndex().then(
          (index) => callback(null, { index }),
          (error: unknown) => callback(toGrpcError(error)),
        );
      },
      join: (call, callback) => {
        this.acceptJoin(call.getPeer(), call.request.addr, call.request.storeFormat, call).then(
          (response) => callback(null, response),
          (error: unknown) => callback({ code: grpc.status.FAILED_PRECONDITION, details: error instanceof Error ? error.message : String(error) } as grpc.ServiceError),
        );
      },
    };
  }

  private softStateChanged(state: SoftState): void {
    this.backend.onSoftState(state);
    const leader = state.role === 'leader';
    if (leader !== this.isLeader) {
      this.isLeader = leader;
      this.options.log.info('raft leadership', { transition: `${leader ? 'follower -> leader' : 'leader -> follower'}`, leader: state.leader });
      this.options.onLeadership(leader);
    }
  }

  /** The caller's identity when it holds a manager certificate of this cluster, else undefined. */
  private clusterManager(call: grpc.ServerUnaryCall<unknown, unknown>): ReturnType<typeof peerIdentity> {
    const identity = peerIdentity(call);
    return identity?.role === 'manager' && identity.clusterId === this.options.clusterId ? identity : undefined;
  }

  /** The newest store log format every member reads: writers may already have used it. */
  private clusterStoreFormat(): number {
    for (let format = STORE_FORMAT; format > 0; format -= 1) if (this.backend.readsFormat(format)) return format;
    return 0;
  }

  private async acceptJoin(_peer: string, addr: string, joinerFormat: number, call: grpc.ServerUnaryCall<unknown, unknown>): Promise<JoinResponse> {
    const identity = this.clusterManager(call);
    if (identity === undefined) {
      throw new Error('cannot join: a manager certificate of this cluster is required');
    }
    if (!this.isLeader) throw new Error(notLeaderForJoin(this.options.selfName, this.leaderId === '' ? undefined : this.transport.addressOf(this.leaderId)));
    const refusal = joinFormatRefusal(joinerFormat, this.clusterStoreFormat(), addr);
    if (refusal !== undefined) throw new Error(refusal);
    const member = identity.nodeId as MemberId;
    this.transport.setAddress(member, addr);
    await this.options.onJoin(member, addr);
    const status = this.requireCore().status();
    if (!status.conf.voters.includes(member) && !status.conf.learners.includes(member)) {
      const result = this.requireCore().proposeConfChange({ type: 'addLearner', member });
      this.node?.kick();
      if (!result.ok) throw new Error(`cannot add ${member} as a learner: ${result.reason}`);
    }
    const members = [...status.conf.voters, ...status.conf.learners].map((id) => ({ id, addr: id === this.options.selfId ? this.options.selfAddr : (this.transport.addressOf(id) ?? '') }));
    return { members };
  }

  /**
   * Asks `addr` to add this manager as a learner, retrying until JOIN_DEADLINE_MS: managers of a
   * new cluster start together, and the one asked may not lead yet.
   */
  private async requestJoin(addr: string): Promise<void> {
    const deadline = Date.now() + JOIN_DEADLINE_MS;
    let targets = [...new Set([addr, ...(this.options.joinAlternatives ?? [])])];
    for (let attempt = 0; ; attempt += 1) {
      const target = targets[attempt % targets.length] ?? addr;
      const client = new RaftClient(target, this.options.credentials, this.options.channelOptions);
      try {
        const response = await new Promise<JoinResponse>((resolve, reject) => {
          client.join({ addr: this.options.selfAddr, storeFormat: STORE_FORMAT }, new grpc.Metadata(), { deadline: Date.now() + JOIN_TIMEOUT_MS }, (error, value) =>
            error === null ? resolve(value) : reject(new Error(`cannot join the cluster through ${target}: ${error.details || error.message}`)),
          );
        });
        for (const member of response.members) this.transport.setAddress(member.id as MemberId, member.addr);
        this.options.log.info('joined as a learner', { through: target, members: response.members.length });
        return;
      } catch (error) {
        // Another manager will not read this build's format any better: waiting cannot help.
        if (Date.now() > deadline || String(error).includes(JOIN_FORMAT_REFUSAL)) throw error;
        this.options.log.info('join not accepted yet; retrying', { through: target, error: String(error) });
        const leaderAddr = leaderAddressInJoinRefusal(String(error));
        if (leaderAddr !== undefined && !targets.includes(leaderAddr)) targets = [...targets, leaderAddr];
        await new Promise((resolve) => setTimeout(resolve, JOIN_RETRY_MS));
      } finally {
        client.close();
      }
    }
  }

  private promoteCaughtUpLearners(): void {
    if (!this.isLeader || this.core === undefined) return;
    const status = this.core.status();
    for (const learner of status.conf.learners) {
      const progress = status.progress.get(learner);
      if (progress === undefined || status.lastIndex - progress.match > PROMOTION_MAX_LAG_ENTRIES) continue;
      const result = this.core.proposeConfChange({ type: 'promoteLearner', member: learner });
      if (result.ok) this.options.log.info('promoting caught-up learner', { member: learner });
      this.node?.kick();
      return;
    }
  }

  private requireCore(): RaftCore {
    if (this.core === undefined) throw new Error('assertion failed: raft group not started');
    return this.core;
  }
}

export type { LogIndex };

const JOIN_FORMAT_REFUSAL = 'cannot join: this skiffd is older than the cluster';

/**
 * Why a joining manager that reads store log formats up to `joinerFormat` may not join a
 * cluster whose members all read `clusterFormat` (undefined when it may). Every member reading
 * a format is what lets writers use it, so such a cluster may hold entries the joiner cannot
 * apply: it would stop at the first one (exit 70). etcd refuses a member older than its cluster
 * version the same way.
 */
export function joinFormatRefusal(joinerFormat: number, clusterFormat: number, joinerAddr: string): string | undefined {
  if (joinerFormat >= clusterFormat) return undefined;
  return (
    `${JOIN_FORMAT_REFUSAL}: the manager at ${joinerAddr} reads store log format ${joinerFormat}, and every member of this cluster reads ` +
    `format ${clusterFormat}, in which it may already have written entries; upgrade skiffd on ${joinerAddr} to the version the other managers run, then join again`
  );
}

/** A non-leader's answer to a join: it names the leader's address, which the joiner tries next. */
export function notLeaderForJoin(selfName: string, leaderAddr: string | undefined): string {
  return `cannot join through ${selfName}: it is not the leader (leader: ${leaderAddr ?? 'none'})`;
}

/** The leader's ip:port in a refusal made by notLeaderForJoin (after gRPC's wrapping), if it names one. */
export function leaderAddressInJoinRefusal(text: string): string | undefined {
  return /leader: ([\w.-]+:\d+)\)/.exec(text)?.[1];
}
