/**
 * Core issues the simulator found and that are still open, pinned to the seed that shows each.
 * Every case is `it.fails`: it passes while the issue exists and turns red once the core is
 * fixed, which is the cue to delete the case here (the main campaign then covers it).
 * Details and the reasoning for each are in docs/simulation.md ("Findings").
 */

import { describe, expect, it } from 'vitest';
import { realCores } from './real-core.js';
import type { Scenario } from './scenario.js';
import { runWorld } from './world.js';

function verdict(seed: number, adjustScenario?: (scenario: Scenario) => Scenario): string {
  const outcome = runWorld(adjustScenario === undefined ? { seed, cores: realCores } : { seed, cores: realCores, adjustScenario });
  return outcome.ok ? 'ok' : outcome.invariant;
}

describe('known core issues', () => {
  it.fails('a leader streaming a snapshot it has since compacted past still converges (SEED=152)', () => {
    // The follower installs the old snapshot and answers appendResponse(match = its index), which is
    // below the leader's new first index, so the leader stays in snapshot state resending the old
    // last chunk forever.
    expect(verdict(152)).toBe('ok');
  });

  it.fails('a member that joins with an empty configuration, as manager/raft/storage starts a joiner, keeps safety (SEED=8 with empty-conf joiners)', () => {
    // The founders' voters live only in the index-0 snapshot's conf, which is never sent: the joiner
    // replays the log from index 1, sees only later changes, believes itself the only voter once
    // promoted, and elects itself.
    expect(verdict(8, (scenario) => ({ ...scenario, membershipChanges: true, joinerDisk: 'empty-conf' }))).toBe('ok');
  });
});
