/**
 * One simulated world: a seed becomes a scenario, a cluster of members over a simulated network,
 * a workload of clients and a nemesis. The world runs a faulty phase, then a fault-free phase in
 * which the cluster must converge; safety invariants are checked continuously, and the client
 * history is checked for linearizability at the end.
 *
 * Per tick, in order: nemesis (faulty phase) or restarts; network delivery; client requests reach
 * members; every member ticks; every member runs its Ready loop (random member order); clients
 * handle replies, time out and issue operations; members compact; periodic log comparison.
 *
 * Deterministic: the only inputs are the seed and the options; nothing reads a clock or Math.random.
 */

import type { LogIndex, MemberId, Message, RaftStatus, Term } from '../../manager/raft/core/types.js';
import { EventLog } from './event-log.js';
import { InvariantViolation, SafetyChecker } from './invariants.js';
import { checkLinearizability, type CheckResult } from './linearizability.js';
import { kvModel, type KvOperation } from './kv-model.js';
import { Nemesis, type NemesisTarget } from './nemesis.js';
import { Prng } from './prng.js';
import { CONVERGENCE_DEADLINE_TICKS, CONVERGENCE_STALL_TICKS, describeScenario, LOG_PREFIX_CHECK_INTERVAL_TICKS, scenarioFor, type Scenario } from './scenario.js';
import { Workload } from './sim-clients.js';
import type { DurableImage } from './sim-disk.js';
import { SimMember, type CoreFactory, type MemberEnvironment } from './sim-member.js';
import { RELIABLE_NETWORK, SimNetwork } from './sim-network.js';

/** Ticks at the start of the fault-free phase during which clients still start new operations. */
export const CALM_WORKLOAD_TICKS = 30;
/** Members that may join a membership-changing world, beyond the initial ones. */
export const SPARE_MEMBERS = 2;
/** Events shown in a failure report. */
export const REPORTED_EVENTS = 120;

export type MemberFactory = (id: MemberId, env: MemberEnvironment, random: Prng, bootstrap: DurableImage) => SimMember;

export interface WorldOptions {
  seed: number;
  cores: CoreFactory;
  /** Builds members; the buggy-*.ts fakes substitute a broken driver here. */
  createMember?: MemberFactory;
  /** Adjusts the seed's scenario (self-tests force the faults a fake needs). */
  adjustScenario?: (scenario: Scenario) => Scenario;
  /** Events kept for the report (default EVENT_LOG_CAPACITY); raise it to debug a seed. */
  eventLogCapacity?: number;
  /** Events printed in a failure report (default REPORTED_EVENTS). */
  reportedEvents?: number;
}

export interface WorldStats {
  ticks: number;
  convergedAfterTicks: number;
  operations: number;
  pendingOperations: number;
  leaderTerms: number;
  committedEntries: number;
  crashes: number;
  tornTailsTruncated: number;
  messagesSent: number;
  messagesDropped: number;
  /** FNV-1a of the client history: equal runs of one seed give equal hashes. */
  historyHash: string;
}

export type WorldOutcome =
  | { ok: true; seed: number; linearizability: 'linearizable' | 'unknown'; stats: WorldStats }
  | { ok: false; seed: number; invariant: string; report: string };

const defaultMemberFactory: MemberFactory = (id, env, random, bootstrap) => new SimMember(id, env, random, bootstrap);

/** Runs the world of one seed to completion and judges it. Never throws for a violation: returns it. */
export function runWorld(options: WorldOptions): WorldOutcome {
  const world = new World(options);
  try {
    const stats = world.run();
    const verdict = checkLinearizability(kvModel, world.workload.history());
    if (verdict.kind === 'not_linearizable') throw asViolation(verdict);
    return { ok: true, seed: options.seed, linearizability: verdict.kind, stats };
  } catch (caught) {
    // A world that did not converge still has a history: a lost acknowledged write there is the graver finding.
    const error = caught instanceof InvariantViolation && caught.invariant === 'convergence' ? (linearizabilityViolation(world.workload.history()) ?? caught) : caught;
    const invariant = error instanceof InvariantViolation ? error.invariant : 'crash';
    const message = error instanceof Error ? (error instanceof InvariantViolation ? error.message : `${error.message}\n${error.stack ?? ''}`) : String(error);
    return { ok: false, seed: options.seed, invariant, report: world.report(message) };
  }
}

function linearizabilityViolation(history: KvOperation[]): InvariantViolation | undefined {
  const verdict = checkLinearizability(kvModel, history);
  return verdict.kind === 'not_linearizable' ? asViolation(verdict) : undefined;
}

