/**
 * The simulator's self-test: deliberately broken drivers (buggy-*.ts) around the real core must
 * be caught by the invariants within a bounded number of seeds. If one of these starts passing,
 * the simulator has gone blind to that class of bug.
 */

import { describe, expect, it } from 'vitest';
import { createBuggyEarlyAckMember } from './buggy-early-ack.js';
import { createBuggyEarlyCountMember } from './buggy-early-count.js';
import { createBuggyLateFsyncMember } from './buggy-late-fsync.js';
import { createBuggyStaleReadMember } from './buggy-stale-read.js';
import { realCores } from './real-core.js';
import type { Scenario } from './scenario.js';
import { runWorld, type MemberFactory } from './world.js';

/** A fake must be caught within this many seeds. */
const MAX_SEEDS_TO_DETECT = 300;

/** Forces the faults a bug needs to show: crashes and network faults in every world. */
function hostile(scenario: Scenario): Scenario {
  return { ...scenario, crashProbability: 0.03, networkFaultProbability: 0.03, maxDowntimeTicks: 20 };
}

/** The first seed whose violation is one of `expected`; other failures (e.g. convergence) are skipped. */
function firstCaught(createMember: MemberFactory, expected: readonly string[]): { seed: number; invariant: string } | undefined {
  for (let seed = 1; seed <= MAX_SEEDS_TO_DETECT; seed++) {
    const outcome = runWorld({ seed, cores: realCores, createMember, adjustScenario: hostile });
    if (!outcome.ok && expected.includes(outcome.invariant)) {
      expect(outcome.report).toMatch(new RegExp(`^SEED=${seed} `));
      return { seed, invariant: outcome.invariant };
    }
  }
  return undefined;
}

describe('simulator self-test', () => {
  it('catches a driver that acknowledges writes before they commit', () => {
    expect(firstCaught(createBuggyEarlyAckMember, ['linearizability'])).toBeDefined();
  });

  it('catches a driver that serves reads without ReadIndex', () => {
    expect(firstCaught(createBuggyStaleReadMember, ['linearizability'])).toBeDefined();
  });

  it('catches a driver that tells the core its writes are done before they are', () => {
    // The leader then counts its own entries toward commit early: 'commit durability' sees a
    // commit that a majority does not hold durably yet; a crash in that window loses the entry.
    const caught = firstCaught(createBuggyEarlyCountMember, ['commit durability', 'leader completeness', 'state-machine safety', 'linearizability']);
    expect(caught).toBeDefined();
  });

  it('catches a driver that sends before its writes are fsynced', () => {
    // 'crash': the core's own recovery assertions (e.g. a durable commit beyond the durable log) count too.
    const caught = firstCaught(createBuggyLateFsyncMember, ['election safety', 'leader completeness', 'state-machine safety', 'log matching', 'linearizability', 'commit monotonicity', 'crash']);
    expect(caught).toBeDefined();
  });
});
