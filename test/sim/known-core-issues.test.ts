/**
 * Core issues the simulator found and that are still open, pinned to the seed that shows each.
 * Every case is `it.fails`: it passes while the issue exists and turns red once the core is
 * fixed, which is the cue to delete the case here (the main campaign then covers it).
 * Details and the reasoning for each are in docs/simulation.md ("Findings").
 */

import { describe, expect, it } from 'vitest';
import { realCores } from './real-core.js';
import { runWorld } from './world.js';

function verdict(seed: number): string {
  const outcome = runWorld({ seed, cores: realCores });
  return outcome.ok ? 'ok' : outcome.invariant;
}

describe('known core issues', () => {
  it.fails('a leader streaming a snapshot it has since compacted past still converges (SEED=57)', () => {
    // The follower installs the old snapshot and answers appendResponse(match = its index), which is
    // below the leader's new first index, so the leader stays in snapshot state resending the old
    // last chunk forever.
    expect(verdict(57)).toBe('ok');
  });
});
