/**
 * Benchmark "bluegreen-switch" (issue 9): time from the last green task becoming healthy to every
 * lab host serving green through the routing mesh. Each host's published port is requested back
 * to back by its own client; a host counts as switched at its first answer from the new version
 * after which no old answer comes. The start of the clock is the newest RUNNING (healthy) report
 * among the green tasks, from their own records (the same machine's clock). Goal: p50 <= 200 ms.
 * Prints one JSON line; progress on stderr. Never asserts a speed.
 *
 *   node dist/bench/bluegreen-switch.js [--runs 5]      (npm run bench:bluegreen)
 *
 * Needs root. Brings up its own lab (1 manager, 2 workers) and removes it on exit.
 */
import { applyUpdateFlags, noUpdateFlags, type UpdateFlags } from '../cli/commands/service-update.js';
import { specFromFlags } from '../cli/commands/service-flags.js';
import { withHealthFlags } from '../cli/commands/health-flags.js';
import { TaskState } from '../proto/skiff/v1/types.js';
import { pollUntil, progress } from './bench-support.js';
import { hostFacts, waitRunning, withBenchLab } from './lab-bench.js';
import { summarize } from './stats.js';

const SERVICE = 'bg';
const PORT = 8080;
const REPLICAS = 3;

interface Answer {
  atMs: number;
  version: string;
}

/** Requests `url` until stopped; the version of every answer, with the wall time it arrived. */
function hammer(url: string): { answers: Answer[]; stop: () => Promise<void> } {
  const answers: Answer[] = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const body = await fetch(url, { signal: AbortSignal.timeout(2_000), headers: { connection: 'close' } }).then((response) => response.text(), () => '');
      answers.push({ atMs: Date.now(), version: /demo\/web:(v\d+)/.exec(body)?.[1] ?? '' });
    }
  })();
  return {
    answers,
    stop: async () => {
      stopped = true;
      await loop;
    },
  };
}

/** When the host switched: the first `version` answer after the last answer of any other version. */
export function switchedAtMs(answers: readonly Answer[], version: string): number | undefined {
  let lastOther = -1;
  answers.forEach((answer, index) => {
    if (answer.version !== version && answer.version !== '') lastOther = index;
  });
  return answers.slice(lastOther + 1).find((answer) => answer.version === version)?.atMs;
}

function parseRuns(argv: readonly string[]): number {
  const index = argv.indexOf('--runs');
  if (index < 0) return 5;
  const runs = Number(argv[index + 1]);
  if (!Number.isInteger(runs) || runs < 1 || runs > 50) throw new Error('cannot parse --runs: expected an integer in 1..50');
  return runs;
}

async function main(): Promise<void> {
  const runs = parseRuns(process.argv.slice(2));
  const result = await withBenchLab({ prefix: 'bg', managers: 1, workers: 2 }, async (bench) => {
    const { connection } = bench;
    const base = withHealthFlags(specFromFlags('demo/web:v1', [], { name: SERVICE, replicas: String(REPLICAS), env: [], label: [], publish: [`${PORT}:80`] }), { healthHttp: '80/index.html', healthInterval: '200ms' });
    await connection.call((c) => c.createService, { noResolveImage: false, spec: { ...base, deployStrategy: 'blue-green', bluegreenHoldMs: 1_000 } });
    await waitRunning(connection, SERVICE, REPLICAS, { intervalMs: 200, timeoutMs: 300_000 });
    const urls = bench.lab.hosts.map((host) => `http://${host.addr}:${PORT}/`);
    const samples: number[] = [];
    let version = 'v1';
    for (let run = 1; run <= runs; run += 1) {
      const next = version === 'v1' ? 'v2' : 'v1';
      const clients = urls.map(hammer);
      await pollUntil('every host answers', async () => (clients.every((client) => client.answers.some((answer) => answer.version === version)) ? true : undefined), { intervalMs: 20, timeoutMs: 30_000 });
      const current = (await connection.call((c) => c.getService, { service: SERVICE })).service;
      if (current?.spec === undefined) throw new Error('cannot read the service back');
      const flags: UpdateFlags = { ...noUpdateFlags(), image: `demo/web:${next}` };
      progress(`run ${run}: ${version} -> ${next}`);
      await connection.call((c) => c.updateService, { service: SERVICE, version: current.meta?.version ?? 0, spec: applyUpdateFlags(current.spec, flags), noResolveImage: false });
      const hostsSwitched = await pollUntil(
        `every host serving ${next}`,
        async () => {
          const times = clients.map((client) => switchedAtMs(client.answers, next));
          const latest = Math.max(...times.map((time) => time ?? Number.POSITIVE_INFINITY));
          // Settled: each host has answered only `next` for a while after its switch.
          return Number.isFinite(latest) && Date.now() - latest > 500 ? latest : undefined;
        },
        { intervalMs: 50, timeoutMs: 120_000 },
      );
      for (const client of clients) await client.stop();
      const service = (await connection.call((c) => c.getService, { service: SERVICE })).service;
      const { tasks } = await connection.call((c) => c.listTasks, { service: SERVICE, node: '' });
      const green = tasks.filter((task) => task.specVersion === service?.specVersion && task.status?.state === TaskState.TASK_STATE_RUNNING);
      const lastHealthyMs = Math.max(...green.map((task) => task.status?.timestampMs ?? 0));
      samples.push(hostsSwitched - lastHealthyMs);
      await pollUntil('the hold to end', async () => ((await connection.call((c) => c.getService, { service: SERVICE })).service?.updateStatus?.state === 'completed' ? true : undefined), { intervalMs: 200, timeoutMs: 120_000 });
      version = next;
    }
    const summary = summarize(samples);
    return { bench: 'bluegreen-switch', runs, hosts: urls.length, last_green_healthy_to_every_host_switched: summary, goal_p50_ms: 200, met: summary.p50_ms <= 200, host: await hostFacts() };
  });
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

if (process.argv[1]?.endsWith('bluegreen-switch.js')) {
  main().catch((error: unknown) => {
    process.stderr.write(`bluegreen-switch: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
