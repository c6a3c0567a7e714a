/**
 * Benchmark "raft" (issue 4): three skiffd managers against a three-member etcd 3.4 cluster, both
 * on loopback with mutual TLS and fsync, in the same run. N closed-loop clients write 256-byte
 * values to distinct keys (Skiff: UpdateService of one service per client through the Control
 * API; etcd: Put through the `etcd3` package), both to the leader. Then kill -9 of each leader and
 * the time until a write succeeds again. Each write series also reports `cpu_us_per_write`: the CPU
 * the leader, the followers together and this process (the clients) spent per acknowledged write.
 * Prints one JSON line on stdout; progress goes to stderr.
 *
 *   node dist/bench/raft.js [--seconds S] [--clients 1,16,128] [--reads] [--cpu-prof DIR]
 *
 * --reads adds, for each N, N closed-loop readers on the leader and then on a follower of each
 * system: Skiff GetService (linearizable: a ReadIndex round), etcd Get (linearizable, its
 * default), of the keys the writers wrote.
 *
 * --cpu-prof runs every skiffd under `node --cpu-prof` (profiles land in DIR when they stop) and
 * skips the failover, which would lose the killed leader's profile. Every process, port and the
 * scratch directory are gone on exit, on failure and on SIGINT/SIGTERM. Never asserts a speed.
 */