function asViolation(verdict: Extract<CheckResult, { kind: 'not_linearizable' }>): InvariantViolation {
  return new InvariantViolation('linearizability', `key ${verdict.partitionKey} has no linearization; longest prefix [${verdict.longestPrefix.join(',')}]\n${verdict.explanation}`);
}

class World implements NemesisTarget {
  readonly scenario: Scenario;
  readonly workload: Workload;
  private readonly events: EventLog;
  private readonly safety: SafetyChecker;
  private readonly network: SimNetwork;
  private readonly nemesis: Nemesis;
  private readonly members = new Map<MemberId, SimMember>();
  private readonly retired = new Set<MemberId>();
  /** Members whose removal some member applied during this tick; retired at the end of the tick. */
  private readonly pendingRetirements: MemberId[] = [];
  private readonly spares: MemberId[] = [];
  private readonly random: Prng;
  private readonly env: MemberEnvironment;
  private readonly createMember: MemberFactory;
  /** The founders' disk at creation: the initial voters in an index-0 snapshot. */
  private readonly bootstrap: DurableImage;
  private tick = 0;
  private faulty = true;

  constructor(private readonly options: WorldOptions) {
    this.events = new EventLog(options.eventLogCapacity);
    const root = new Prng(options.seed);
    const base = scenarioFor(root.fork('scenario'));
    this.scenario = options.adjustScenario === undefined ? base : options.adjustScenario(base);
    this.random = root.fork('world');
    this.network = new SimNetwork(root.fork('network'));
    this.nemesis = new Nemesis(this.scenario, root.fork('nemesis'), this.network, this.events);
    this.createMember = options.createMember ?? defaultMemberFactory;
    // With no membership changes the voters are the founders, always: every commit can be checked against them.
    this.safety = new SafetyChecker(this.scenario.membershipChanges ? undefined : () => new Map([...this.members].map(([id, member]) => [id, member.disk])));
    this.env = this.environment();
    const ids = Array.from({ length: this.scenario.memberCount }, (_, index) => `m${index + 1}` as MemberId);
    for (let spare = 1; spare <= (this.scenario.membershipChanges ? SPARE_MEMBERS : 0); spare++) this.spares.push(`m${ids.length + spare}` as MemberId);
    this.bootstrap = {
      hardState: { term: 0 as Term, vote: '' as MemberId, commit: 0 as LogIndex },
      snapshot: { meta: { index: 0 as LogIndex, term: 0 as Term, conf: { voters: ids, learners: [] } }, data: new Uint8Array() },
      entries: [],
    };
    for (const id of ids) this.addMember(id, this.bootstrap);
    this.workload = new Workload(this.scenario.workload, root.fork('clients'), this.events, ids);
  }

  run(): WorldStats {
    this.network.setFaults(this.scenario.messageFaults);
    for (const member of this.members.values()) member.start();
    while (this.tick < this.scenario.faultyPhaseTicks) this.step();
    this.faulty = false;
    this.network.setFaults(RELIABLE_NETWORK);
    this.nemesis.calm(this);
    const calmStart = this.tick;
    let lastProgress = { tick: this.tick, fingerprint: this.progressFingerprint() };
    while (!this.converged()) {
      if (this.tick - lastProgress.tick >= CONVERGENCE_STALL_TICKS || this.tick - calmStart >= CONVERGENCE_DEADLINE_TICKS) {
        const why = this.tick - calmStart >= CONVERGENCE_DEADLINE_TICKS ? `${CONVERGENCE_DEADLINE_TICKS} ticks into the fault-free phase` : `nothing moved for ${CONVERGENCE_STALL_TICKS} ticks`;
        throw new InvariantViolation('convergence', `no convergence: ${why}: ${this.describeCluster()}`);
      }
      this.step();
      const fingerprint = this.progressFingerprint();
      if (fingerprint !== lastProgress.fingerprint) lastProgress = { tick: this.tick, fingerprint };
    }
    this.checkFinalState();
    const history = this.workload.history();
    return {
      ticks: this.tick,
      convergedAfterTicks: this.tick - calmStart,
      operations: history.length,
      pendingOperations: history.filter((operation) => operation.status === 'pending').length,
      leaderTerms: this.safety.leaderTerms(),
      committedEntries: this.safety.committedCount(),
      crashes: this.nemesis.crashes,
      tornTailsTruncated: [...this.members.values()].reduce((sum, member) => sum + member.disk.stats.tornTailsTruncated, 0),
      messagesSent: this.network.stats.sent,
      messagesDropped: this.network.stats.dropped,
      historyHash: fnv1a(JSON.stringify(history)),
    };
  }

