/**
 * One simulated manager: a pure RaftCore, its simulated disk and the KV state machine, driven by
 * the same loop a real driver runs. The loop honours the Ready contract (types.ts):
 * send the leader's replication traffic -> persist (snapshot, entries, hard state; one fsync)
 * -> send the rest -> apply -> advance.
 *
 * A crash drops the core and all volatile state; `start` rebuilds everything from the disk: the
 * core from RaftInitialState, the state machine from the snapshot (the core then hands back the
 * committed entries after it). The steps a buggy driver would get wrong (`persist`, answering a
 * write, serving a read) are protected methods, so the buggy-*.ts fakes can override exactly one.
 */

import { coalesceAppends, mayPrecedePersist } from '../../manager/raft/driver/ready-messages.js';
import type { ConfChange, Entry, LogIndex, MemberId, Message, RaftConfig, RaftCore, RaftInitialState, RaftStatus, Ready, Role } from '../../manager/raft/core/types.js';
import type { ClientReply, ClientReplyBody, ClientRequest } from './client-protocol.js';
import type { EventLog } from './event-log.js';
import { InvariantViolation, type SafetyChecker } from './invariants.js';
import { encodeCommand, KvStateMachine } from './kv-state-machine.js';
import type { Prng } from './prng.js';
import { SimDisk, type DurableImage } from './sim-disk.js';

/** Ready rounds one member may need after one tick; more means the core never settles (a livelock). */
export const MAX_READY_ROUNDS_PER_TICK = 64;
/** How often a member's last write of a round is still in flight when the round ends. */
export const SLOW_WRITE_PROBABILITY = 0.3;
/**
 * How often a member with a write in flight waits for it instead of taking its next Ready, in a
 * round: a disk slower than the network, so a leader hears acknowledgements for entries it has
 * not made durable yet (the window a leader counting its own entries early would commit in).
 */
export const SLOW_DISK_WAIT_PROBABILITY = 0.2;
/** Client requests a member holds while waiting for commit or a read index. */
export const MAX_PENDING_REQUESTS_PER_MEMBER = 64;
/** Ticks a member keeps a pending request before forgetting it (the client has timed out by then). */
export const PENDING_REQUEST_TTL_TICKS = 60;

/** How the simulator builds cores: the real one, or a wrapper around it. */
export interface CoreFactory {
  create(config: RaftConfig, initial: RaftInitialState): RaftCore;
  defaultConfig(id: MemberId, random: () => number): RaftConfig;
  decodeConfChange(data: Uint8Array): ConfChange;
}

/** What a member needs from the world around it. */
export interface MemberEnvironment {
  now(): number;
  readonly events: EventLog;
  readonly safety: SafetyChecker;
  readonly cores: CoreFactory;
  /** Seed-specific settings on top of the core's defaults. */
  configure(config: RaftConfig): RaftConfig;
  send(message: Message): void;
  reply(reply: ClientReply): void;
  /** Fault point (BUGGIFY): true crashes the member between writing and fsyncing a Ready. */
  crashBeforeFsync(member: MemberId): boolean;
  readonly tornWriteProbability: number;
  /** A membership change entry was applied here (so it is committed). */
  onConfChangeApplied(change: ConfChange): void;
}

interface PendingRequest {
  request: ClientRequest;
  expiresAtTick: number;
  /** Reads: the index to wait for, once the core has confirmed leadership. */
  readIndex: LogIndex | undefined;
}

export class SimMember {
  readonly disk: SimDisk;
  protected core: RaftCore | undefined;
  protected machine: KvStateMachine | undefined;
  protected readonly pendingWrites = new Map<string, PendingRequest>();
  protected readonly pendingReads = new Map<string, PendingRequest>();
  private role: Role = 'follower';
  /** The commit index as of the last durable Ready. */
  private lastCommit = 0;
  /** The commit index as of the last Ready handed out (what may be applied). */
  private knownCommit = 0;
  /** The Ready being written: taken, sent early and applied, not yet durable nor advanced. */
  private inflight: { ready: Ready; late: Message[]; term: RaftStatus['term']; advanced: boolean } | undefined;
  /** When writes complete; its own stream, so disk timing does not shift the core's randomness. */
  private readonly diskTiming: Prng;
  private readCounter = 0;
  incarnation = 0;

