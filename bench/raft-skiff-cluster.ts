/**
 * Three `skiffd --manager --no-agent` processes on loopback for the raft benchmark, its readers
 * (GetService) and its writers: UpdateService through the user-facing Control API (mTLS, admin certificate), one
 * pre-created service per writer (replicas 0, so no tasks), a 256-byte label value per write.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { specFromFlags } from '../cli/commands/service-flags.js';
import {
  channelCredentials,
  channelOptions,
  createCertificateAuthority,
  issueNodeCredentials,
  newNodeId,
  writeCredentials,
  type CertificateAuthority,
  type NodeCredentials,
} from '../pki/index.js';
import { ControlClient, type CreateServiceResponse, type GetServiceResponse, type ListNodesResponse, type UpdateServiceResponse } from '../proto/skiff/v1/control.js';
import type { ServiceSpec } from '../proto/skiff/v1/specs.js';
import { pollUntil, progress, type CleanupStack } from './bench-support.js';
import { FAILOVER_ATTEMPT_DEADLINE_MS, writeValue, type WriteOnce } from './raft-load.js';
import { freeLoopbackPortPairs, logRecords, logTail, startDaemon, type Daemon } from './raft-processes.js';

/** skiffd's entry point in the build output (bin/skiffd execs the same file). */
const SKIFFD_SCRIPT = fileURLToPath(new URL('../cli/skiffd.js', import.meta.url));
/** Deadline of one load write; far above any healthy latency, so only a stuck write hits it. */
const WRITE_DEADLINE_MS = 30_000;
/** How long the three managers get to form a group with two promoted followers. */
const FORM_GROUP_TIMEOUT_MS = 90_000;
const POLL_INTERVAL_MS = 200;
/** The image of the benchmark's services; no agent runs, so it is never pulled, and every request sets noResolveImage:
 * otherwise each CreateService/UpdateService would first ask the registry (docker.io) for the tag's digest,
 * a registry round trip (offline: a failed one) per write that is no part of a Raft write. */
const IMAGE = 'demo/web:v1';
const LABEL_KEY = 'value';

export interface SkiffMember {
  name: string;
  nodeId: string;
  addr: string;
  daemon: Daemon;
  client: ControlClient;
}

export interface SkiffCluster {
  members: SkiffMember[];
  /** The member that ListNodes (asked of the first live member) reports as leader. */
  leader(): Promise<SkiffMember>;
  /** One writer per index: UpdateService of its own service `bench-raft-<index>` on `member`. Call once. */
  writers(member: SkiffMember, count: number): Promise<WriteOnce[]>;
  /** One failover attempt per member: CreateService of a fresh name with a short deadline. */
  failoverAttempt(member: SkiffMember): WriteOnce;
  /** One reader per index: GetService of `bench-raft-<index>` on `member` (a linearizable read). Needs `writers` first. */
  readers(member: SkiffMember, count: number): WriteOnce[];
}

/** A unary Control API call as a promise. */
function call<Response>(invoke: (callback: (error: grpc.ServiceError | null, response: Response) => void) => void): Promise<Response> {
  return new Promise((resolve, reject) => invoke((error, response) => (error === null ? resolve(response) : reject(error))));
}

const callOptions = (deadlineMs: number): Partial<grpc.CallOptions> => ({ deadline: Date.now() + deadlineMs });

function serviceSpec(name: string, value: string): ServiceSpec {
  return specFromFlags(IMAGE, [], { name, replicas: '0', env: [], label: [`${LABEL_KEY}=${value}`] });
}

/**
 * Starts three managers under `workDir`: m1 bootstraps, m2 and m3 join it. Returns once ListNodes
 * shows one leader and two reachable managers, the leader has logged the promotion of both
 * joiners, and a write committed after those promotions. Every process is on `cleanups`.
 */
