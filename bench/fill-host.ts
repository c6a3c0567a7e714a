/**
 * Benchmark "fill-host" (issue 7): the time from `skiff service create --replicas 50` to all 50
 * tasks running on one host that already has the image, against a raw-runc reference in the same
 * invocation: the same 50 bundles (laid out by the runtime's own code, untimed) started with
 * `runc run -d`, all at once and one after the other. Prints one JSON line on stdout.
 *
 *   node dist/bench/fill-host.js [--runs N] [--replicas R]      (npm run bench:fill -- ...)
 *
 * Needs root. Brings up its own lab (1 manager, 0 workers: every task lands on h1) and removes the
 * lab, every container, mount, cgroup and scratch directory on exit, failure and SIGINT/SIGTERM.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { LabHost } from '../deploy/lab/index.js';
import { parseIntegerFlags } from './args.js';
import { checkNotStopping, progress, timedRun } from './bench-support.js';
import { DEMO_IMAGE, hostFacts, waitRunning, warmHost, withBenchLab, type BenchLab } from './lab-bench.js';
import { prepareRuncBundle, removeRuncContainer, setupRunc, startRuncContainer, type RuncSetup } from './runc-start.js';
import { agentFigures, CONVERGE_TIMEOUT_MS, RUNTIME_TRACE, removeService, skiffBinary } from './skiff-start.js';
import { taskStateSpan } from './skiffd-log.js';
import { ratio, roundMs, summarize } from './stats.js';

const FLAGS = {
  runs: { default: 3, min: 1, max: 100 },
  replicas: { default: 50, min: 1, max: 200 },
};
const USAGE = 'fill-host [--runs N] [--replicas R]';
/** ListTasks poll period while waiting for the replicas. */
const POLL_INTERVAL_MS = 20;
/** How long `replicas` tasks may take to run. */
const FILL_TIMEOUT_MS = 180_000;

interface SkiffFill {
  /** CLI spawn -> all replicas listed running. */
  allRunningMs: number;
  /** CLI spawn -> the first replica listed running. */
  firstRunningMs: number;
  /** CLI spawn -> `service create --detach` exited. */
  cliExitMs: number;
  /** skiffd log: first task accepted -> last task running. */
  agentSpanMs: number | undefined;
  /** skiffd log: each task's accepted -> running. */
  agentPerTaskMs: number[];
  /** skiffd log (SKIFF_TRACE=runtime): each task's runtime phases (bundle, create, network, start). */
  runtimePhasesMs: Array<Record<string, number>>;
}

async function main(): Promise<void> {
  const { runs, replicas } = parseIntegerFlags(process.argv.slice(2), FLAGS, USAGE);
  // skiffd inherits this and then logs the runtime's per-phase start timings (one line per start).
  process.env['SKIFF_TRACE'] = [process.env['SKIFF_TRACE'], RUNTIME_TRACE].filter((part) => part !== undefined && part !== '').join(',');
  await withBenchLab({ prefix: 'bf', managers: 1, workers: 0 }, async (bench) => {
    const host = bench.lab.hosts[0];
    if (host === undefined) throw new Error('cannot benchmark: the lab has no host');
    await warmHost(bench, host, DEMO_IMAGE);
    const setup = await setupRunc({ workDir: join(bench.workDir, 'runc'), registry: bench.lab.registry.addr, image: DEMO_IMAGE, cgroupParent: `${bench.cgroupRoot}/runc`, cleanups: bench.cleanups });
    // Interleaved, one run of each series per round, so that a change in the machine's load
    // (it is shared) falls on every series alike.
    const skiff: SkiffFill[] = [];
    const parallel: number[] = [];
    const sequential: number[] = [];
    for (let run = 1; run <= runs; run += 1) {
      checkNotStopping();
      const sample = await fillOnce(bench, host, `fill-${run}`, replicas);
      skiff.push(sample);
      progress(`skiff fill ${run}/${runs}: ${replicas} running after ${sample.allRunningMs.toFixed(0)} ms (first ${sample.firstRunningMs.toFixed(0)} ms, CLI ${sample.cliExitMs.toFixed(0)} ms, agent span ${String(sample.agentSpanMs)} ms)`);
      parallel.push(await runcFill(bench, setup, replicas, `p${run}`, 'parallel'));
      progress(`runc parallel ${run}/${runs}: ${replicas} running after ${parallel.at(-1)?.toFixed(0)} ms`);
      sequential.push(await runcFill(bench, setup, replicas, `s${run}`, 'sequential'));
      progress(`runc sequential ${run}/${runs}: ${replicas} running after ${sequential.at(-1)?.toFixed(0)} ms`);
    }
    const skiffAll = summarize(skiff.map((sample) => sample.allRunningMs));
    const parallelSummary = summarize(parallel);
    const sequentialSummary = summarize(sequential);
    const spans = skiff.map((sample) => sample.agentSpanMs).filter((value): value is number => value !== undefined);
    const report = {
      bench: 'fill-host',
      runs,
      replicas,
      skiff: {
        ...skiffAll,
        first_running: summarize(skiff.map((sample) => sample.firstRunningMs)),
        cli_exit: summarize(skiff.map((sample) => sample.cliExitMs)),
        ...(spans.length > 0 ? { agent_first_accepted_to_last_running: summarize(spans) } : {}),
        agent_per_task_accepted_to_running: summarize(skiff.flatMap((sample) => sample.agentPerTaskMs)),
        ...phaseReport(skiff.flatMap((sample) => sample.runtimePhasesMs)),
      },
      runc_parallel: parallelSummary,
      runc_sequential: sequentialSummary,
      ratio_skiff_over_runc_parallel: ratio(skiffAll.p50_ms, parallelSummary.p50_ms),
      ratio_skiff_over_runc_sequential: ratio(skiffAll.p50_ms, sequentialSummary.p50_ms),
      host: await hostFacts(),
    };
    process.stdout.write(`${JSON.stringify(report)}\n`);
  });
}

