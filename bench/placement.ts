/**
 * Benchmark "placement" (issue 6, benchmarks 1 and 3): S services × R replicas placed onto N
 * simulated nodes (bench/sim: real dispatcher sessions over mutual TLS, a fake runtime) by three
 * real managers, against a reference in the same invocation: the same S × R task objects
 * committed by a second, fresh three-manager cluster with no agent and no scheduler (skiffd's
 * hidden --simulation-no-scheduler), where the orchestrator creates every task and nothing else
 * writes. Also each manager's RSS once every task
 * is placed. Prints one JSON line on stdout; progress goes to stderr. Never asserts a speed.
 *
 *   node dist/bench/placement.js [--nodes 1000] [--services 100] [--replicas 1000] [--timeout-s 600] [--logs DIR] [--paced] [--cpu-prof DIR]
 *
 * --cpu-prof DIR runs every skiffd under `node --cpu-prof`; the profiles land in DIR when they stop.
 * --paced creates one service at a time, each once the previous one's tasks are committed
 * (reference) or assigned (placement), instead of all at once (see Workload.paced).
 * --logs DIR keeps a copy of every manager's log in DIR (the scratch directory itself always goes).
 *
 * placement_ms runs from the first CreateService until the fleet holds every task (a task reaches
 * an agent only after the scheduler's write committed, with its node id and ASSIGNED); reference_ms
 * from the first CreateService until ListServices counts every task (its `tasks`). Every process and the scratch
 * directory are gone on exit, on failure and on SIGINT/SIGTERM.
 *
 * cpu_s gives the CPU seconds each process used over each timed phase ("bench" is this process,
 * which holds the simulated fleet): on a small machine the processes compete for the same cores,
 * so the CPU a phase costs explains its wall time. assignment_messages counts the Assignments
 * messages the fleet received while placing.
 */