export async function startSkiffCluster(options: { workDir: string; cleanups: CleanupStack; cpuProfileDir?: string }): Promise<SkiffCluster> {
  const ca = await createCertificateAuthority();
  const admin = await issueNodeCredentials(ca, { nodeId: newNodeId(), role: 'admin' });
  const credentials = channelCredentials(admin);
  const ports = await freeLoopbackPortPairs(3);
  const members: SkiffMember[] = [];
  for (const [index, port] of ports.entries()) {
    const name = `m${index + 1}`;
    const first = members[0];
    const member = await startManager({ ca, name, port, join: first?.addr, workDir: options.workDir, credentials, ...(options.cpuProfileDir === undefined ? {} : { cpuProfileDir: options.cpuProfileDir }) });
    options.cleanups.push(`skiffd ${name}`, async () => {
      member.client.close();
      await member.daemon.stop();
    });
    members.push(member);
    if (first === undefined) await waitForLeader(member);
  }
  await waitForGroup(members);
  const cluster: SkiffCluster = {
    members,
    leader: () => findLeader(members),
    writers: (member, count) => createWriters(member, count),
    readers: (member, count) => Array.from({ length: count }, (_, index) => async () => {
      const response = await call<GetServiceResponse>((callback) => member.client.getService({ service: `bench-raft-${index}` }, new grpc.Metadata(), callOptions(WRITE_DEADLINE_MS), callback));
      if (response.service === undefined) throw new Error(`cannot read service bench-raft-${index}: the response carries none`);
    }),
    failoverAttempt: (member) => {
      let attempt = 0;
      return async () => {
        attempt += 1;
        const request = { noResolveImage: true, spec: serviceSpec(`bench-raft-failover-${member.name}-${attempt}`, writeValue(0, attempt)) };
        await call<CreateServiceResponse>((callback) => member.client.createService(request, new grpc.Metadata(), callOptions(FAILOVER_ATTEMPT_DEADLINE_MS), callback));
      };
    },
  };
  return cluster;
}

async function startManager(options: {
  ca: CertificateAuthority;
  name: string;
  port: number;
  join: string | undefined;
  workDir: string;
  credentials: grpc.ChannelCredentials;
  cpuProfileDir?: string;
}): Promise<SkiffMember> {
  const dataDir = join(options.workDir, 'skiff', options.name);
  const nodeId = newNodeId();
  const nodeCredentials: NodeCredentials = await issueNodeCredentials(options.ca, { nodeId, role: 'manager', ipAddresses: ['127.0.0.1'] });
  await mkdir(dataDir, { recursive: true });
  await writeCredentials(join(dataDir, 'certs'), nodeCredentials);
  const addr = `127.0.0.1:${options.port}`;
  const nodeFlags = options.cpuProfileDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', options.cpuProfileDir, '--cpu-prof-name', `skiffd-${options.name}.cpuprofile`];
  const args = [
    ...nodeFlags,
    '--enable-source-maps',
    SKIFFD_SCRIPT,
    '--manager',
    '--no-agent',
    '--data-dir', dataDir,
    '--hostname', options.name,
    '--listen-addr', addr,
    '--advertise-addr', addr,
    '--control-socket', join(dataDir, 'skiff.sock'),
    ...(options.join === undefined ? [] : ['--join', options.join]),
  ];
  progress(`skiff: starting ${options.name} on ${addr}${options.join === undefined ? '' : ` (joins ${options.join})`}`);
  const daemon = await startDaemon(`skiffd ${options.name}`, process.execPath, args, join(options.workDir, `skiffd-${options.name}.log`));
  return { name: options.name, nodeId, addr, daemon, client: new ControlClient(addr, options.credentials, channelOptions()) };
}

async function listNodes(member: SkiffMember): Promise<ListNodesResponse> {
  return call<ListNodesResponse>((callback) => member.client.listNodes({}, new grpc.Metadata(), callOptions(2_000), callback));
}

async function waitForLeader(member: SkiffMember): Promise<void> {
  await pollUntil(`see skiffd ${member.name} lead`, async () => {
    if (!member.daemon.isRunning()) throw new Error(`cannot start skiffd ${member.name}: it exited (${await logTail(member.daemon.logPath)})`);
    const nodes = await listNodes(member).catch(() => undefined);
    return nodes?.nodes.some((node) => node.managerStatus?.leader === true) === true ? true : undefined;
  }, { intervalMs: POLL_INTERVAL_MS, timeoutMs: FORM_GROUP_TIMEOUT_MS });
}

