/**
 * What the lab-based benchmarks of issue 7 (fill-host, agent-memory) share: a private lab with a
 * unique name, SKIFF_HOME and cgroup parent under a scratch directory, a control connection, the
 * warm-up that pulls the demo image onto a host, a poll of the service's running tasks, and the
 * host facts every report carries. Everything is taken down on exit, failure and SIGINT/SIGTERM.
 */
import { mkdir, readFile, rm } from 'node:fs/promises';
import { availableParallelism, loadavg, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { connect, type ControlConnection } from '../cli/client.js';
import { labDown, labUp, type LabHost, type LabState } from '../deploy/lab/index.js';
import { removeCgroupTree } from '../agent/runtime/cgroups.js';
import { unmountAllUnder } from '../agent/runtime/rootfs.js';
import { TaskState } from '../proto/skiff/v1/types.js';
import { CleanupStack, pollUntil, progress, randomName, runOrThrow, timedRun } from './bench-support.js';
import { CONVERGE_TIMEOUT_MS, removeService, skiffBinary } from './skiff-start.js';

/** The demo image every lab registry holds (deploy/lab/lab-up.ts). */
export const DEMO_IMAGE = 'demo/web:v1';
/** Random part of the lab name (2-letter prefix + 6 = 8, the lab name limit). */
const RUN_ID_LENGTH = 6;

/** A lab brought up for one benchmark run. */
export interface BenchLab {
  runId: string;
  lab: LabState;
  workDir: string;
  /** Cgroup parent for references the benchmark runs itself, e.g. `/skiff-bench-<id>`. */
  cgroupRoot: string;
  connection: ControlConnection;
  cleanups: CleanupStack;
  /** Environment for the CLI (the bench's private SKIFF_HOME). */
  env: NodeJS.ProcessEnv;
}

/**
 * Brings up lab `<prefix><6 random>` with the given counts, runs `body`, and takes everything
 * down afterwards (also on failure and on SIGINT/SIGTERM). Needs root.
 */
export async function withBenchLab<T>(options: { prefix: string; managers: number; workers: number }, body: (bench: BenchLab) => Promise<T>): Promise<T> {
  if (process.getuid?.() !== 0) throw new Error('cannot run this benchmark: it needs root (lab namespaces, runc)');
  const runId = randomName(RUN_ID_LENGTH);
  const labName = `${options.prefix}${runId}`;
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
    cleanups.push(`lab ${labName}`, () => labDown(labName, progress));
    progress(`lab ${labName}: up (${options.managers} manager(s), ${options.workers} worker(s)), scratch ${workDir}`);
    const lab = await labUp({ name: labName, managers: options.managers, workers: options.workers, log: progress });
    const connection = await connect(undefined);
    cleanups.push('control connection', async () => connection.close());
    return await body({ runId, lab, workDir, cgroupRoot, connection, cleanups, env: process.env });
  } finally {
    await cleanups.runAll();
  }
}

/** Pulls and unpacks `image` on `host` through one full create/rm of a 1-replica service pinned there. */
export async function warmHost(bench: BenchLab, host: LabHost, image: string): Promise<void> {
  progress(`warming ${host.name} with ${image}`);
  const name = 'bench-warm';
  bench.cleanups.push(`skiff service ${name}`, () => removeService({ connection: bench.connection, host }, name).catch(() => undefined));
  await runOrThrow('create the warm-up service', skiffBinary(), ['service', 'create', '--name', name, '--replicas', '1', '--constraint', `node.hostname==${host.name}`, image], {
    env: bench.env,
    timeoutMs: CONVERGE_TIMEOUT_MS,
  });
  await removeService({ connection: bench.connection, host }, name);
}

/** Ids of the service's tasks that the manager lists as running, and how many tasks it has in all. */
export async function runningTasks(connection: ControlConnection, service: string): Promise<{ running: string[]; total: number }> {
  const tasks = await connection.call((client) => client.listTasks, { service, node: '' }).then((response) => response.tasks, () => []);
  const running = tasks.filter((task) => task.status?.state === TaskState.TASK_STATE_RUNNING).map((task) => task.meta?.id ?? '');
  return { running, total: tasks.length };
}

/** Polls until `replicas` tasks of `service` run; returns when (performance.now()) and their ids. */
export async function waitRunning(connection: ControlConnection, service: string, replicas: number, options: { intervalMs: number; timeoutMs: number; onFirst?: (at: number) => void; check?: () => void }): Promise<{ at: number; taskIds: string[] }> {
  let firstSeen = false;
  return pollUntil(
    `see ${replicas} tasks of service ${service} running`,
    async () => {
      options.check?.();
      const { running } = await runningTasks(connection, service);
      const at = performance.now();
      if (!firstSeen && running.length > 0) {
        firstSeen = true;
        options.onFirst?.(at);
      }
      return running.length >= replicas ? { at, taskIds: running } : undefined;
    },
    options,
  );
}

/** The machine facts every report carries. */
export async function hostFacts(): Promise<Record<string, unknown>> {
  const firstLine = async (file: string, args: string[]): Promise<string> => (await timedRun(file, args).catch(() => ({ stdout: '' }))).stdout.split('\n')[0]?.trim() ?? '';
  const cpuInfo = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  return {
    cpus: availableParallelism(),
    cpu_model: /^model name\s*:\s*(.*)$/m.exec(cpuInfo)?.[1] ?? 'unknown',
    kernel: release(),
    node: process.version,
    runc: await firstLine('runc', ['--version']),
    loadavg: loadavg().map((value) => Math.round(value * 100) / 100),
  };
}