/** Per runtime phase, the p50 over every task of every run. */
function phaseReport(phases: Array<Record<string, number>>): Record<string, unknown> {
  if (phases.length === 0) return {};
  const names = [...new Set(phases.flatMap((entry) => Object.keys(entry)))];
  const values = (name: string): number[] => phases.map((entry) => entry[name]).filter((value): value is number => value !== undefined);
  return { runtime_phases_p50_ms: Object.fromEntries(names.map((name) => [name, summarize(values(name)).p50_ms])) };
}

/** One `service create --replicas R` on the lab, timed until all R run; removes the service after. */
async function fillOnce(bench: BenchLab, host: LabHost, name: string, replicas: number): Promise<SkiffFill> {
  const logPath = join(host.dataDir, 'skiffd.log');
  const logOffset = (await stat(logPath)).size;
  bench.cleanups.push(`skiff service ${name}`, () => removeService({ connection: bench.connection, host }, name).catch(() => undefined));
  let startedAt = 0;
  let cliFailure: string | undefined;
  let firstAt = 0;
  const cli = timedRun(skiffBinary(), ['service', 'create', '--detach', '--name', name, '--replicas', String(replicas), DEMO_IMAGE], {
    env: bench.env,
    timeoutMs: CONVERGE_TIMEOUT_MS,
    onSpawn: (at) => (startedAt = at),
  }).then((result) => {
    if (result.exitCode !== 0) cliFailure = `skiff service create exited ${result.exitCode}: ${result.stderr.trim()}`;
    return result;
  });
  const seen = await waitRunning(bench.connection, name, replicas, {
    intervalMs: POLL_INTERVAL_MS,
    timeoutMs: FILL_TIMEOUT_MS,
    onFirst: (at) => (firstAt = at),
    check: () => {
      if (cliFailure !== undefined) throw new Error(`cannot create service ${name}: ${cliFailure}`);
    },
  });
  const cliResult = await cli;
  if (cliFailure !== undefined) throw new Error(`cannot create service ${name}: ${cliFailure}`);
  const logText = (await readFile(logPath)).subarray(logOffset).toString();
  const span = taskStateSpan(logText, seen.taskIds);
  const runtimePhasesMs = seen.taskIds.map((taskId) => agentFigures(logText, taskId).runtimePhasesMs).filter((phases): phases is Record<string, number> => phases !== undefined);
  await removeService({ connection: bench.connection, host }, name);
  return {
    allRunningMs: seen.at - startedAt,
    firstRunningMs: firstAt - startedAt,
    cliExitMs: cliResult.elapsedMs,
    agentSpanMs: span?.spanMs,
    agentPerTaskMs: span?.perTaskMs ?? [],
    runtimePhasesMs,
  };
}

/**
 * Prepares `replicas` bundles (untimed), then times `runc run -d` of all of them, all at once or one
 * after the other, until each is running; removes them all afterwards. Returns the wall time in ms.
 */
async function runcFill(bench: BenchLab, setup: RuncSetup, replicas: number, prefix: string, mode: 'parallel' | 'sequential'): Promise<number> {
  checkNotStopping();
  const ids = Array.from({ length: replicas }, (_, index) => `bench-fill-${prefix}-${index + 1}`);
  const teardown = async (): Promise<void> => {
    for (const id of ids) await removeRuncContainer(setup, id);
  };
  bench.cleanups.push(`runc containers ${prefix}`, teardown);
  for (const id of ids) await prepareRuncBundle(setup, id);
  const startedAt = performance.now();
  if (mode === 'parallel') {
    await Promise.all(ids.map((id) => startRuncContainer(setup, id)));
  } else {
    for (const id of ids) await startRuncContainer(setup, id);
  }
  const elapsed = roundMs(performance.now() - startedAt);
  await teardown();
  return elapsed;
}

main().catch((error: unknown) => {
  progress(`failed: ${error instanceof Error ? error.message : String(error)}`);
  if (process.exitCode === undefined || process.exitCode === 0) process.exitCode = 1;
});
