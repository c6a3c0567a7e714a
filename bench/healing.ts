/**
 * Benchmark "healing" (issue 6): in the lab, kill -9 a worker host's skiffd and every one of its
 * containers, then time until every task it had runs elsewhere. The reference, in the same run,
 * is the floor the design sets: the heartbeat deadline (HEARTBEAT_MISSES periods) after which a
 * silent node is declared down. Prints one JSON line; progress on stderr. Never asserts a speed.
 *
 *   node dist/bench/healing.js [--runs N]      (npm run bench:healing -- --runs N)
 *
 * Needs root. Brings up its own lab (1 manager, 2 workers) with a private SKIFF_HOME and removes
 * it on exit. Between runs the killed host comes back and the service is rebalanced onto it.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type ControlConnection } from '../cli/client.js';
import { specFromFlags } from '../cli/commands/service-flags.js';
import { labDown, labKill, labStart, labUp } from '../deploy/lab/index.js';
import { DEFAULT_HEARTBEAT_PERIOD_MS, HEARTBEAT_MISSES } from '../manager/dispatcher/dispatcher.js';
import { NodeState, TaskState } from '../proto/skiff/v1/types.js';
import { CleanupStack, pollUntil, progress, randomName } from './bench-support.js';
import { summarize } from './stats.js';

const REPLICAS = 6;
const VICTIM = 'h3';

function parseRuns(argv: readonly string[]): number {
  if (argv.length === 0) return 3;
  const runs = Number(argv[0] === '--runs' ? argv[1] : argv[0]?.replace('--runs=', ''));
  if (!Number.isInteger(runs) || runs < 1 || runs > 50) throw new Error('cannot parse --runs: expected an integer in 1..50');
  return runs;
}

/** Running tasks of `web` by node id. */
async function runningByNode(connection: ControlConnection): Promise<Map<string, number>> {
  const { tasks } = await connection.call((c) => c.listTasks, { service: 'web', node: '' });
  const counts = new Map<string, number>();
  for (const task of tasks) {
    if (task.desiredState === TaskState.TASK_STATE_RUNNING && task.status?.state === TaskState.TASK_STATE_RUNNING) counts.set(task.nodeId, (counts.get(task.nodeId) ?? 0) + 1);
  }
  return counts;
}

async function main(): Promise<void> {
  const runs = parseRuns(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new Error('cannot run the healing benchmark: it needs root (lab namespaces, runc)');
  const labName = `bh${randomName(6)}`;
  const cleanups = new CleanupStack();
  const home = await mkdtemp(join(tmpdir(), 'skiff-bench-healing-'));
  process.env['SKIFF_HOME'] = home;
  cleanups.push('remove the bench CLI home', () => rm(home, { recursive: true, force: true }));
  let connection: ControlConnection | undefined;
  try {
    cleanups.push(`remove lab ${labName}`, () => labDown(labName).then(() => undefined));
    await labUp({ name: labName, managers: 1, workers: 2 });
    connection = await connect(undefined);
    const nodes = (await connection.call((c) => c.listNodes, {})).nodes;
    const victimId = nodes.find((node) => node.description?.hostname === VICTIM)?.meta?.id ?? '';
    await connection.call((c) => c.createService, { noResolveImage: false, spec: specFromFlags('demo/web:v1', [], { name: 'web', replicas: String(REPLICAS), env: [], label: [] }) });
    const samples: number[] = [];
    for (let run = 1; run <= runs; run += 1) {
      await pollUntil('the service spread with tasks on the victim', async () => {
        const counts = await runningByNode(connection!);
        const total = [...counts.values()].reduce((sum, count) => sum + count, 0);
        return total === REPLICAS && (counts.get(victimId) ?? 0) > 0 ? counts : undefined;
      }, { intervalMs: 50, timeoutMs: 120_000 });
      const started = performance.now();
      await labKill(labName, VICTIM);
      await pollUntil('every task running elsewhere', async () => {
        const counts = await runningByNode(connection!);
        const elsewhere = [...counts].filter(([node]) => node !== victimId).reduce((sum, [, count]) => sum + count, 0);
        return elsewhere === REPLICAS ? true : undefined;
      }, { intervalMs: 20, timeoutMs: 120_000 });
      const healed = performance.now() - started;
      samples.push(healed);
      progress(`run ${run}: healed in ${healed.toFixed(0)} ms`);
      await labStart(labName, VICTIM);
      await pollUntil('the victim ready again', async () => ((await connection!.call((c) => c.listNodes, {})).nodes.some((node) => node.meta?.id === victimId && node.status?.state === NodeState.NODE_STATE_READY) ? true : undefined), { intervalMs: 50, timeoutMs: 60_000 });
      await connection.call((c) => c.rebalanceService, { service: 'web' });
    }
    process.stdout.write(
      `${JSON.stringify({
        bench: 'healing',
        runs,
        replicas: REPLICAS,
        cpus: availableParallelism(),
        healMs: summarize(samples),
        reference: { heartbeatDeadlineMs: HEARTBEAT_MISSES * DEFAULT_HEARTBEAT_PERIOD_MS },
      })}\n`,
    );
  } finally {
    connection?.close();
    await cleanups.runAll();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench healing: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