/**
 * A joiner shows in ListNodes as soon as it is a learner; only the leader's log says it was
 * promoted. A write that commits after both "promoting" lines commits after both promotions
 * (they precede it in the log), so the group then has three voters.
 */
async function waitForGroup(members: readonly SkiffMember[]): Promise<void> {
  const [first, ...joiners] = members;
  if (first === undefined) throw new Error('assertion failed: no skiff member');
  await pollUntil('see three skiff managers, one leader, the joiners promoted', async () => {
    for (const member of members) {
      if (!member.daemon.isRunning()) throw new Error(`cannot form the skiff group: skiffd ${member.name} exited (${await logTail(member.daemon.logPath)})`);
    }
    const nodes = (await listNodes(first).catch(() => undefined))?.nodes ?? [];
    const statuses = nodes.map((node) => (node.managerStatus?.leader === true ? 'leader' : node.managerStatus?.reachability ?? 'none')).sort();
    if (statuses.join() !== 'leader,reachable,reachable') return undefined;
    const promoted = new Set<string>();
    for (const member of members) {
      for (const record of await logRecords(member.daemon.logPath, 'promoting caught-up learner')) promoted.add(String(record['member']));
    }
    return joiners.every((joiner) => promoted.has(joiner.nodeId)) ? true : undefined;
  }, { intervalMs: POLL_INTERVAL_MS, timeoutMs: FORM_GROUP_TIMEOUT_MS });
  const request = { noResolveImage: true, spec: serviceSpec('bench-raft-ready', writeValue(0, 0)) };
  await call<CreateServiceResponse>((callback) => first.client.createService(request, new grpc.Metadata(), callOptions(WRITE_DEADLINE_MS), callback));
  progress(`skiff: group formed (${members.map((member) => `${member.name}=${member.nodeId.slice(0, 8)}`).join(', ')})`);
}

async function findLeader(members: readonly SkiffMember[]): Promise<SkiffMember> {
  return pollUntil('find the skiff leader', async () => {
    for (const member of members) {
      if (!member.daemon.isRunning()) continue;
      const nodes = (await listNodes(member).catch(() => undefined))?.nodes ?? [];
      const addr = nodes.find((node) => node.managerStatus?.leader === true)?.managerStatus?.addr;
      const leader = members.find((candidate) => candidate.addr === addr && candidate.daemon.isRunning());
      if (leader !== undefined) return leader;
    }
    return undefined;
  }, { intervalMs: POLL_INTERVAL_MS, timeoutMs: FORM_GROUP_TIMEOUT_MS });
}

/**
 * Creates service `bench-raft-<index>` for each writer and returns its writer: an UpdateService
 * carrying the version of the previous response, so no read precedes a write. Call once.
 */
async function createWriters(member: SkiffMember, count: number): Promise<WriteOnce[]> {
  return Promise.all(Array.from({ length: count }, async (_, index) => {
    const name = `bench-raft-${index}`;
    let sequence = 0;
    const createRequest = { noResolveImage: true, spec: serviceSpec(name, writeValue(index, sequence)) };
    const created = await call<CreateServiceResponse>((callback) => member.client.createService(createRequest, new grpc.Metadata(), callOptions(WRITE_DEADLINE_MS), callback));
    const meta = created.service?.meta;
    if (meta === undefined) throw new Error(`cannot prepare skiff writer ${index}: service ${name} has no meta`);
    const id = meta.id;
    let version = meta.version;
    return async () => {
      sequence += 1;
      const request = { noResolveImage: true, service: id, version, spec: serviceSpec(name, writeValue(index, sequence)) };
      const response = await call<UpdateServiceResponse>((callback) => member.client.updateService(request, new grpc.Metadata(), callOptions(WRITE_DEADLINE_MS), callback));
      const next = response.service?.meta?.version;
      if (next === undefined || next <= version) throw new Error(`cannot update service ${name}: the response carries version ${String(next)} after ${version}`);
      version = next;
    };
  }));
}
