/**
 * The shape of one simulated world, derived from its seed: cluster size, how long the faulty phase
 * lasts, how hostile the network and disks are, how the core is tuned (small messages and chunks
 * so batching and chunked snapshot streaming get exercised), and the workload.
 *
 * The numbers are tuned so one seed runs in tens of milliseconds: ~2,000 seeds fit in CI.
 */

import type { RaftConfig } from '../../manager/raft/core/types.js';
import type { Prng } from './prng.js';
import type { MessageFaults } from './sim-network.js';
import type { WorkloadSettings } from './sim-clients.js';

/** Ticks of the faulty phase, at least and at most. */
export const FAULTY_PHASE_TICKS = { min: 200, max: 600 } as const;
/**
 * The fault-free phase fails (liveness) when nothing moves for CONVERGENCE_STALL_TICKS — no member
 * appends or applies, no client is answered, leadership does not change — or when it lasts
 * CONVERGENCE_DEADLINE_TICKS in all. Slow catch-up (a window of one 64-byte append) keeps moving;
 * a livelock does not.
 */
export const CONVERGENCE_STALL_TICKS = 300;
export const CONVERGENCE_DEADLINE_TICKS = 5_000;
/** Every this many ticks the whole durable logs are compared pairwise (log matching). */
export const LOG_PREFIX_CHECK_INTERVAL_TICKS = 25;

export interface Scenario {
  memberCount: 3 | 5;
  faultyPhaseTicks: number;
  messageFaults: MessageFaults;
  /** Per tick: probability of crashing one live member. */
  crashProbability: number;
  /** Ticks a crashed member stays down, at most. */
  maxDowntimeTicks: number;
  /** Per Ready with unsynced writes: probability of a power loss before the fsync. */
  crashBeforeFsyncProbability: number;
  /** On a crash with unsynced writes, the probability that the next record is torn. */
  tornWriteProbability: number;
  /** Per tick, when the network is whole: probability of starting a partition or a swizzle. */
  networkFaultProbability: number;
  /** Per tick: probability of asking the leader to transfer leadership. */
  transferProbability: number;
  /** Whether this world adds and removes members (learner -> promote, remove). */
  membershipChanges: boolean;
  /**
   * What a joining member's disk starts with: the founders' index-0 bootstrap snapshot, or an
   * empty configuration, as manager/raft/storage starts a joiner (the core must then send it the
   * leader's snapshot, even one at index 0, before any entry: the bootstrap voters live only there).
   */
  joinerDisk: 'bootstrap-conf' | 'empty-conf';
  /** A member compacts once its applied index is this far past its snapshot. */
  compactionThresholdEntries: number;
  core: Pick<RaftConfig, 'electionTicks' | 'heartbeatTicks' | 'maxInflightMessages' | 'maxMessageBytes' | 'maxUncommittedBytes' | 'snapshotChunkBytes' | 'preVote' | 'checkQuorum'>;
  workload: WorkloadSettings;
}

/** Draws a scenario. Roughly one seed in four is calm on some axis, so failures are not only found under maximal chaos. */
export function scenarioFor(random: Prng): Scenario {
  const memberCount = random.chance(0.6) ? 3 : 5;
  const lossy = random.chance(0.75);
  const electionTicks = random.pick([6, 10]);
  return {
    memberCount,
    faultyPhaseTicks: random.between(FAULTY_PHASE_TICKS.min, FAULTY_PHASE_TICKS.max),
    messageFaults: {
      dropProbability: lossy ? random.pick([0.01, 0.05, 0.15]) : 0,
      duplicateProbability: lossy ? random.pick([0, 0.02, 0.1]) : 0,
      maxExtraDelayTicks: random.pick([0, 2, 5]),
    },
    crashProbability: random.pick([0, 0.005, 0.02]),
    maxDowntimeTicks: random.pick([10, 40, 100]),
    crashBeforeFsyncProbability: random.pick([0, 0.001, 0.01]),
    tornWriteProbability: 0.5,
    networkFaultProbability: random.pick([0, 0.01, 0.03]),
    transferProbability: random.pick([0, 0.005]),
    membershipChanges: random.chance(0.3),
    joinerDisk: random.chance(0.5) ? 'empty-conf' : 'bootstrap-conf',
    compactionThresholdEntries: random.pick([8, 32, 1_000_000]),
    core: {
      electionTicks,
      heartbeatTicks: 1,
      maxInflightMessages: random.pick([1, 4, 256]),
      maxMessageBytes: random.pick([64, 1024, 1 << 20]),
      maxUncommittedBytes: random.pick([2048, 1 << 30]),
      snapshotChunkBytes: random.pick([32, 256, 1 << 20]),
      preVote: random.chance(0.8),
      checkQuorum: random.chance(0.8),
    },
    workload: {
      clientCount: random.between(2, 5),
      keys: random.chance(0.5) ? ['x'] : ['x', 'y', 'z'],
      requestTimeoutTicks: electionTicks * 4,
      abandonProbability: 0.1,
      maxLinkDelayTicks: 2,
      maxThinkTicks: random.pick([0, 3, 10]),
    },
  };
}

/** One line for reports. */
export function describeScenario(scenario: Scenario): string {
  const faults = scenario.messageFaults;
  return (
    `${scenario.memberCount} members, ${scenario.faultyPhaseTicks} faulty ticks, drop ${faults.dropProbability} dup ${faults.duplicateProbability} delay<=${faults.maxExtraDelayTicks + 1}, ` +
    `crash ${scenario.crashProbability}/tick, fsync-crash ${scenario.crashBeforeFsyncProbability}, net-fault ${scenario.networkFaultProbability}/tick, ` +
    `transfer ${scenario.transferProbability}, membership ${scenario.membershipChanges}, compact every ${scenario.compactionThresholdEntries}, ` +
    `core ${JSON.stringify(scenario.core)}, ${scenario.workload.clientCount} clients on [${scenario.workload.keys.join(',')}]`
  );
}
