/**
 * Benchmark "service-start" (issue 3): how long `skiff service create --replicas 1` takes to get
 * a task running on a host that already has the image, against two references on the same image
 * in the same invocation: a raw `runc run -d` of the bundle Skiff's runtime builds, and
 * `podman run -d --runtime runc`. Prints one JSON line on stdout; progress goes to stderr.
 *
 *   node dist/bench/service-start.js [--runs N]      (npm run bench:start -- --runs N)
 *
 * Needs root. Brings up its own lab (1 manager, 0 workers, unique name) with a private SKIFF_HOME,
 * and removes the lab, every container, mount, cgroup and scratch directory on exit, on failure
 * and on SIGINT/SIGTERM. Traffic stays on the lab bridge. Never asserts a speed.
 */
import { mkdir, readFile, rm } from 'node:fs/promises';
import { availableParallelism, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '../cli/client.js';
import { labDown, labPaths, labUp } from '../deploy/lab/index.js';
import { removeCgroupTree } from '../agent/runtime/cgroups.js';
import { unmountAllUnder } from '../agent/runtime/rootfs.js';
import { CleanupStack, progress, randomName, timedRun } from './bench-support.js';
import { PODMAN_BINARY, samplePodman, setupPodman, type PodmanSample } from './podman-start.js';
import { RUNC_BINARY, sampleRunc, setupRunc, type RuncSample } from './runc-start.js';
import { RUNTIME_TRACE, sampleSkiff, warmSkiff, type SkiffSample } from './skiff-start.js';
import { ratio, summarize, type LatencySummary } from './stats.js';

/** Runs per series unless --runs says otherwise. */
export const DEFAULT_RUNS = 10;
/** Upper bound on --runs: each run costs about a second per series. */
export const MAX_RUNS = 1_000;
/** The demo image every lab registry holds (deploy/lab/lab-up.ts), and its tag in the lab's OCI layout. */
const IMAGE = 'demo/web:v1';
const IMAGE_LAYOUT = { dir: 'web-v1', tag: 'v1' } as const;
/** Issue 7: assignment -> running at most 1.5 x a raw `runc run` of the same bundle. */
export const ASSIGNMENT_GOAL = 1.5;
/** Issue 7: `service create` -> running at most 1.0 x `podman run --runtime runc` of the same image. */
export const CREATE_GOAL = 1.0;
/** Random part of the lab name, scratch dir and cgroup parent ("bs" + 6 = 8, the lab name limit). */
const RUN_ID_LENGTH = 6;

/** Parses `--runs N`; throws "cannot ..." naming the flag on bad input. */
export function parseArguments(argv: readonly string[]): { runs: number } {
  let runs = DEFAULT_RUNS;
  for (let index = 0; index < argv.length; index += 1) {
    const argument = argv[index];
    const inline = argument?.startsWith('--runs=') === true ? argument.slice('--runs='.length) : undefined;
    if (argument === '--runs' || inline !== undefined) {
      const text = inline ?? argv[(index += 1)];
      runs = Number(text);
      if (!Number.isInteger(runs) || runs < 1 || runs > MAX_RUNS) throw new Error(`cannot parse --runs: expected an integer in 1..${MAX_RUNS}, got ${JSON.stringify(text ?? '')}`);
    } else {
      throw new Error(`cannot parse arguments: unknown argument ${JSON.stringify(argument)} (usage: service-start [--runs N])`);
    }
  }
  return { runs };
}

async function main(): Promise<void> {
  const { runs } = parseArguments(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new Error('cannot run the service-start benchmark: it needs root (lab namespaces, runc, podman)');
  const runId = randomName(RUN_ID_LENGTH);
  const labName = `bs${runId}`;
  const workDir = join(tmpdir(), `skiff-bench-${runId}`);
  const cgroupRoot = `/skiff-bench-${runId}`;
  const cleanups = new CleanupStack();
  cleanups.installSignalHandlers();
  // Pushed first, so they run last, after the steps that use these directories and cgroups.
  cleanups.push('scratch directory', async () => {
    await unmountAllUnder(workDir);
    await rm(workDir, { recursive: true, force: true });
  });
  cleanups.push('bench cgroups', () => removeCgroupTree(cgroupRoot));
  try {
    await mkdir(join(workDir, 'home'), { recursive: true });
    process.env['SKIFF_HOME'] = join(workDir, 'home');
    delete process.env['SKIFF_CONTEXT'];
    delete process.env['SKIFF_HOST'];
    // skiffd inherits this and then logs the runtime's per-phase start timings (one line per start).
    process.env['SKIFF_TRACE'] = [process.env['SKIFF_TRACE'], RUNTIME_TRACE].filter((part) => part !== undefined && part !== '').join(',');
    cleanups.push(`lab ${labName}`, () => labDown(labName, progress));
    progress(`lab ${labName}: up (1 manager, 0 workers), scratch ${workDir}`);
    const lab = await labUp({ name: labName, managers: 1, workers: 0, log: progress });
    const host = lab.hosts[0];
    if (host === undefined) throw new Error(`cannot benchmark: lab ${labName} has no host`);
    const connection = await connect(undefined);
    cleanups.push('control connection', async () => connection.close());

    const skiffOptions = { connection, host, image: IMAGE, env: process.env, cleanups };
    await warmSkiff(skiffOptions);
    const runcSetup = await setupRunc({ workDir: join(workDir, 'runc'), registry: lab.registry.addr, image: IMAGE, cgroupParent: `${cgroupRoot}/runc`, cleanups });
    const podmanOptions = { workDir: join(workDir, 'podman'), layoutDir: join(labPaths(labName).imagesDir, IMAGE_LAYOUT.dir), layoutTag: IMAGE_LAYOUT.tag, cgroupParent: `${cgroupRoot}/podman`, cleanups };
    const podmanSetup = await setupPodman(podmanOptions);
    // Interleaved, one run of each series per round, so that a change in the machine's load
    // (it is shared) falls on every series alike.
    const skiff: SkiffSample[] = [];
    const runc: RuncSample[] = [];
    const podman: PodmanSample[] = [];
    for (let run = 1; run <= runs; run += 1) {
      skiff.push(await sampleSkiff(skiffOptions, run));
      runc.push(await sampleRunc(runcSetup, cleanups, run));
      podman.push(await samplePodman(podmanSetup, podmanOptions, run));
    }
    // The floor of any Node CLI: spawn -> exit of a process that loads nothing, in this same run.
    const nodeFloor: number[] = [];
    for (let run = 1; run <= runs; run += 1) nodeFloor.push((await timedRun(process.execPath, ['-e', '0'])).elapsedMs);
    const skiffSummary = skiffReport(skiff);
    const runcSummary = summarize(runc.map((sample) => sample.runningMs));
    const podmanSummary = summarize(podman.map((sample) => sample.runningMs));
    const report = {
      bench: 'service-start',
      runs,
      skiff: skiffSummary,
      runc: { ...runcSummary, returned: summarize(runc.map((sample) => sample.returnedMs)), bundle_untimed: summarize(runc.map((sample) => sample.bundleMs)) },
      podman: { ...podmanSummary, returned: summarize(podman.map((sample) => sample.returnedMs)) },
      node_e_0: summarize(nodeFloor),
      // Medians of spawn -> running; JSON drops a ratio that cannot be computed.
      ratio_skiff_over_runc: ratio(skiffSummary.p50_ms, runcSummary.p50_ms),
      ratio_skiff_over_podman: ratio(skiffSummary.p50_ms, podmanSummary.p50_ms),
      // Issue 7's two goals: the agent's share (assignment arrives -> task reported running) against
      // a raw `runc run` of the same bundle (<= 1.5), and `service create` -> running against `podman run` (<= 1.0).
      goals: startGoals(skiffSummary, runcSummary, podmanSummary),
      host: await hostReport(),
    };
    process.stdout.write(`${JSON.stringify(report)}\n`);
  } finally {
    await cleanups.runAll();
  }
}

/** Issue 7's start-latency goals: each ratio of p50s beside its goal and whether it is met. */
export function startGoals(
  skiff: LatencySummary & { agent_accepted_to_running?: LatencySummary },
  runc: LatencySummary,
  podman: LatencySummary,
): Record<string, { ratio: number | undefined; goal: number; met: boolean }> {
  const goal = (value: number | undefined, limit: number): { ratio: number | undefined; goal: number; met: boolean } => ({ ratio: value, goal: limit, met: value !== undefined && value <= limit });
  return {
    assignment_to_running_over_runc_run: goal(skiff.agent_accepted_to_running === undefined ? undefined : ratio(skiff.agent_accepted_to_running.p50_ms, runc.p50_ms), ASSIGNMENT_GOAL),
    service_create_to_running_over_podman_run: goal(ratio(skiff.p50_ms, podman.p50_ms), CREATE_GOAL),
  };
}

/** Spawn -> running, plus the CLI's exit and the agent's and runtime's shares when logged. */
function skiffReport(samples: readonly SkiffSample[]): LatencySummary & { agent_accepted_to_running?: LatencySummary } & Record<string, unknown> {
  const defined = (values: Array<number | undefined>): number[] => values.filter((value): value is number => value !== undefined);
  const agent = defined(samples.map((sample) => sample.agentMs));
  const runtime = defined(samples.map((sample) => sample.runtimeMs));
  const phaseNames = [...new Set(samples.flatMap((sample) => Object.keys(sample.runtimePhasesMs ?? {})))];
  const phases = Object.fromEntries(
    phaseNames.map((phase) => [phase, summarize(defined(samples.map((sample) => sample.runtimePhasesMs?.[phase]))).p50_ms]),
  );
  return {
    ...summarize(samples.map((sample) => sample.runningMs)),
    cli_exit: summarize(samples.map((sample) => sample.cliExitMs)),
    ...(agent.length > 0 ? { agent_accepted_to_running: summarize(agent) } : {}),
    ...(runtime.length > 0 ? { runtime_start: summarize(runtime), runtime_phases_p50_ms: phases } : {}),
  };
}

async function hostReport(): Promise<Record<string, unknown>> {
  const firstLine = async (file: string, args: string[]): Promise<string> => (await timedRun(file, args)).stdout.split('\n')[0]?.trim() ?? '';
  const cpuInfo = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  return {
    cpus: availableParallelism(),
    cpu_model: /^model name\s*:\s*(.*)$/m.exec(cpuInfo)?.[1] ?? 'unknown',
    kernel: release(),
    node: process.version,
    runc: await firstLine(RUNC_BINARY, ['--version']),
    podman: await firstLine(PODMAN_BINARY, ['--version']),
  };
}

main().catch((error: unknown) => {
  progress(`failed: ${error instanceof Error ? error.message : String(error)}`);
  // A signal already chose 128 + its number.
  if (process.exitCode === undefined || process.exitCode === 0) process.exitCode = 1;
});