  /** The failure report: seed, scenario, cluster state and the last events. */
  report(message: string): string {
    return [
      `SEED=${this.options.seed} ${message}`,
      `scenario: ${describeScenario(this.scenario)}`,
      `at tick ${this.tick} (${this.faulty ? 'faulty' : 'fault-free'} phase): ${this.describeCluster()}`,
      `last events:`,
      this.events.dump(this.options.reportedEvents ?? REPORTED_EVENTS),
    ].join('\n');
  }

  now(): number {
    return this.tick;
  }

  activeMembers(): SimMember[] {
    return [...this.members.values()].filter((member) => !this.retired.has(member.id));
  }

  spareIds(): MemberId[] {
    return this.spares.filter((id) => !this.members.has(id));
  }

  leader(): { member: SimMember; status: RaftStatus } | undefined {
    let best: { member: SimMember; status: RaftStatus } | undefined;
    for (const member of this.activeMembers()) {
      const status = member.status();
      if (status?.role === 'leader' && (best === undefined || status.term > best.status.term)) best = { member, status };
    }
    return best;
  }

  /** A spare joins with the bootstrap (or an empty) configuration; the leader brings it the log or a snapshot. */
  startSpare(id: MemberId): void {
    const conf = this.scenario.joinerDisk === 'bootstrap-conf' ? this.bootstrap.snapshot.meta.conf : { voters: [], learners: [] };
    this.addMember(id, { ...this.bootstrap, snapshot: { ...this.bootstrap.snapshot, meta: { ...this.bootstrap.snapshot.meta, conf } } });
    (this.members.get(id) as SimMember).start();
  }

  private addMember(id: MemberId, bootstrap: DurableImage): void {
    this.members.set(id, this.createMember(id, this.env, this.random.fork(`member-${id}`), bootstrap));
  }

  private step(): void {
    this.tick++;
    if (this.faulty) this.nemesis.strike(this);
    else this.nemesis.restartDue(this);
    const { delivered, broken } = this.network.deliver(this.tick);
    for (const message of broken) this.reportUnreachable(message);
    for (const message of delivered) {
      const member = this.members.get(message.to);
      if (member === undefined || !member.isUp || this.retired.has(member.id)) {
        this.reportUnreachable(message);
        continue;
      }
      this.events.record(this.tick, message.to, () => describeMessage(message));
      member.receive(message);
    }
    for (const request of this.workload.takeRequests(this.tick)) {
      const member = this.members.get(request.member);
      if (member !== undefined && !this.retired.has(member.id)) member.request(request);
    }
    const active = this.activeMembers();
    for (const member of active) member.tick();
    for (const member of this.random.shuffled(active)) member.processReady();
    const ids = this.activeMembers().map((member) => member.id);
    const issueNew = this.faulty || this.tick <= this.scenario.faultyPhaseTicks + CALM_WORKLOAD_TICKS;
    this.workload.tick(this.tick, ids, { issueNew, mayAbandon: this.faulty });
    for (const member of active) member.maybeCompact(this.scenario.compactionThresholdEntries);
    for (const id of this.pendingRetirements.splice(0)) this.retire(id);
    if (this.tick % LOG_PREFIX_CHECK_INTERVAL_TICKS === 0) this.safety.checkLogPrefixes(new Map(active.map((member) => [member.id, member.disk])));
  }

  /** The sender's transport saw the connection fail (cut link, peer down): tell its core. */
  private reportUnreachable(message: Message): void {
    const sender = this.members.get(message.from);
    if (sender === undefined || !sender.isUp) return;
    sender.raft()?.reportUnreachable(message.to);
  }

  /** A member whose removal has committed is stopped for good (once, at the first member that applies it). */
  private retire(id: MemberId): void {
    const member = this.members.get(id);
    if (member === undefined || this.retired.has(id)) return;
    this.retired.add(id);
    this.nemesis.forget(id);
    if (member.isUp) member.crash('retired: removed from the configuration');
    this.events.record(this.tick, id, 'retired');
  }

  /** Changes whenever the cluster makes progress: logs grow, entries apply, clients get answers, leadership moves. */
  private progressFingerprint(): string {
    const members = this.activeMembers().map((member) => {
      const status = member.status();
      return status === undefined ? 'down' : `${status.term}/${status.leader}/${status.lastIndex}/${member.stateMachine()?.applied ?? -1}`;
    });
    return `${members.join(' ')} ops ${this.workload.operationCount()} idle ${this.workload.idle()} answered ${this.workload.answeredCount()}`;
  }

  /** Converged: one leader all configuration members follow, everyone applied the whole log, no client waiting. */
  private converged(): boolean {
    if (!this.workload.idle()) return false;
    const leader = this.leader();
    if (leader === undefined) return false;
    const { status } = leader;
    if (status.commit !== status.lastIndex) return false;
    for (const id of [...status.conf.voters, ...status.conf.learners]) {
      const member = this.members.get(id);
      const memberStatus = member?.status();
      if (member === undefined || memberStatus === undefined) return false;
      if (memberStatus.leader !== leader.member.id || memberStatus.lastIndex !== status.lastIndex) return false;
      if (member.stateMachine()?.applied !== status.lastIndex) return false;
    }
    return true;
  }

