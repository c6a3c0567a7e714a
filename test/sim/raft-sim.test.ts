/**
 * The deterministic simulation of the Raft core (see docs/simulation.md).
 *
 *   npx vitest run test/sim/raft-sim.test.ts                 # SIM_SEEDS seeds (default 2,000) from SIM_FROM (default 1)
 *   SEED=123 npx vitest run test/sim/raft-sim.test.ts        # replay exactly one seed, printing its report
 *
 * A failure prints `SEED=<n>`, the broken invariant, the scenario, the cluster state and the last
 * events; the same SEED replays it exactly.
 */

import { describe, expect, it } from 'vitest';
import { realCores } from './real-core.js';
import { runWorld, type WorldOutcome } from './world.js';

/** Seeds run by default (CI). */
const DEFAULT_SEEDS = 2000;
/** Stop after this many failing seeds: their reports are what matters, not the count. */
const MAX_FAILURES_REPORTED = 3;
/** The whole campaign's budget; one seed takes about 10 ms on the CI machine. */
const CAMPAIGN_TIMEOUT_MS = 170_000;

function numberFromEnvironment(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`cannot read ${name}: ${JSON.stringify(raw)} is not a non-negative integer`);
  return value;
}

const replaySeed = process.env['SEED'];
const seeds = numberFromEnvironment('SIM_SEEDS', DEFAULT_SEEDS);
const from = numberFromEnvironment('SIM_FROM', 1);

function describeFailures(outcomes: WorldOutcome[]): string[] {
  return outcomes.flatMap((outcome) => (outcome.ok ? [] : [`SEED=${outcome.seed} ${outcome.invariant}`]));
}

describe('raft simulation', () => {
  if (replaySeed !== undefined && replaySeed !== '') {
    const seed = numberFromEnvironment('SEED', 0);
    it(`replays SEED=${seed}`, () => {
      const outcome = runWorld({ seed, cores: realCores });
      console.log(outcome.ok ? `SEED=${seed} ok: ${JSON.stringify(outcome.stats)} linearizability ${outcome.linearizability}` : outcome.report);
      expect(describeFailures([outcome])).toEqual([]);
    });
    return;
  }

  it(`runs ${seeds} seeds from ${from} without a violation`, () => {
    const failures: WorldOutcome[] = [];
    let unknown = 0;
    for (let seed = from; seed < from + seeds && failures.length < MAX_FAILURES_REPORTED; seed++) {
      const outcome = runWorld({ seed, cores: realCores });
      if (!outcome.ok) {
        failures.push(outcome);
        console.error(outcome.report);
      } else if (outcome.linearizability === 'unknown') unknown++;
    }
    expect(describeFailures(failures)).toEqual([]);
    expect(unknown, 'histories the linearizability checker could not decide within its budget').toBe(0);
  }, CAMPAIGN_TIMEOUT_MS);

  it('replays a seed exactly: same history, same statistics', () => {
    for (const seed of [1, 2, 3]) {
      const first = runWorld({ seed, cores: realCores });
      const second = runWorld({ seed, cores: realCores });
      expect(second).toEqual(first);
    }
  });
});
