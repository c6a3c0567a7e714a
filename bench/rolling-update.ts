/**
 * Benchmark "rolling-update" (issue 9): in the lab, a service of N replicas with an HTTP health
 * check is updated from demo/web:v1 to v2, start-first, `parallelism` at a time, monitor 1 ms.
 * The reference, in the same run, is the update's critical path as the issue defines it:
 * ceil(N / parallelism) waves of one task's start-plus-healthy time (the p50 of the same new
 * tasks, measured from their own records). The ratio is update time / critical path; the goal is
 * <= 1.2. Also reported: the sum of each wave's slowest task (a pessimistic path: the updater
 * starts the next task as soon as any of a wave is done, so waves overlap).
 * Prints one JSON line; progress on stderr. Never asserts a speed.
 *
 *   node dist/bench/rolling-update.js [--replicas 100] [--parallelism 10]   (npm run bench:rolling)
 *
 * Needs root. Brings up its own lab (1 manager, 2 workers) and removes it on exit.
 */
import { applyUpdateFlags, noUpdateFlags, type UpdateFlags } from '../cli/commands/service-update.js';
import { specFromFlags } from '../cli/commands/service-flags.js';
import { withHealthFlags } from '../cli/commands/health-flags.js';
import type { Task } from '../proto/skiff/v1/objects.js';
import { TaskState } from '../proto/skiff/v1/types.js';
import { pollUntil, progress } from './bench-support.js';
import { hostFacts, waitRunning, withBenchLab } from './lab-bench.js';
import { summarize } from './stats.js';

const SERVICE = 'roll';

function option(argv: readonly string[], name: string, fallback: number, max: number): number {
  const index = argv.indexOf(`--${name}`);
  if (index < 0) return fallback;
  const value = Number(argv[index + 1]);
  if (!Number.isInteger(value) || value < 1 || value > max) throw new Error(`cannot parse --${name}: expected an integer in 1..${max}`);
  return value;
}

/** Creation to running (healthy) of each new task, from its own record. */
function startToHealthyMs(task: Task): number | undefined {
  if (task.status?.state !== TaskState.TASK_STATE_RUNNING) return undefined;
  return (task.status.timestampMs ?? 0) - (task.meta?.createdAtMs ?? 0);
}

/** Waves in creation order, `parallelism` tasks each; the critical path is the sum of each wave's slowest task. */
export function criticalPathMs(durationsInCreationOrder: readonly number[], parallelism: number): number {
  let total = 0;
  for (let start = 0; start < durationsInCreationOrder.length; start += parallelism) total += Math.max(...durationsInCreationOrder.slice(start, start + parallelism));
  return total;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const replicas = option(argv, 'replicas', 100, 500);
  const parallelism = option(argv, 'parallelism', 10, 500);
  const result = await withBenchLab({ prefix: 'ru', managers: 1, workers: 2 }, async (bench) => {
    const { connection } = bench;
    const base = withHealthFlags(specFromFlags('demo/web:v1', [], { name: SERVICE, replicas: String(replicas), env: [], label: [] }), { healthHttp: '80/index.html', healthInterval: '200ms' });
    const spec = { ...base, updateConfig: { parallelism, delayMs: 0, failureAction: 'pause', monitorMs: 1, maxFailureRatio: 0, order: 'start-first' } };
    progress(`creating ${SERVICE} with ${replicas} replicas`);
    await connection.call((c) => c.createService, { noResolveImage: false, spec });
    await waitRunning(connection, SERVICE, replicas, { intervalMs: 250, timeoutMs: 600_000 });
    const current = (await connection.call((c) => c.getService, { service: SERVICE })).service;
    if (current?.spec === undefined) throw new Error('cannot read the service back');
    const flags: UpdateFlags = { ...noUpdateFlags(), image: 'demo/web:v2' };
    progress(`updating ${SERVICE} to demo/web:v2, ${parallelism} at a time`);
    await connection.call((c) => c.updateService, { service: SERVICE, version: current.meta?.version ?? 0, spec: applyUpdateFlags(current.spec, flags), noResolveImage: false });
    const done = await pollUntil(
      'the update to complete',
      async () => {
        const service = (await connection.call((c) => c.getService, { service: SERVICE })).service;
        const state = service?.updateStatus?.state ?? '';
        if (state === 'paused' || state.startsWith('rollback')) throw new Error(`the update stopped: ${state}: ${service?.updateStatus?.message ?? ''}`);
        return state === 'completed' ? service : undefined;
      },
      { intervalMs: 250, timeoutMs: 900_000 },
    );
    const { tasks } = await connection.call((c) => c.listTasks, { service: SERVICE, node: '' });
    const fresh = tasks.filter((task) => task.specVersion === done.specVersion).sort((a, b) => (a.meta?.createdAtMs ?? 0) - (b.meta?.createdAtMs ?? 0));
    const durations = fresh.map(startToHealthyMs).filter((value): value is number => value !== undefined);
    if (durations.length < replicas) throw new Error(`only ${durations.length} of ${replicas} new tasks run`);
    const updateMs = (done.updateStatus?.completedAtMs ?? 0) - (done.updateStatus?.startedAtMs ?? 0);
    const perTask = summarize(durations);
    const pathMs = Math.ceil(replicas / parallelism) * perTask.p50_ms;
    return {
      bench: 'rolling-update',
      replicas,
      parallelism,
      update_ms: updateMs,
      critical_path_ms: Math.round(pathMs),
      slowest_per_wave_path_ms: criticalPathMs(durations, parallelism),
      ratio_update_over_critical_path: Math.round((updateMs / pathMs) * 100) / 100,
      task_start_to_healthy: perTask,
      host: await hostFacts(),
    };
  });
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

if (process.argv[1]?.endsWith('rolling-update.js')) {
  main().catch((error: unknown) => {
    process.stderr.write(`rolling-update: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
