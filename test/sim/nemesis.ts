/**
 * The nemesis: the faults of the faulty phase, drawn tick by tick from the world's seed.
 *
 * - Crashes: a random live member loses power and comes back after a random downtime.
 * - Network: at most one network fault at a time: a partition (a random side cut off from the
 *   rest, both ways, healed at once later) or a swizzle (random links cut, then restored one by
 *   one, as FoundationDB's simulation does).
 * - Leadership transfers to a random voter.
 * - Membership, in some worlds: add a spare as a learner, promote a caught-up learner, remove a
 *   voter while more than three remain. A member removed from the committed configuration is
 *   retired: stopped for good.
 * `calm` ends all of it for the fault-free phase: every link restored, every member restarted.
 */

import type { MemberId, RaftStatus } from '../../manager/raft/core/types.js';
import type { EventLog } from './event-log.js';
import type { Prng } from './prng.js';
import type { Scenario } from './scenario.js';
import type { SimMember } from './sim-member.js';
import type { SimNetwork } from './sim-network.js';

/** Ticks a partition lasts, at most. */
export const MAX_PARTITION_TICKS = 80;
/** Ticks between two link restorations of a swizzle, at most. */
export const MAX_SWIZZLE_RESTORE_GAP_TICKS = 15;
/** Per tick, in membership worlds: probability of attempting one membership change. */
export const MEMBERSHIP_CHANGE_PROBABILITY = 0.02;
/** Voters the nemesis never goes below by removing. */
export const MIN_VOTERS = 3;

/** What the nemesis may do to the world. */
export interface NemesisTarget {
  now(): number;
  /** Members that exist and are not retired, up or down. */
  activeMembers(): SimMember[];
  /** Ids that may still be added (never started). */
  spareIds(): MemberId[];
  leader(): { member: SimMember; status: RaftStatus } | undefined;
  startSpare(id: MemberId): void;
}

type NetworkFault = { kind: 'none' } | { kind: 'partition'; healAtTick: number } | { kind: 'swizzle'; cut: [MemberId, MemberId][]; nextRestoreTick: number };

export class Nemesis {
  private readonly restartAtTick = new Map<MemberId, number>();
  private networkFault: NetworkFault = { kind: 'none' };
  crashes = 0;

  constructor(
    private readonly scenario: Scenario,
    private readonly random: Prng,
    private readonly network: SimNetwork,
    private readonly events: EventLog,
  ) {}

  /** One tick of the faulty phase. */
  strike(target: NemesisTarget): void {
    const now = target.now();
    this.restartDue(target);
    const members = target.activeMembers();
    const up = members.filter((member) => member.isUp);
    if (up.length > 1 && this.random.chance(this.scenario.crashProbability)) this.crash(this.random.pick(up), 'nemesis', now);
    this.stepNetworkFault(members.map((member) => member.id), now);
    if (this.random.chance(this.scenario.transferProbability)) this.transfer(target, now);
    if (this.scenario.membershipChanges && this.random.chance(MEMBERSHIP_CHANGE_PROBABILITY)) this.changeMembership(target, now);
  }

  /** Crashes `member` and schedules its restart. Also used by the crash-before-fsync fault point. */
  scheduleRestart(member: MemberId, now: number): void {
    this.crashes++;
    this.restartAtTick.set(member, now + 1 + this.random.int(this.scenario.maxDowntimeTicks));
  }

  /** Restarts crashed members whose downtime is over. */
  restartDue(target: NemesisTarget): void {
    const now = target.now();
    for (const member of target.activeMembers()) {
      const at = this.restartAtTick.get(member.id);
      if (at !== undefined && at <= now && !member.isUp) {
        this.restartAtTick.delete(member.id);
        member.start();
      }
    }
  }

  /** The fault-free phase begins: heal the network and bring every active member back. */
  calm(target: NemesisTarget): void {
    this.network.healAll();
    this.networkFault = { kind: 'none' };
    this.events.record(target.now(), 'nemesis', 'calm: every link restored, every member restarted');
    for (const member of target.activeMembers()) {
      this.restartAtTick.delete(member.id);
      if (!member.isUp) member.start();
    }
  }