import { mkdir, readFile, rm } from 'node:fs/promises';
import { availableParallelism, loadavg, release, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { CleanupStack, checkNotStopping, progress, randomName } from './bench-support.js';
import { checkEtcdInstalled, startEtcdCluster, type EtcdCluster } from './raft-etcd-cluster.js';
import { measureFailover, runClosedLoop, type SeriesReport, type WriteOnce } from './raft-load.js';
import { startSkiffCluster, type SkiffCluster } from './raft-skiff-cluster.js';
import { ratio } from './stats.js';
import { cpuMicrosPerOperation, cpuSeconds } from './proc-memory.js';

export const DEFAULT_SECONDS = 10;
export const MAX_SECONDS = 600;
export const DEFAULT_CLIENTS: readonly number[] = [1, 16, 128];
/** Upper bound on one --clients entry: each client is one concurrent RPC and, for Skiff, one service. */
export const MAX_CLIENTS = 1_024;
const RUN_ID_LENGTH = 6;

export interface RaftArguments {
  seconds: number;
  clients: number[];
  cpuProfileDir: string | undefined;
  reads: boolean;
}

/** Parses the flags; throws "cannot parse ..." naming the flag on bad input. */
export function parseArguments(argv: readonly string[]): RaftArguments {
  const parsed: RaftArguments = { seconds: DEFAULT_SECONDS, clients: [...DEFAULT_CLIENTS], cpuProfileDir: undefined, reads: false };
  for (let index = 0; index < argv.length; index += 1) {
    const argument = argv[index] ?? '';
    const [flag, inline] = argument.startsWith('--') && argument.includes('=') ? [argument.slice(0, argument.indexOf('=')), argument.slice(argument.indexOf('=') + 1)] : [argument, undefined];
    const value = (): string => inline ?? argv[(index += 1)] ?? '';
    if (flag === '--seconds') {
      const text = value();
      parsed.seconds = Number(text);
      if (!Number.isInteger(parsed.seconds) || parsed.seconds < 1 || parsed.seconds > MAX_SECONDS) throw new Error(`cannot parse --seconds: expected an integer in 1..${MAX_SECONDS}, got ${JSON.stringify(text)}`);
    } else if (flag === '--clients') {
      const text = value();
      parsed.clients = text.split(',').map(Number);
      if (parsed.clients.length === 0 || parsed.clients.some((count) => !Number.isInteger(count) || count < 1 || count > MAX_CLIENTS)) {
        throw new Error(`cannot parse --clients: expected a comma-separated list of integers in 1..${MAX_CLIENTS}, got ${JSON.stringify(text)}`);
      }
    } else if (flag === '--reads' && inline === undefined) {
      parsed.reads = true;
    } else if (flag === '--cpu-prof') {
      const text = value();
      if (text === '') throw new Error('cannot parse --cpu-prof: expected a directory');
      parsed.cpuProfileDir = resolve(text);
    } else {
      throw new Error(`cannot parse arguments: unknown argument ${JSON.stringify(argument)} (usage: raft [--seconds S] [--clients 1,16,128] [--reads] [--cpu-prof DIR])`);
    }
  }
  return parsed;
}

/** One system's reads at one N on one member. */
interface ReadSeries {
  reads_per_s: number;
  p50_ms: number;
  p99_ms: number;
  reads: number;
  errors: number;
}

interface ReadRow {
  clients: number;
  member: 'leader' | 'follower';
  skiff: ReadSeries;
  etcd: ReadSeries;
  throughput_ratio: number | undefined;
  p50_ratio: number | undefined;
}

/**
 * A write series with the CPU each process spent per acknowledged write over it: the leader, the
 * two followers together, and this process (the clients); on two shared cores the CPU a write
 * costs bounds the throughput as much as any latency does.
 */
type WriteSeries = SeriesReport & { cpu_us_per_write: Record<string, number> };

interface ResultRow {
  clients: number;
  skiff: WriteSeries;
  etcd: WriteSeries;
  throughput_ratio: number | undefined;
  p50_ratio: number | undefined;
}

async function main(): Promise<void> {
  const args = parseArguments(process.argv.slice(2));
  const etcdVersion = await checkEtcdInstalled();
  const workDir = join(tmpdir(), `skiff-bench-raft-${randomName(RUN_ID_LENGTH)}`);
  const cleanups = new CleanupStack();
  cleanups.installSignalHandlers();
  // Pushed first, so it runs last, after every process that writes there has stopped.
  cleanups.push('scratch directory', () => rm(workDir, { recursive: true, force: true }));
  try {
    await mkdir(workDir, { recursive: true });
    if (args.cpuProfileDir !== undefined) await mkdir(args.cpuProfileDir, { recursive: true });
    const loadBefore = loadavg();
    progress(`scratch ${workDir}; load average ${loadBefore.map((value) => value.toFixed(2)).join(' ')}`);
    const skiff = await startSkiffCluster({ workDir, cleanups, ...(args.cpuProfileDir === undefined ? {} : { cpuProfileDir: args.cpuProfileDir }) });
    checkNotStopping();
    const etcd = await startEtcdCluster({ workDir, cleanups });
    checkNotStopping();
    const results = await measureThroughput(skiff, etcd, args);
    const reads = args.reads ? await measureReads(skiff, etcd, args) : undefined;
    const failover = args.cpuProfileDir === undefined ? await measureFailovers(skiff, etcd) : undefined;
    const report = {
      bench: 'raft',
      seconds: args.seconds,
      results,
      ...(reads === undefined ? {} : { reads }),
      failover_ms: failover ?? null,
      host: await hostReport(etcdVersion, loadBefore),
    };
    process.stdout.write(`${JSON.stringify(report)}\n`);
  } finally {
    await cleanups.runAll();
  }
}

/** For each N: Skiff's series, then etcd's, so both see the same moment of a shared machine. */
async function measureThroughput(skiff: SkiffCluster, etcd: EtcdCluster, args: RaftArguments): Promise<ResultRow[]> {
  const maxClients = Math.max(...args.clients);
  const skiffLeader = await skiff.leader();
  const etcdLeader = await etcd.leader();
  progress(`skiff leader ${skiffLeader.name} (${skiffLeader.addr}), etcd leader ${etcdLeader.name} (${etcdLeader.clientUrl}); preparing ${maxClients} writers each`);
  const skiffWriters = await skiff.writers(skiffLeader, maxClients);
  const etcdWriters = etcd.writers(etcdLeader, maxClients);
  // One write per writer first: connections, TLS and JIT are warm before any clock runs.
  await Promise.all([...skiffWriters, ...etcdWriters].map((write) => write()));
  const rows: ResultRow[] = [];
  for (const clients of args.clients) {
    const series = async (system: string, writers: readonly WriteOnce[], pids: SeriesPids): Promise<WriteSeries> => {
      checkNotStopping();
      progress(`${system}: ${clients} clients for ${args.seconds} s`);
      const before = await cpuReadings(pids);
      const report = await runClosedLoop(writers.slice(0, clients), args.seconds);
      const cpu = cpuMicrosPerOperation(before, await cpuReadings(pids), report.writes);
      progress(`${system}: ${clients} clients: ${report.writes_per_s} writes/s, p50 ${report.p50_ms} ms, p99 ${report.p99_ms} ms, ${report.errors} errors, ${cpu['total']} µs of CPU per write`);
      return { ...report, cpu_us_per_write: cpu };
    };
    const skiffReport = await series('skiff', skiffWriters, seriesPids(skiffLeader.daemon.pid, skiff.members.map((member) => member.daemon.pid)));
    const etcdReport = await series('etcd', etcdWriters, seriesPids(etcdLeader.daemon.pid, etcd.members.map((member) => member.daemon.pid)));
    rows.push({
      clients,
      skiff: skiffReport,
      etcd: etcdReport,
      throughput_ratio: ratio(skiffReport.writes_per_s, etcdReport.writes_per_s),
      p50_ratio: ratio(skiffReport.p50_ms, etcdReport.p50_ms),
    });
  }
  return rows;
}

interface SeriesPids {
  leader: number;
  followers: number[];
}

function seriesPids(leader: number, members: number[]): SeriesPids {
  return { leader, followers: members.filter((pid) => pid !== leader) };
}

/** CPU seconds so far of the leader, of the followers together, and of this process (the clients). */
async function cpuReadings(pids: SeriesPids): Promise<Record<string, number>> {
  const seconds = async (pid: number): Promise<number> => {
    const used = await cpuSeconds(pid);
    if (used === undefined) throw new Error(`cannot read the CPU time of pid ${pid}: it exited`);
    return used;
  };
  const followers = await Promise.all(pids.followers.map(seconds));
  const own = process.cpuUsage();
  return { leader: await seconds(pids.leader), followers: followers.reduce((sum, value) => sum + value, 0), client: (own.user + own.system) / 1e6 };
}

/** For each N, readers on each system's leader, then on a follower; Skiff's series first, as for writes. */
async function measureReads(skiff: SkiffCluster, etcd: EtcdCluster, args: RaftArguments): Promise<ReadRow[]> {
  const maxClients = Math.max(...args.clients);
  const skiffLeader = await skiff.leader();
  const etcdLeader = await etcd.leader();
  const skiffFollower = skiff.members.find((member) => member !== skiffLeader);
  const etcdFollower = etcd.members.find((member) => member !== etcdLeader);
  if (skiffFollower === undefined || etcdFollower === undefined) throw new Error('cannot measure reads: a system has no follower');
  const readers = {
    leader: { skiff: skiff.readers(skiffLeader, maxClients), etcd: etcd.readers(etcdLeader, maxClients) },
    follower: { skiff: skiff.readers(skiffFollower, maxClients), etcd: etcd.readers(etcdFollower, maxClients) },
  };
  // One read per reader first, as for the writers.
  await Promise.all([readers.leader, readers.follower].flatMap((pair) => [...pair.skiff, ...pair.etcd]).map((read) => read()));
  const rows: ReadRow[] = [];
  for (const clients of args.clients) {
    for (const member of ['leader', 'follower'] as const) {
      const series = async (system: 'skiff' | 'etcd'): Promise<ReadSeries> => {
        checkNotStopping();
        progress(`${system}: ${clients} readers on the ${member} for ${args.seconds} s`);
        const report = await runClosedLoop(readers[member][system].slice(0, clients), args.seconds);
        progress(`${system}: ${clients} readers on the ${member}: ${report.writes_per_s} reads/s, p50 ${report.p50_ms} ms, p99 ${report.p99_ms} ms, ${report.errors} errors`);
        return { reads_per_s: report.writes_per_s, p50_ms: report.p50_ms, p99_ms: report.p99_ms, reads: report.writes, errors: report.errors };
      };
      const skiffReport = await series('skiff');
      const etcdReport = await series('etcd');
      rows.push({
        clients,
        member,
        skiff: skiffReport,
        etcd: etcdReport,
        throughput_ratio: ratio(skiffReport.reads_per_s, etcdReport.reads_per_s),
        p50_ratio: ratio(skiffReport.p50_ms, etcdReport.p50_ms),
      });
    }
  }
  return rows;
}

/** kill -9 of each leader in turn; the survivors were written to once first (warm connections). */
async function measureFailovers(skiff: SkiffCluster, etcd: EtcdCluster): Promise<{ skiff: number; etcd: number }> {
  const skiffLeader = await skiff.leader();
  const skiffAttempts = skiff.members.filter((member) => member !== skiffLeader).map((member) => skiff.failoverAttempt(member));
  for (const attempt of skiffAttempts) await attempt();
  progress(`skiff: kill -9 of leader ${skiffLeader.name} (pid ${skiffLeader.daemon.pid})`);
  const skiffMs = await measureFailover(() => skiffLeader.daemon.killHard(), skiffAttempts);
  progress(`skiff: a write succeeded ${skiffMs} ms after the kill`);
  const etcdLeader = await etcd.leader();
  const etcdAttempts = etcd.members.filter((member) => member !== etcdLeader).map((member) => etcd.failoverAttempt(member));
  for (const attempt of etcdAttempts) await attempt();
  progress(`etcd: kill -9 of leader ${etcdLeader.name} (pid ${etcdLeader.daemon.pid})`);
  const etcdMs = await measureFailover(() => etcdLeader.daemon.killHard(), etcdAttempts);
  progress(`etcd: a write succeeded ${etcdMs} ms after the kill`);
  return { skiff: skiffMs, etcd: etcdMs };
}

async function hostReport(etcdVersion: string, loadBefore: number[]): Promise<Record<string, unknown>> {
  const cpuInfo = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  const round = (values: number[]): number[] => values.map((value) => Math.round(value * 100) / 100);
  return {
    cpus: availableParallelism(),
    cpu_model: /^model name\s*:\s*(.*)$/m.exec(cpuInfo)?.[1] ?? 'unknown',
    kernel: release(),
    node: process.version,
    etcd: etcdVersion,
    loadavg_before: round(loadBefore),
    loadavg_after: round(loadavg()),
  };
}

main().catch((error: unknown) => {
  progress(`failed: ${error instanceof Error ? error.message : String(error)}`);
  // A signal already chose 128 + its number.
  if (process.exitCode === undefined || process.exitCode === 0) process.exitCode = 1;
});