  constructor(
    readonly id: MemberId,
    protected readonly env: MemberEnvironment,
    protected readonly random: Prng,
    bootstrap: DurableImage,
  ) {
    this.disk = new SimDisk(bootstrap);
    this.diskTiming = random.fork('disk-timing');
  }

  get isUp(): boolean {
    return this.core !== undefined;
  }

  /** Starts (or restarts) from what the disk holds. */
  start(): void {
    const image = this.disk.recover();
    const snapshot = image.snapshot;
    this.machine =
      snapshot.data.length === 0
        ? new KvStateMachine((data) => this.env.cores.decodeConfChange(data), { applied: snapshot.meta.index, conf: snapshot.meta.conf })
        : KvStateMachine.restore((data) => this.env.cores.decodeConfChange(data), snapshot.data);
    const initial: RaftInitialState = { hardState: image.hardState, snapshot, entries: image.entries, applied: snapshot.meta.index };
    const config = this.env.configure(this.env.cores.defaultConfig(this.id, this.random.fork(`core-${this.incarnation}`).asFunction()));
    this.core = this.env.cores.create(config, initial);
    this.role = 'follower';
    this.lastCommit = image.hardState.commit;
    this.knownCommit = image.hardState.commit;
    this.incarnation++;
    this.record(`start #${this.incarnation}: term ${image.hardState.term}, commit ${image.hardState.commit}, snapshot ${snapshot.meta.index}, ${image.entries.length} entries`);
  }

  /** Power loss: volatile state is gone and the disk keeps only what was fsynced (maybe a torn tail). */
  crash(reason: string): void {
    const diskNote = this.disk.crash(this.random, this.env.tornWriteProbability);
    this.core = undefined;
    this.machine = undefined;
    this.inflight = undefined;
    this.pendingWrites.clear();
    this.pendingReads.clear();
    this.record(`crash (${reason}); ${diskNote}`);
  }

  tick(): void {
    this.core?.tick();
    const now = this.env.now();
    for (const pending of [this.pendingWrites, this.pendingReads]) {
      for (const [key, request] of pending) if (request.expiresAtTick <= now) pending.delete(key);
    }
  }

  receive(message: Message): void {
    this.core?.step(message);
  }

  status(): RaftStatus | undefined {
    return this.core?.status();
  }

  /** The core, for the world's nemesis (leadership transfer) and for wrappers. Undefined when down. */
  raft(): RaftCore | undefined {
    return this.core;
  }

  stateMachine(): KvStateMachine | undefined {
    return this.machine;
  }

  /** A client request arrived. Writes are proposed; reads go through ReadIndex. */
  request(request: ClientRequest): void {
    const core = this.core;
    if (core === undefined) return;
    if (this.pendingWrites.size + this.pendingReads.size >= MAX_PENDING_REQUESTS_PER_MEMBER) {
      this.answer(request, { kind: 'unavailable', reason: 'too many pending requests' });
      return;
    }
    const input = request.input;
    if (input.kind === 'get') {
      this.startRead(request);
      return;
    }
    const result = core.propose(encodeCommand({ clientId: request.clientId, sequence: request.sequence, input }));
    if (!result.ok) {
      this.answer(request, result.reason === 'not_leader' ? { kind: 'not_leader', leader: result.leader } : { kind: 'unavailable', reason: result.reason });
      return;
    }
    this.onProposed(request);
  }

  /** A write was appended to the leader's log: answer once it is applied (see applyCommitted). */
  protected onProposed(request: ClientRequest): void {
    this.pendingWrites.set(requestKey(request), { request, expiresAtTick: this.env.now() + PENDING_REQUEST_TTL_TICKS, readIndex: undefined });
  }

  /** A linearizable read: ask the core for a read index, serve once it is applied. */
  protected startRead(request: ClientRequest): void {
    const requestId = `${requestKey(request)}#${this.readCounter++}`;
    const result = (this.core as RaftCore).readIndex(requestId);
    if (!result.ok) {
      this.answer(request, { kind: 'not_leader', leader: result.leader });
      return;
    }
    this.pendingReads.set(requestId, { request, expiresAtTick: this.env.now() + PENDING_REQUEST_TTL_TICKS, readIndex: undefined });
  }