  forget(member: MemberId): void {
    this.restartAtTick.delete(member);
  }

  private crash(member: SimMember, reason: string, now: number): void {
    member.crash(reason);
    this.scheduleRestart(member.id, now);
  }

  private stepNetworkFault(ids: MemberId[], now: number): void {
    const fault = this.networkFault;
    switch (fault.kind) {
      case 'none': {
        if (!this.random.chance(this.scenario.networkFaultProbability) || ids.length < 2) return;
        if (this.random.chance(0.5)) {
          const side = this.random.shuffled(ids).slice(0, 1 + this.random.int(ids.length - 1));
          this.network.partition(side, ids);
          this.networkFault = { kind: 'partition', healAtTick: now + 1 + this.random.int(MAX_PARTITION_TICKS) };
          this.events.record(now, 'nemesis', `partition [${side.join(',')}] from the rest`);
        } else {
          for (const left of ids) for (const right of ids) if (left < right && this.random.chance(0.5)) this.network.cut(left, right);
          const cut = this.random.shuffled(this.network.cuts());
          this.networkFault = { kind: 'swizzle', cut, nextRestoreTick: now + 1 + this.random.int(MAX_SWIZZLE_RESTORE_GAP_TICKS) };
          this.events.record(now, 'nemesis', `swizzle: cut ${cut.map(([left, right]) => `${left}-${right}`).join(' ')}`);
        }
        return;
      }
      case 'partition':
        if (fault.healAtTick > now) return;
        this.network.healAll();
        this.networkFault = { kind: 'none' };
        this.events.record(now, 'nemesis', 'partition healed');
        return;
      case 'swizzle': {
        if (fault.nextRestoreTick > now) return;
        const link = fault.cut.pop();
        if (link === undefined) {
          this.networkFault = { kind: 'none' };
          return;
        }
        this.network.restore(link[0], link[1]);
        fault.nextRestoreTick = now + 1 + this.random.int(MAX_SWIZZLE_RESTORE_GAP_TICKS);
        this.events.record(now, 'nemesis', `swizzle: restore ${link[0]}-${link[1]}`);
        return;
      }
      default:
        assertNever(fault);
    }
  }

  private transfer(target: NemesisTarget, now: number): void {
    const leader = target.leader();
    if (leader === undefined) return;
    const others = leader.status.conf.voters.filter((id) => id !== leader.member.id);
    if (others.length === 0) return;
    const to = this.random.pick(others);
    const result = leader.member.raft()?.transferLeadership(to);
    this.events.record(now, 'nemesis', `transfer leadership ${leader.member.id} -> ${to}: ${result?.ok === true ? 'accepted' : (result?.reason ?? 'down')}`);
  }

  private changeMembership(target: NemesisTarget, now: number): void {
    const leader = target.leader();
    const core = leader?.member.raft();
    if (leader === undefined || core === undefined) return;
    const { voters, learners } = leader.status.conf;
    const spares = target.spareIds();
    const learner = learners[0];
    let description: string;
    let result;
    if (learner !== undefined) {
      description = `promote ${learner}`;
      result = core.proposeConfChange({ type: 'promoteLearner', member: learner });
    } else if (voters.length > MIN_VOTERS && (spares.length === 0 || this.random.chance(0.5))) {
      const victim = this.random.pick(voters);
      description = `remove ${victim}`;
      result = core.proposeConfChange({ type: 'removeMember', member: victim });
    } else if (spares.length > 0) {
      const spare = this.random.pick(spares);
      description = `add learner ${spare}`;
      result = core.proposeConfChange({ type: 'addLearner', member: spare });
      if (result.ok) target.startSpare(spare);
    } else {
      return;
    }
    this.events.record(now, 'nemesis', `${description} via ${leader.member.id}: ${result.ok ? `proposed at ${result.index}` : result.reason}`);
  }
}

function assertNever(value: never): never {
  throw new Error(`unexpected value ${JSON.stringify(value)}`);
}
