/**
 * The Skiff measurement: wall time from spawning `skiff service create --detach --replicas 1` to
 * the control API listing the task as running, on a lab host where the image is already pulled
 * and unpacked. The task state is polled with ListTasks over the CLI's own mTLS connection every
 * POLL_INTERVAL_MS, in parallel with the CLI. The agent's share comes from the host's skiffd.log:
 * its "task state" lines (accepted -> running) and the runtime's "created -> running" line, which
 * skiffd logs only with SKIFF_TRACE=runtime (see RUNTIME_TRACE).
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { ControlConnection } from '../cli/client.js';
import { repositoryRoot } from '../deploy/lab/daemons.js';
import type { LabHost } from '../deploy/lab/index.js';
import { TaskState } from '../proto/skiff/v1/types.js';
import { checkNotStopping, pollUntil, progress, runOrThrow, timedRun, type CleanupStack } from './bench-support.js';
import { RUNC_BINARY } from './runc-start.js';

/** How often the task list is polled; small so that polling adds little to the figure. */
export const POLL_INTERVAL_MS = 10;
/** How long one service may take to reach running, or to disappear after `rm`. */
export const CONVERGE_TIMEOUT_MS = 60_000;
/** SKIFF_TRACE component whose info lines carry the runtime's phase timings; the lab's skiffd inherits it. */
export const RUNTIME_TRACE = 'runtime';
/** Where skiffd writes its structured log, in the host's data directory (deploy/lab/daemons.ts). */
const SKIFFD_LOG_FILE = 'skiffd.log';

/** One Skiff run. The agent figures are undefined when the log lines were not found. */
export interface SkiffSample {
  /** Spawn of the CLI -> ListTasks shows the task running. */
  runningMs: number;
  /** Spawn of the CLI -> the CLI (with --detach) exited. */
  cliExitMs: number;
  /** Agent log: "... -> accepted" to "... -> running" for the task (1 ms log resolution). */
  agentMs: number | undefined;
  /** Runtime log: container record created -> `runc start` done (startLatencyMs). */
  runtimeMs: number | undefined;
  /** Runtime phases (bundle, create under conmon, network, start) as logged by skiffd. */
  runtimePhasesMs: Record<string, number> | undefined;
}

export interface SkiffMeasureOptions {
  connection: ControlConnection;
  /** The one lab host (1 manager, 0 workers): every task lands here. */
  host: LabHost;
  image: string;
  /** Environment for the CLI (SKIFF_HOME of the bench's private context). */
  env: NodeJS.ProcessEnv;
  cleanups: CleanupStack;
}

/** Path of the `skiff` launcher in this repository (runs dist/cli/skiff.js). */
export function skiffBinary(): string {
  return join(repositoryRoot(), 'bin', 'skiff');
}

/** Pulls and unpacks the image on the host through one full create/rm of `bench-warm`. */
export async function warmSkiff(options: SkiffMeasureOptions): Promise<void> {
  progress(`skiff: warming ${options.host.name} with ${options.image}`);
  await runOrThrow('create the warm-up service', skiffBinary(), ['service', 'create', '--name', 'bench-warm', '--replicas', '1', options.image], { env: options.env, timeoutMs: CONVERGE_TIMEOUT_MS });
  await removeService(options, 'bench-warm');
}

/** Times one service start (`bench-<run>`) and removes the service again. */
export async function sampleSkiff(options: SkiffMeasureOptions, run: number): Promise<SkiffSample> {
  checkNotStopping();
  const name = `bench-${run}`;
  options.cleanups.push(`skiff service ${name}`, () => removeService(options, name).catch(() => undefined));
  const sample = await runOnce(options, name);
  await removeService(options, name);
  const agent = sample.agentMs === undefined ? '' : `, agent ${sample.agentMs} ms, runtime ${String(sample.runtimeMs)} ms`;
  progress(`skiff run ${run}: running after ${sample.runningMs.toFixed(1)} ms (CLI exited ${sample.cliExitMs.toFixed(1)} ms${agent})`);
  return sample;
}

