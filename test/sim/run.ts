/**
 * Runs many simulator seeds outside vitest, for long campaigns:
 *
 *   npm run build && node dist/test/sim/run.js --seeds 100000 [--from 1] [--stop-on-failure]
 *
 * Prints progress to stderr, each failing seed's report to stdout, and a final JSON summary line;
 * exits 1 when any seed violates an invariant. Replay one seed with `--from S --seeds 1`, or
 * `SEED=S npx vitest run test/sim/raft-sim.test.ts`.
 */

import { realCores } from './real-core.js';
import { runWorld } from './world.js';

/** Progress is printed every this many seeds. */
const PROGRESS_EVERY_SEEDS = 1000;
/** Failure reports printed in full; later failures are listed by seed only. */
const MAX_FULL_REPORTS = 5;
/** Failing seeds listed in the summary line. */
const MAX_LISTED_FAILURES = 100;

interface Arguments {
  seeds: number;
  from: number;
  stopOnFailure: boolean;
}

function parseArguments(argv: readonly string[]): Arguments {
  const parsed: Arguments = { seeds: 1000, from: 1, stopOnFailure: false };
  for (let index = 0; index < argv.length; index++) {
    const flag = argv[index];
    const value = Number(argv[index + 1]);
    if (flag === '--stop-on-failure') parsed.stopOnFailure = true;
    else if ((flag === '--seeds' || flag === '--from') && Number.isSafeInteger(value) && value >= 0) {
      if (flag === '--seeds') parsed.seeds = value;
      else parsed.from = value;
      index++;
    } else throw new Error(`cannot parse arguments: unexpected ${String(flag)} (usage: --seeds N [--from S] [--stop-on-failure])`);
  }
  return parsed;
}

function main(): number {
  const { seeds, from, stopOnFailure } = parseArguments(process.argv.slice(2));
  const started = performance.now();
  const failures: { seed: number; invariant: string }[] = [];
  let unknown = 0;
  let operations = 0;
  let crashes = 0;
  let run = 0;
  for (let seed = from; seed < from + seeds; seed++) {
    const outcome = runWorld({ seed, cores: realCores });
    run++;
    if (outcome.ok) {
      if (outcome.linearizability === 'unknown') unknown++;
      operations += outcome.stats.operations;
      crashes += outcome.stats.crashes;
    } else {
      failures.push({ seed, invariant: outcome.invariant });
      process.stdout.write(failures.length <= MAX_FULL_REPORTS ? `${outcome.report}\n\n` : `SEED=${seed} ${outcome.invariant}\n`);
      if (stopOnFailure) break;
    }
    if (run % PROGRESS_EVERY_SEEDS === 0) {
      const seconds = (performance.now() - started) / 1000;
      process.stderr.write(`seeds ${from}..${seed}: ${run} run, ${failures.length} failed, ${seconds.toFixed(0)} s\n`);
    }
  }
  const seconds = (performance.now() - started) / 1000;
  const byInvariant: Record<string, number> = {};
  for (const failure of failures) byInvariant[failure.invariant] = (byInvariant[failure.invariant] ?? 0) + 1;
  const summary = { from, seeds: run, failures: failures.length, byInvariant, failedSeeds: failures.slice(0, MAX_LISTED_FAILURES), linearizabilityUnknown: unknown, operations, crashes, seconds: Math.round(seconds) };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
  return failures.length === 0 ? 0 : 1;
}

process.exitCode = main();