  /** Takes the application snapshot at the applied index when the log has grown by `thresholdEntries`. */
  maybeCompact(thresholdEntries: number): void {
    const core = this.core;
    const machine = this.machine;
    // As the driver: a snapshot needs the machine and the core at the same applied index, and the disk idle.
    if (core === undefined || machine === undefined || this.inflight !== undefined) return;
    const index = machine.applied;
    if (index - this.disk.durableSnapshotIndex() < thresholdEntries) return;
    const term = this.disk.durableTerm(index);
    if (term === undefined) return;
    const data = machine.snapshot();
    // Ordering: the snapshot file is durable before the core may drop the entries it covers.
    this.disk.saveApplicationSnapshot({ meta: { index, term: term as RaftStatus['term'], conf: machine.conf }, data });
    core.compact(index, data);
    this.record(`compact at ${index} (term ${term})`);
  }

  /**
   * Runs Ready rounds until the core has nothing more to say, as the driver
   * (manager/raft/driver/raft-node.ts) does: for each Ready, send the leader's replication
   * traffic and apply the committed entries at once, then write it once the previous Ready's
   * write is done; what promises something about the disk (acknowledgements, votes) goes out
   * after the write, and only then does the core hear of it (advance). The last write of a
   * round is sometimes left in flight until the member's next round, so messages, ticks,
   * proposals and crashes land while it is on its way to the disk.
   */
  processReady(): void {
    for (let round = 0; this.core !== undefined; round++) {
      if (round >= MAX_READY_ROUNDS_PER_TICK) throw new InvariantViolation('liveness', `${this.id} produced more than ${MAX_READY_ROUNDS_PER_TICK} Ready rounds in one tick`);
      const core = this.core;
      if (!core.hasReady()) {
        if (this.inflight === undefined || this.diskTiming.chance(SLOW_WRITE_PROBABILITY)) return;
        if (this.completeWrite() === 'crashed') return;
        continue;
      }
      // A slow disk: the write in flight is still going, and the member waits for it before it
      // takes more work, while messages (acknowledgements among them) pile up in the core.
      if (this.inflight !== undefined && this.diskTiming.chance(SLOW_DISK_WAIT_PROBABILITY)) return;
      const ready = core.ready();
      const messages = coalesceAppends(ready.messages);
      this.sendAll(messages.filter(mayPrecedePersist));
      const term = ready.hardState?.term ?? core.status().term;
      this.applyCommitted(ready);
      for (const readState of ready.readStates) {
        const pending = this.pendingReads.get(readState.requestId);
        if (pending !== undefined) pending.readIndex = readState.index;
      }
      this.serveReads();
      if (this.completeWrite() === 'crashed') return;
      const advanced = this.advancesBeforeWrite();
      if (advanced) core.advance(ready);
      this.inflight = { ready, late: messages.filter((message) => !mayPrecedePersist(message)), term, advanced };
    }
  }

  /** Whether the core hears of a Ready before its write is durable: never, in a correct driver. */
  protected advancesBeforeWrite(): boolean {
    return false;
  }

  /** The Ready in flight reaches the disk (or the member crashes first); then its late messages go and the core advances. */
  private completeWrite(): 'done' | 'crashed' {
    const inflight = this.inflight;
    if (inflight === undefined || this.core === undefined) return 'done';
    this.inflight = undefined;
    if (this.persist(inflight.ready) === 'crashed') return 'crashed';
    this.afterPersist(inflight.ready, inflight.term);
    this.sendAll(inflight.late);
    if (!inflight.advanced) this.core.advance(inflight.ready);
    return 'done';
  }

  private sendAll(messages: readonly Message[]): void {
    for (const message of messages) {
      if (message.from !== this.id) throw new InvariantViolation('message origin', `${this.id} sent a message from ${message.from}`);
      this.env.send(message);
    }
  }

  /** Step 1 of the Ready contract: snapshot, entries, hard state, then one fsync. */
  protected persist(ready: Ready): 'persisted' | 'crashed' {
    if (ready.snapshot !== undefined) this.disk.writeSnapshot(ready.snapshot);
    this.disk.writeBatch(ready.entries, ready.hardState);
    if (!this.disk.hasUnsynced()) return 'persisted';
    if (this.env.crashBeforeFsync(this.id)) {
      this.crash('power loss before fsync');
      return 'crashed';
    }
    this.disk.fsync();
    return 'persisted';
  }