async function runOnce(options: SkiffMeasureOptions, name: string): Promise<SkiffSample> {
  const logPath = join(options.host.dataDir, SKIFFD_LOG_FILE);
  const logOffset = (await stat(logPath)).size;
  let startedAt = 0;
  let cliFailure: string | undefined;
  const cli = timedRun(skiffBinary(), ['service', 'create', '--detach', '--name', name, '--replicas', '1', options.image], {
    env: options.env,
    timeoutMs: CONVERGE_TIMEOUT_MS,
    onSpawn: (at) => (startedAt = at),
  }).then((result) => {
    if (result.exitCode !== 0) cliFailure = `skiff service create exited ${result.exitCode}: ${result.stderr.trim()}`;
    return result;
  });
  const seen = await pollUntil(
    `see service ${name} running`,
    async () => {
      if (cliFailure !== undefined) throw new Error(`cannot create service ${name}: ${cliFailure}`);
      const tasks = await options.connection.call((client) => client.listTasks, { service: name, node: '' }).then((response) => response.tasks, () => []);
      const task = tasks.find((candidate) => candidate.status?.state === TaskState.TASK_STATE_RUNNING);
      return task === undefined ? undefined : { taskId: task.meta?.id ?? '', at: performance.now() };
    },
    { intervalMs: POLL_INTERVAL_MS, timeoutMs: CONVERGE_TIMEOUT_MS },
  );
  const cliResult = await cli;
  if (cliFailure !== undefined) throw new Error(`cannot create service ${name}: ${cliFailure}`);
  const agent = agentFigures((await readFile(logPath)).subarray(logOffset).toString(), seen.taskId);
  return { runningMs: seen.at - startedAt, cliExitMs: cliResult.elapsedMs, ...agent };
}

/** Removes a service and waits until it has no task and its containers are gone from the host's runc. */
export async function removeService(options: Pick<SkiffMeasureOptions, 'connection' | 'host'>, name: string): Promise<void> {
  const { tasks } = await options.connection.call((client) => client.listTasks, { service: name, node: '' });
  const containerIds = new Set(tasks.map((task) => task.meta?.id ?? ''));
  await options.connection.call((client) => client.removeService, { service: name });
  await pollUntil(
    `see the containers of service ${name} gone`,
    async () => {
      // `runc list` fails when a container's state directory goes away while it reads it: try again.
      const listed = await timedRun(RUNC_BINARY, ['--root', options.host.runcRoot, 'list', '--format', 'json']);
      if (listed.exitCode !== 0) return undefined;
      const ids = ((JSON.parse(listed.stdout) as Array<{ id: string }> | null) ?? []).map((container) => container.id);
      return ids.some((id) => containerIds.has(id)) ? undefined : true;
    },
    { intervalMs: POLL_INTERVAL_MS, timeoutMs: CONVERGE_TIMEOUT_MS },
  );
}

/** One structured skiffd log line, as far as this benchmark reads it. */
interface LogRecord {
  time?: string;
  /** The agent's logger writes `msg`; the runtime's default logger writes `message`. */
  msg?: string;
  message?: string;
  taskId?: string;
  containerId?: string;
  transition?: string;
  startLatencyMs?: number;
  phaseMs?: Record<string, number>;
}

/** The agent's and the runtime's share of a task's start, from skiffd log text. */
export function agentFigures(logText: string, taskId: string): Pick<SkiffSample, 'agentMs' | 'runtimeMs' | 'runtimePhasesMs'> {
  let acceptedAt: number | undefined;
  let runningAt: number | undefined;
  let runtime: LogRecord | undefined;
  for (const line of logText.split('\n')) {
    if (!line.includes(taskId)) continue;
    let record: LogRecord;
    try {
      record = JSON.parse(line) as LogRecord;
    } catch {
      continue; // a line that is not ours (e.g. a child's output) or was cut
    }
    const at = record.time === undefined ? Number.NaN : Date.parse(record.time);
    if (record.msg === 'task state' && record.taskId === taskId) {
      if (record.transition?.endsWith('-> accepted') === true) acceptedAt = at;
      if (record.transition?.endsWith('-> running') === true) runningAt = at;
    }
    if ((record.msg ?? record.message) === 'created -> running' && record.containerId === taskId) runtime = record;
  }
  const agentMs = acceptedAt !== undefined && runningAt !== undefined && Number.isFinite(runningAt - acceptedAt) ? runningAt - acceptedAt : undefined;
  return { agentMs, runtimeMs: runtime?.startLatencyMs, runtimePhasesMs: runtime?.phaseMs };
}