import { copyFile, mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { availableParallelism, loadavg, release, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { CleanupStack, checkNotStopping, progress, randomName } from './bench-support.js';
import { cpuUsedSince } from './proc-memory.js';
import { residentBytes, startSimCluster, type SimCluster } from './sim/cluster.js';
import { issueWorkerCredentials, MAX_SIMULATED_NODES, startFleet } from './sim/fleet.js';
import { createServices, PACED_WAIT, waitForCount, waitForRunning, waitForTasksCommitted, type Workload } from './sim/workload.js';
import { ratio, roundMs } from './stats.js';

const DEFAULTS = { nodes: 1_000, services: 100, replicas: 1_000, timeoutSeconds: 600, logDir: undefined, cpuProfileDir: undefined, paced: false };
const MAX_SERVICES = 10_000;
const MAX_REPLICAS = 100_000;
const MAX_TIMEOUT_SECONDS = 3_600;
const RUN_ID_LENGTH = 6;
const MIB = 1024 * 1024;

export interface PlacementArguments extends Workload {
  nodes: number;
  timeoutSeconds: number;
  /** Where to copy the managers' logs before the scratch directory goes (not copied if undefined). */
  logDir: string | undefined;
  /** Runs every skiffd under `node --cpu-prof`, profiles written here when they stop. */
  cpuProfileDir: string | undefined;
}

/** Parses the flags; throws "cannot parse ..." naming the flag on bad input. */
export function parseArguments(argv: readonly string[]): PlacementArguments {
  const parsed: PlacementArguments = { ...DEFAULTS };
  const limits: Record<string, { key: 'services' | 'replicas' | 'nodes' | 'timeoutSeconds'; max: number }> = {
    '--nodes': { key: 'nodes', max: MAX_SIMULATED_NODES },
    '--services': { key: 'services', max: MAX_SERVICES },
    '--replicas': { key: 'replicas', max: MAX_REPLICAS },
    '--timeout-s': { key: 'timeoutSeconds', max: MAX_TIMEOUT_SECONDS },
  };
  for (let index = 0; index < argv.length; index += 1) {
    const argument = argv[index] ?? '';
    const equals = argument.indexOf('=');
    const flag = argument.startsWith('--') && equals > 0 ? argument.slice(0, equals) : argument;
    const limit = limits[flag];
    if (flag === '--paced') {
      parsed.paced = true;
      continue;
    }
    if (limit === undefined && flag !== '--logs' && flag !== '--cpu-prof') throw new Error(`cannot parse arguments: unknown argument ${JSON.stringify(argument)} (usage: placement [--nodes N] [--services S] [--replicas R] [--timeout-s T] [--logs DIR] [--paced] [--cpu-prof DIR])`);
    const text = equals > 0 && argument.startsWith('--') ? argument.slice(equals + 1) : argv[(index += 1)] ?? '';
    if (limit === undefined) {
      if (text === '') throw new Error(`cannot parse ${flag}: expected a directory`);
      if (flag === '--logs') parsed.logDir = resolve(text);
      else parsed.cpuProfileDir = resolve(text);
      continue;
    }
    const value = Number(text);
    if (!Number.isInteger(value) || value < 1 || value > limit.max) throw new Error(`cannot parse ${flag}: expected an integer in 1..${limit.max}, got ${JSON.stringify(text)}`);
    parsed[limit.key] = value;
  }
  return parsed;
}

const mebibytes = (byName: Record<string, number>): Record<string, number> => Object.fromEntries(Object.entries(byName).map(([name, bytes]) => [name, Math.round(bytes / MIB)]));

const profiling = (args: PlacementArguments): { cpuProfileDir?: string } => (args.cpuProfileDir === undefined ? {} : { cpuProfileDir: args.cpuProfileDir });

/**
 * The reference: a fresh cluster with no agent and no scheduler commits every task. Without the
 * scheduler switched off it would also write a pending reason to every task ("no nodes in the
 * cluster"), a second write per task that is not part of a bare commit.
 */
async function runReference(args: PlacementArguments, workDir: string, cleanups: CleanupStack): Promise<{ ms: number; createMs: number; rssMiB: Record<string, number>; cpuS: Record<string, number> }> {
  const cluster = await startSimCluster({ workDir, label: 'reference', cleanups, extraFlags: ['--simulation-no-scheduler'], ...profiling(args) });
  try {
    const leader = await cluster.leader();
    progress(`reference: leader ${leader.name}; creating ${args.services} × ${args.replicas} tasks, no agent`);
    const cpuBefore = await phaseCpu(cluster);
    const startedAt = performance.now();
    const timeoutMs = args.timeoutSeconds * 1000;
    const ids = await createServices(leader, args, (_, id) => waitForTasksCommitted(leader, [id], args, timeoutMs, PACED_WAIT.intervalMs));
    const createMs = performance.now() - startedAt;
    await waitForTasksCommitted(leader, ids, args, args.timeoutSeconds * 1000);
    const ms = performance.now() - startedAt;
    progress(`reference: every task committed after ${roundMs(ms)} ms`);
    const cpuS = cpuUsedSince(cpuBefore, await phaseCpu(cluster));
    return { ms, createMs, rssMiB: mebibytes(await cluster.residentBytes()), cpuS };
  } finally {
    await cluster.stop();
  }
}

interface PlacementResult {
  ms: number;
  createMs: number;
  runningMs: number;
  leader: string;
  rssMiBPlaced: Record<string, number>;
  rssMiBRunning: Record<string, number>;
  simulatorRssMiB: number;
  sessionsStarted: number;
  /** CPU seconds each process used from the first CreateService until every task was assigned. */
  cpuS: Record<string, number>;
  /** Assignments messages the fleet received over the same span. */
  assignmentMessages: number;
}

async function runPlacement(args: PlacementArguments, workDir: string, cleanups: CleanupStack): Promise<PlacementResult> {
  const cluster: SimCluster = await startSimCluster({ workDir, label: 'placement', cleanups, ...profiling(args) });
  const leader = await cluster.leader();
  progress(`placement: issuing ${args.nodes} worker certificates from the cluster CA`);
  const credentials = await issueWorkerCredentials(cluster.ca, args.nodes);
  checkNotStopping();
  const managers = [leader.addr, ...cluster.managers.filter((manager) => manager !== leader).map((manager) => manager.addr)];
  const fleet = await startFleet({ credentials, managers });
  cleanups.push('simulated agents', async () => fleet.close());
  try {
    const total = args.services * args.replicas;
    progress(`placement: leader ${leader.name}; creating ${args.services} × ${args.replicas} tasks onto ${args.nodes} nodes`);
    const cpuBefore = await phaseCpu(cluster);
    const messagesBefore = fleet.assignmentsReceived();
    const startedAt = performance.now();
    const timeoutMs = args.timeoutSeconds * 1000;
    const ids = await createServices(leader, args, (index) => waitForCount(`tasks of service ${index + 1} assigned`, () => fleet.assignedToRun(), (index + 1) * args.replicas, timeoutMs, PACED_WAIT.intervalMs));
    const createMs = performance.now() - startedAt;
    await waitForCount('tasks assigned (as the fleet holds them)', () => fleet.assignedToRun(), total, args.timeoutSeconds * 1000);
    const ms = performance.now() - startedAt;
    progress(`placement: every task assigned after ${roundMs(ms)} ms`);
    const cpuS = cpuUsedSince(cpuBefore, await phaseCpu(cluster));
    const assignmentMessages = fleet.assignmentsReceived() - messagesBefore;
    const rssMiBPlaced = mebibytes(await cluster.residentBytes());
    await waitForRunning(leader, ids, args, args.timeoutSeconds * 1000);
    const runningMs = performance.now() - startedAt;
    progress(`placement: every task running after ${roundMs(runningMs)} ms`);
    return {
      ms,
      createMs,
      runningMs,
      leader: leader.name,
      rssMiBPlaced,
      rssMiBRunning: mebibytes(await cluster.residentBytes()),
      simulatorRssMiB: Math.round((await residentBytes(process.pid)) / MIB),
      sessionsStarted: fleet.sessionsStarted(),
      cpuS,
      assignmentMessages,
    };
  } finally {
    fleet.close();
    await cluster.stop();
  }
}

/**
 * CPU seconds used so far by each manager and by this process (the simulated fleet, the bench's
 * own polling), keyed m1.. and "bench": on two cores, what a phase costs in CPU says more than
 * its wall time when every process competes for them.
 */
async function phaseCpu(cluster: SimCluster): Promise<Record<string, number>> {
  const own = process.cpuUsage();
  return { ...(await cluster.cpuSeconds()), bench: (own.user + own.system) / 1e6 };
}

async function main(): Promise<void> {
  const args = parseArguments(process.argv.slice(2));
  const workDir = join(tmpdir(), `skiff-bench-placement-${randomName(RUN_ID_LENGTH)}`);
  const cleanups = new CleanupStack();
  cleanups.installSignalHandlers();
  // Pushed first, so it runs last, after every process that writes there has stopped.
  cleanups.push('scratch directory', () => rm(workDir, { recursive: true, force: true }));
  const logDir = args.logDir;
  // Runs once the managers stopped (pushed earlier), before the scratch directory goes.
  if (logDir !== undefined) cleanups.push('copy of the manager logs', () => copyLogs(workDir, logDir));
  try {
    await mkdir(workDir, { recursive: true });
    if (args.cpuProfileDir !== undefined) await mkdir(args.cpuProfileDir, { recursive: true });
    const loadBefore = loadavg();
    progress(`scratch ${workDir}; load average ${loadBefore.map((value) => value.toFixed(2)).join(' ')}`);
    const reference = await runReference(args, workDir, cleanups);
    checkNotStopping();
    const placement = await runPlacement(args, workDir, cleanups);
    const report = {
      bench: 'placement',
      nodes: args.nodes,
      services: args.services,
      replicas: args.replicas,
      tasks: args.services * args.replicas,
      managers: 3,
      paced: args.paced,
      placement_ms: roundMs(placement.ms),
      reference_ms: roundMs(reference.ms),
      ratio: ratio(placement.ms, reference.ms),
      running_ms: roundMs(placement.runningMs),
      create_calls_ms: { placement: roundMs(placement.createMs), reference: roundMs(reference.createMs) },
      leader: placement.leader,
      manager_rss_mib: placement.rssMiBPlaced,
      manager_rss_mib_running: placement.rssMiBRunning,
      reference_manager_rss_mib: reference.rssMiB,
      simulator_rss_mib: placement.simulatorRssMiB,
      // CPU seconds per process over each timed phase ("bench" holds the simulated fleet).
      cpu_s: { placement: placement.cpuS, reference: reference.cpuS },
      assignment_messages: placement.assignmentMessages,
      sessions_started: placement.sessionsStarted,
      host: await hostReport(loadBefore),
    };
    process.stdout.write(`${JSON.stringify(report)}\n`);
  } finally {
    await cleanups.runAll();
  }
}

async function copyLogs(workDir: string, logDir: string): Promise<void> {
  await mkdir(logDir, { recursive: true });
  for (const name of await readdir(workDir)) if (name.endsWith('.log')) await copyFile(join(workDir, name), join(logDir, name));
  progress(`manager logs copied to ${logDir}`);
}

async function hostReport(loadBefore: number[]): Promise<Record<string, unknown>> {
  const cpuInfo = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  const round = (values: number[]): number[] => values.map((value) => Math.round(value * 100) / 100);
  return {
    cpus: availableParallelism(),
    cpu_model: /^model name\s*:\s*(.*)$/m.exec(cpuInfo)?.[1] ?? 'unknown',
    kernel: release(),
    node: process.version,
    loadavg_before: round(loadBefore),
    loadavg_after: round(loadavg()),
  };
}

main().catch((error: unknown) => {
  progress(`failed: ${error instanceof Error ? error.message : String(error)}`);
  // A signal already chose 128 + its number.
  if (process.exitCode === undefined || process.exitCode === 0) process.exitCode = 1;
});