  /** Invariants that hold once a Ready's state is durable. */
  private afterPersist(ready: Ready, term: RaftStatus['term']): void {
    if (ready.entries.length > 0) this.env.safety.onPersisted(this.id, ready.entries);
    if (ready.hardState !== undefined) {
      if (ready.hardState.commit < this.lastCommit) {
        throw new InvariantViolation('commit monotonicity', `${this.id} commit went from ${this.lastCommit} to ${ready.hardState.commit}`);
      }
      this.lastCommit = ready.hardState.commit;
    }
    if (ready.softState !== undefined && ready.softState.role !== this.role) {
      this.record(`${this.role} -> ${ready.softState.role} (term ${term}, leader ${ready.softState.leader || 'none'})`);
      this.role = ready.softState.role;
      if (this.role === 'leader') this.env.safety.onLeader(this.id, term, this.disk);
    }
  }

  /** Step 3: install a received snapshot, then apply committed entries in order; answer waiting writes. */
  protected applyCommitted(ready: Ready): void {
    if (ready.hardState !== undefined) {
      if (ready.hardState.commit < this.knownCommit) {
        throw new InvariantViolation('commit monotonicity', `${this.id} commit went from ${this.knownCommit} to ${ready.hardState.commit}`);
      }
      this.knownCommit = ready.hardState.commit;
    }
    if (ready.snapshot !== undefined) this.installSnapshot(ready);
    for (const entry of ready.committedEntries) {
      const machine = this.machine as KvStateMachine;
      this.checkApplicable(entry, machine);
      this.env.safety.onApply(this.id, entry);
      const result = machine.apply(entry);
      if (entry.type === 'config') this.env.onConfChangeApplied(this.env.cores.decodeConfChange(entry.data));
      if (result === undefined) continue;
      const key = `${result.command.clientId}#${result.command.sequence}`;
      const pending = this.pendingWrites.get(key);
      if (pending === undefined) continue;
      this.pendingWrites.delete(key);
      this.answer(pending.request, { kind: 'ok', output: result.output });
    }
  }

  private installSnapshot(ready: Ready): void {
    const snapshot = ready.snapshot;
    if (snapshot === undefined) return;
    const applied = this.machine?.applied ?? 0;
    // The one snapshot that may not advance the state: index 0, the bootstrap configuration a
    // joiner that started with none gets before any entry.
    const bootstrapOnly = snapshot.meta.index === 0 && applied === 0;
    if (snapshot.meta.index <= applied && !bootstrapOnly) {
      throw new InvariantViolation('snapshot install', `${this.id} was asked to install snapshot ${snapshot.meta.index} over applied state ${applied}`);
    }
    const decode = (data: Uint8Array): ConfChange => this.env.cores.decodeConfChange(data);
    const machine = snapshot.data.length === 0 ? new KvStateMachine(decode, { applied: snapshot.meta.index, conf: snapshot.meta.conf }) : KvStateMachine.restore(decode, snapshot.data);
    if (machine.applied !== snapshot.meta.index) {
      throw new InvariantViolation('snapshot install', `${this.id} got snapshot meta index ${snapshot.meta.index} carrying state at ${machine.applied}`);
    }
    this.machine = machine;
    this.record(`installed snapshot ${snapshot.meta.index} (term ${snapshot.meta.term})`);
  }

  private checkApplicable(entry: Entry, machine: KvStateMachine): void {
    if (entry.index !== machine.applied + 1) {
      throw new InvariantViolation('apply order', `${this.id} applies entry ${entry.index} after ${machine.applied}`);
    }
    if (entry.index > this.knownCommit) {
      throw new InvariantViolation('apply only committed', `${this.id} applies entry ${entry.index} beyond its commit ${this.knownCommit}`);
    }
  }

  /** Serves every read whose read index the state machine has reached. */
  protected serveReads(): void {
    const machine = this.machine;
    if (machine === undefined) return;
    for (const [requestId, pending] of this.pendingReads) {
      if (pending.readIndex === undefined || pending.readIndex > machine.applied) continue;
      this.pendingReads.delete(requestId);
      const input = pending.request.input;
      this.answer(pending.request, { kind: 'ok', output: { kind: 'get', value: machine.get(input.key) } });
    }
  }

  protected answer(request: ClientRequest, body: ClientReplyBody): void {
    this.env.reply({ clientId: request.clientId, sequence: request.sequence, from: this.id, body });
  }

  protected record(text: string): void {
    this.env.events.record(this.env.now(), this.id, text);
  }
}

function requestKey(request: ClientRequest): string {
  return `${request.clientId}#${request.sequence}`;
}
