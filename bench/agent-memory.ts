/**
 * Benchmark "agent-memory" (issue 7): the resident memory of a worker's skiffd (agent only, no
 * manager role) with 0 and with 50 containers, against references measured in the same run: the
 * 50 conmon monitors of those containers, and a bare `node` process. Goal: <= 60 MB with 50, read
 * as 60,000,000 bytes (57.2 MiB), the stricter reading; the figures are printed in bytes and MiB.
 * Prints one JSON line on stdout; progress goes to stderr.
 *
 *   node dist/bench/agent-memory.js [--replicas R] [--settle-s S]      (npm run bench:agent-memory -- ...)
 *
 * Needs root. Brings up its own lab (1 manager h1, 1 worker h2), pins a service of R replicas to h2
 * with `--constraint node.hostname==h2`, and removes the lab, its containers, mounts, cgroups and
 * scratch directory on exit, failure and SIGINT/SIGTERM.
 */
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import type { LabHost } from '../deploy/lab/index.js';
import { parseIntegerFlags } from './args.js';
import { checkNotStopping, progress, runOrThrow } from './bench-support.js';
import { DEMO_IMAGE, hostFacts, waitRunning, warmHost, withBenchLab } from './lab-bench.js';
import { findProcesses, kibToMib, processMemory, type ProcessMemory } from './proc-memory.js';
import { removeService, skiffBinary } from './skiff-start.js';

const FLAGS = {
  replicas: { default: 50, min: 1, max: 200 },
  'settle-s': { default: 10, min: 1, max: 600 },
};
const USAGE = 'agent-memory [--replicas R] [--settle-s S]';
/** Issue 7's goal for the agent's RSS with 50 containers: 60 MB, in bytes (decimal megabytes). */
export const GOAL_BYTES = 60_000_000;
/** How often memory is sampled while settling. */
const SAMPLE_INTERVAL_MS = 1_000;
const FILL_TIMEOUT_MS = 180_000;
const SERVICE = 'memory';

/** Memory of one process in MiB, for the report. */
interface MemoryReport {
  rss_bytes: number;
  rss_mib: number;
  rss_anon_mib?: number;
  rss_file_mib?: number;
  pss_mib?: number;
}

function toReport(memory: ProcessMemory): MemoryReport {
  return {
    rss_bytes: memory.rssKib * 1024,
    rss_mib: kibToMib(memory.rssKib),
    ...(memory.rssAnonKib === undefined ? {} : { rss_anon_mib: kibToMib(memory.rssAnonKib) }),
    ...(memory.rssFileKib === undefined ? {} : { rss_file_mib: kibToMib(memory.rssFileKib) }),
    ...(memory.pssKib === undefined ? {} : { pss_mib: kibToMib(memory.pssKib) }),
  };
}

async function main(): Promise<void> {
  const flags = parseIntegerFlags(process.argv.slice(2), FLAGS, USAGE);
  const replicas = flags.replicas;
  const settleMs = flags['settle-s'] * 1000;
  await withBenchLab({ prefix: 'bm', managers: 1, workers: 1 }, async (bench) => {
    const worker = bench.lab.hosts.find((host) => host.role === 'worker');
    if (worker === undefined) throw new Error('cannot benchmark: the lab has no worker');
    await warmHost(bench, worker, DEMO_IMAGE);
    const idle = await settledMemory(worker, settleMs, 'idle');

    bench.cleanups.push(`skiff service ${SERVICE}`, () => removeService({ connection: bench.connection, host: worker }, SERVICE).catch(() => undefined));
    const startedAt = performance.now();
    await runOrThrow('create the service', skiffBinary(), ['service', 'create', '--detach', '--name', SERVICE, '--replicas', String(replicas), '--constraint', `node.hostname==${worker.name}`, DEMO_IMAGE], { env: bench.env });
    await waitRunning(bench.connection, SERVICE, replicas, { intervalMs: 100, timeoutMs: FILL_TIMEOUT_MS });
    progress(`${replicas} replicas running on ${worker.name} after ${(performance.now() - startedAt).toFixed(0)} ms`);
    const loaded = await settledMemory(worker, settleMs, `${replicas} containers`);
    const conmon = await conmonMemory(worker);
    if (conmon.count !== replicas) progress(`warning: found ${conmon.count} conmon processes for ${replicas} containers`);
    await removeService({ connection: bench.connection, host: worker }, SERVICE);
    const bareNode = await bareNodeMemory();

    const report = {
      bench: 'agent-memory',
      replicas,
      settle_s: flags['settle-s'],
      skiffd_idle: idle,
      skiffd_loaded: loaded,
      conmon_total: { count: conmon.count, rss_mib: kibToMib(conmon.rssKib), pss_mib: kibToMib(conmon.pssKib) },
      bare_node: toReport(bareNode),
      goal: { rss_bytes_max: GOAL_BYTES, rss_mib_max: kibToMib(GOAL_BYTES / 1024), met: loaded.last.rss_bytes <= GOAL_BYTES },
      host: await hostFacts(),
    };
    process.stdout.write(`${JSON.stringify(report)}\n`);
  });
}

/** Samples the host's skiffd every second for `settleMs`; reports the last sample and the peak RSS. */
async function settledMemory(host: LabHost, settleMs: number, label: string): Promise<{ last: MemoryReport; peak_rss_bytes: number; peak_rss_mib: number }> {
  const deadline = performance.now() + settleMs;
  let last: ProcessMemory | undefined;
  let peakKib = 0;
  for (;;) {
    checkNotStopping();
    const sample = await processMemory(host.pid);
    if (sample === undefined) throw new Error(`cannot read the memory of ${host.name}'s skiffd (pid ${host.pid}): it has exited`);
    last = sample;
    peakKib = Math.max(peakKib, sample.rssKib);
    if (performance.now() >= deadline) break;
    await new Promise((resolve) => setTimeout(resolve, SAMPLE_INTERVAL_MS));
  }
  progress(`skiffd on ${host.name}, ${label}: RSS ${last.rssKib * 1024} bytes = ${kibToMib(last.rssKib)} MiB, PSS ${last.pssKib === undefined ? '?' : kibToMib(last.pssKib)} MiB (peak RSS ${kibToMib(peakKib)} MiB)`);
  return { last: toReport(last), peak_rss_bytes: peakKib * 1024, peak_rss_mib: kibToMib(peakKib) };
}

/** Total RSS and PSS of the conmon processes monitoring the host's containers. */
async function conmonMemory(host: LabHost): Promise<{ count: number; rssKib: number; pssKib: number }> {
  const pids = await findProcesses('conmon', `--root=${host.runcRoot}`);
  let rssKib = 0;
  let pssKib = 0;
  let count = 0;
  for (const pid of pids) {
    const memory = await processMemory(pid);
    if (memory === undefined) continue;
    count += 1;
    rssKib += memory.rssKib;
    pssKib += memory.pssKib ?? memory.rssKib;
  }
  return { count, rssKib, pssKib };
}

/** A bare `node` process (an idle timer, no modules loaded) after a second of life. */
async function bareNodeMemory(): Promise<ProcessMemory> {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  try {
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const memory = child.pid === undefined ? undefined : await processMemory(child.pid);
    if (memory === undefined) throw new Error('cannot measure a bare node process: it exited');
    return memory;
  } finally {
    child.kill('SIGKILL');
  }
}

main().catch((error: unknown) => {
  progress(`failed: ${error instanceof Error ? error.message : String(error)}`);
  if (process.exitCode === undefined || process.exitCode === 0) process.exitCode = 1;
});
