/**
 * Three real managers for the simulation: `skiffd --manager --no-agent` processes on 127.0.0.1,
 * started as bench/raft-skiff-cluster.ts starts them (m1 bootstraps, m2 and m3 join with
 * certificates issued by the same CA), except that the CA stays with the caller, so it can issue
 * worker certificates to simulated nodes directly, without the join port.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import {
  channelCredentials,
  channelOptions,
  createCertificateAuthority,
  issueNodeCredentials,
  newNodeId,
  writeCredentials,
  type CertificateAuthority,
} from '../../pki/index.js';
import { ControlClient, type ListNodesResponse } from '../../proto/skiff/v1/control.js';
import { pollUntil, progress, type CleanupStack } from '../bench-support.js';
import { freeLoopbackPortPairs, logRecords, logTail, startDaemon, type Daemon } from '../raft-processes.js';
import { cpuSeconds } from '../proc-memory.js';

/** skiffd's entry point in the build output. */
const SKIFFD_SCRIPT = fileURLToPath(new URL('../../cli/skiffd.js', import.meta.url));
/** How long the three managers get to form a group with two promoted followers. */
const FORM_GROUP_TIMEOUT_MS = 90_000;
const POLL_INTERVAL_MS = 200;
const LIST_NODES_DEADLINE_MS = 10_000;

export interface SimManager {
  name: string;
  nodeId: string;
  addr: string;
  daemon: Daemon;
  client: ControlClient;
}

export interface SimCluster {
  ca: CertificateAuthority;
  managers: SimManager[];
  /** The manager that ListNodes reports as leader. */
  leader(): Promise<SimManager>;
  /** Resident set size of each manager process, in bytes (VmRSS of /proc/<pid>/status). */
  residentBytes(): Promise<Record<string, number>>;
  /** CPU seconds (user + system) each manager process has used so far (0 if it is gone). */
  cpuSeconds(): Promise<Record<string, number>>;
  /** Stops every manager (TERM, then KILL); also on the cleanup stack, so calling it is optional. */
  stop(): Promise<void>;
}

/** A unary call as a promise. */
export function call<Response>(invoke: (callback: (error: grpc.ServiceError | null, response: Response) => void) => void): Promise<Response> {
  return new Promise((resolve, reject) => invoke((error, response) => (error === null ? resolve(response) : reject(error))));
}

export const deadline = (ms: number): Partial<grpc.CallOptions> => ({ deadline: Date.now() + ms });

export function listNodes(manager: SimManager): Promise<ListNodesResponse> {
  return call<ListNodesResponse>((callback) => manager.client.listNodes({}, new grpc.Metadata(), deadline(LIST_NODES_DEADLINE_MS), callback));
}

/**
 * Starts three managers under `workDir/<label>`; returns once they form a group of three voters
 * with one leader. Every process is on `cleanups`.
 */
export async function startSimCluster(options: { workDir: string; label: string; cleanups: CleanupStack; extraFlags?: string[]; cpuProfileDir?: string }): Promise<SimCluster> {
  const ca = await createCertificateAuthority();
  const admin = await issueNodeCredentials(ca, { nodeId: newNodeId(), role: 'admin' });
  const credentials = channelCredentials(admin);
  const ports = await freeLoopbackPortPairs(3);
  const managers: SimManager[] = [];
  const stopAll = async (): Promise<void> => {
    for (const manager of managers) {
      manager.client.close();
      await manager.daemon.stop();
    }
  };
  options.cleanups.push(`${options.label} managers`, stopAll);
  for (const [index, port] of ports.entries()) {
    const first = managers[0];
    const manager = await startManager({ ca, name: `m${index + 1}`, label: options.label, port, join: first?.addr, workDir: options.workDir, credentials, extraFlags: options.extraFlags ?? [], ...(options.cpuProfileDir === undefined ? {} : { cpuProfileDir: options.cpuProfileDir }) });
    managers.push(manager);
    if (first === undefined) await waitForLeader(manager);
  }
  await waitForGroup(managers);
  return {
    ca,
    managers,
    leader: () => findLeader(managers),
    residentBytes: async () => Object.fromEntries(await Promise.all(managers.map(async (manager) => [manager.name, await residentBytes(manager.daemon.pid)] as const))),
    cpuSeconds: async () => Object.fromEntries(await Promise.all(managers.map(async (manager) => [manager.name, (await cpuSeconds(manager.daemon.pid)) ?? 0] as const))),
    stop: stopAll,
  };
}