  private checkFinalState(): void {
    const leader = this.leader() as { member: SimMember; status: RaftStatus };
    const expected = leader.member.stateMachine()?.digest();
    for (const id of [...leader.status.conf.voters, ...leader.status.conf.learners]) {
      const digest = this.members.get(id)?.stateMachine()?.digest();
      if (digest !== expected) throw new InvariantViolation('convergence', `${id} ends with state ${digest ?? 'none'} but leader ${leader.member.id} with ${expected ?? 'none'}`);
    }
    this.safety.checkLogPrefixes(new Map(this.activeMembers().map((member) => [member.id, member.disk])));
  }

  private describeCluster(): string {
    return this.activeMembers()
      .map((member) => {
        const status = member.status();
        if (status === undefined) return `${member.id}: down`;
        const voters = status.conf.voters.join(',');
        const learners = status.conf.learners.length === 0 ? '' : ` learners [${status.conf.learners.join(',')}]`;
        const progress = [...status.progress].filter(([id]) => id !== member.id).map(([id, peer]) => `${id} ${peer.state} match ${peer.match} next ${peer.next}`);
        const replication = progress.length === 0 ? '' : ` progress {${progress.join(', ')}}`;
        return `${member.id}: ${status.role} t${status.term} commit ${status.commit} last ${status.lastIndex} applied ${member.stateMachine()?.applied ?? '-'} leader ${status.leader || '-'} voters [${voters}]${learners}${replication}`;
      })
      .concat(`clients idle: ${this.workload.idle()}`, `cut links: ${this.network.cuts().length}`)
      .join('; ');
  }

  private environment(): MemberEnvironment {
    return {
      now: () => this.tick,
      events: this.events,
      safety: this.safety,
      cores: this.options.cores,
      configure: (config) => ({ ...config, ...this.scenario.core }),
      send: (message) => {
        if (!this.network.send(message, this.tick)) this.reportUnreachable(message);
      },
      reply: (reply) => this.workload.sendReply(reply, this.tick),
      crashBeforeFsync: (member) => {
        if (!this.faulty || !this.random.chance(this.scenario.crashBeforeFsyncProbability)) return false;
        this.nemesis.scheduleRestart(member, this.tick);
        return true;
      },
      tornWriteProbability: this.scenario.tornWriteProbability,
      onConfChangeApplied: (change) => {
        if (change.type === 'removeMember') this.pendingRetirements.push(change.member);
      },
    };
  }
}

/** One line per message for the event log. */
export function describeMessage(message: Message): string {
  const head = `${message.from}->${message.to} ${message.type} t${message.term}`;
  switch (message.type) {
    case 'preVote':
    case 'vote':
      return `${head} last ${message.lastLogIndex}/t${message.lastLogTerm}${message.transfer ? ' transfer' : ''}`;
    case 'preVoteResponse':
    case 'voteResponse':
      return `${head} ${message.reject ? 'reject' : 'grant'}`;
    case 'append':
      return `${head} prev ${message.prevLogIndex}/t${message.prevLogTerm} entries ${message.entries.length === 0 ? '-' : `${message.entries[0]?.index}..${message.entries[message.entries.length - 1]?.index}`} commit ${message.commit}`;
    case 'appendResponse':
      return `${head} ${message.reject ? 'reject hint' : 'match'} ${message.index}`;
    case 'heartbeat':
      return `${head} commit ${message.commit}${message.context === '' ? '' : ` ctx ${message.context}`}`;
    case 'heartbeatResponse':
      return `${head}${message.context === '' ? '' : ` ctx ${message.context}`}`;
    case 'snapshotChunk':
      return `${head} snapshot ${message.meta.index}/t${message.meta.term} offset ${message.offset} +${message.data.length}${message.last ? ' last' : ''}`;
    case 'snapshotResponse':
      return `${head} ${message.reject ? 'reject' : 'ok'} offset ${message.offset} index ${message.index}`;
    case 'timeoutNow':
      return head;
    default:
      return assertNever(message);
  }
}

function fnv1a(text: string): string {
  let hash = 0x811c9dc5;
  for (let index = 0; index < text.length; index++) hash = Math.imul(hash ^ text.charCodeAt(index), 0x01000193);
  return (hash >>> 0).toString(16).padStart(8, '0');
}

function assertNever(value: never): never {
  throw new Error(`unexpected value ${JSON.stringify(value)}`);
}