async function startManager(options: {
  ca: CertificateAuthority;
  name: string;
  label: string;
  port: number;
  join: string | undefined;
  workDir: string;
  credentials: grpc.ChannelCredentials;
  extraFlags: string[];
  /** Runs skiffd under `node --cpu-prof`; the profile lands here when it stops. */
  cpuProfileDir?: string;
}): Promise<SimManager> {
  const dataDir = join(options.workDir, options.label, options.name);
  const nodeId = newNodeId();
  const nodeCredentials = await issueNodeCredentials(options.ca, { nodeId, role: 'manager', ipAddresses: ['127.0.0.1'] });
  await mkdir(dataDir, { recursive: true });
  await writeCredentials(join(dataDir, 'certs'), nodeCredentials);
  const addr = `127.0.0.1:${options.port}`;
  const nodeFlags = options.cpuProfileDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', options.cpuProfileDir, '--cpu-prof-name', `skiffd-${options.label}-${options.name}.cpuprofile`];
  const args = [
    ...nodeFlags,
    '--enable-source-maps',
    SKIFFD_SCRIPT,
    '--manager',
    '--no-agent',
    '--data-dir', dataDir,
    '--hostname', `${options.label}-${options.name}`,
    '--listen-addr', addr,
    '--advertise-addr', addr,
    '--control-socket', join(dataDir, 'skiff.sock'),
    ...(options.join === undefined ? [] : ['--join', options.join]),
    ...options.extraFlags,
  ];
  progress(`${options.label}: starting ${options.name} on ${addr}${options.join === undefined ? '' : ` (joins ${options.join})`}`);
  const daemon = await startDaemon(`skiffd ${options.label}-${options.name}`, process.execPath, args, join(options.workDir, `skiffd-${options.label}-${options.name}.log`));
  return { name: options.name, nodeId, addr, daemon, client: new ControlClient(addr, options.credentials, channelOptions()) };
}

async function checkRunning(manager: SimManager): Promise<void> {
  if (!manager.daemon.isRunning()) throw new Error(`cannot run ${manager.daemon.label}: it exited (${await logTail(manager.daemon.logPath)})`);
}

async function waitForLeader(manager: SimManager): Promise<void> {
  await pollUntil(`see ${manager.daemon.label} lead`, async () => {
    await checkRunning(manager);
    const nodes = await listNodes(manager).catch(() => undefined);
    return nodes?.nodes.some((node) => node.managerStatus?.leader === true) === true ? true : undefined;
  }, { intervalMs: POLL_INTERVAL_MS, timeoutMs: FORM_GROUP_TIMEOUT_MS });
}

/** Three managers, one leader, and the leader's log shows both joiners promoted to voters. */
async function waitForGroup(managers: readonly SimManager[]): Promise<void> {
  const [first, ...joiners] = managers;
  if (first === undefined) throw new Error('assertion failed: no manager');
  await pollUntil('see three managers, one leader, the joiners promoted', async () => {
    for (const manager of managers) await checkRunning(manager);
    const nodes = (await listNodes(first).catch(() => undefined))?.nodes ?? [];
    const statuses = nodes.map((node) => (node.managerStatus?.leader === true ? 'leader' : node.managerStatus?.reachability ?? 'none')).sort();
    if (statuses.join() !== 'leader,reachable,reachable') return undefined;
    const promoted = new Set<string>();
    for (const manager of managers) {
      for (const record of await logRecords(manager.daemon.logPath, 'promoting caught-up learner')) promoted.add(String(record['member']));
    }
    return joiners.every((joiner) => promoted.has(joiner.nodeId)) ? true : undefined;
  }, { intervalMs: POLL_INTERVAL_MS, timeoutMs: FORM_GROUP_TIMEOUT_MS });
}

async function findLeader(managers: readonly SimManager[]): Promise<SimManager> {
  return pollUntil('find the leader', async () => {
    for (const manager of managers) {
      if (!manager.daemon.isRunning()) continue;
      const nodes = (await listNodes(manager).catch(() => undefined))?.nodes ?? [];
      const addr = nodes.find((node) => node.managerStatus?.leader === true)?.managerStatus?.addr;
      const leader = managers.find((candidate) => candidate.addr === addr && candidate.daemon.isRunning());
      if (leader !== undefined) return leader;
    }
    return undefined;
  }, { intervalMs: POLL_INTERVAL_MS, timeoutMs: FORM_GROUP_TIMEOUT_MS });
}

/** VmRSS of a process in bytes (0 if it is gone). */
export async function residentBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const kilobytes = /^VmRSS:\s*(\d+)\s*kB$/m.exec(status)?.[1];
  return kilobytes === undefined ? 0 : Number(kilobytes) * 1024;
}
