/**
 * The reference of the raft benchmark: a three-member etcd 3.4 cluster (Debian's etcd-server) on
 * loopback with mutual TLS for clients and peers, fsync on (etcd's default), and its writers: Put
 * of a 256-byte value to one key per writer through the `etcd3` package.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Etcd3, type IOptions } from 'etcd3';
import { createCertificateAuthority, issueNodeCredentials, newNodeId, type NodeCredentials } from '../pki/index.js';
import { pollUntil, progress, runOrThrow, type CleanupStack } from './bench-support.js';
import { FAILOVER_ATTEMPT_DEADLINE_MS, writeValue, type WriteOnce } from './raft-load.js';
import { freeLoopbackPorts, logTail, startDaemon, type Daemon } from './raft-processes.js';

/** Debian's etcd-server and etcd-client install these. */
export const ETCD_BINARY = '/usr/bin/etcd';
const WRITE_DEADLINE_MS = 30_000;
const FORM_CLUSTER_TIMEOUT_MS = 60_000;
const POLL_INTERVAL_MS = 200;
const STATUS_DEADLINE_MS = 1_000;

export interface EtcdMember {
  name: string;
  clientUrl: string;
  daemon: Daemon;
  /** A client of this member only, so a call never moves to another member. */
  client: Etcd3;
  /** The member id etcd reports in response headers (decimal string). */
  memberId?: string;
}

export interface EtcdCluster {
  members: EtcdMember[];
  /** The member whose id the members' Status calls report as leader. */
  leader(): Promise<EtcdMember>;
  /** One writer per index: Put of key `bench-raft/<index>` on `member`. */
  writers(member: EtcdMember, count: number): WriteOnce[];
  failoverAttempt(member: EtcdMember): WriteOnce;
  /** One reader per index: a linearizable Get (etcd's default) of key `bench-raft/<index>` on `member`. Needs the writers' keys. */
  readers(member: EtcdMember, count: number): WriteOnce[];
}

type Policy = NonNullable<NonNullable<IOptions['faultHandling']>['global']>;

/**
 * A policy that runs the call once and passes its outcome through: no retry on another host and
 * no circuit breaker, so every write is one RPC to one member, as Skiff's writes are, and the
 * failover loop sees every failure at once (the default breaker would pause a host for 5 s).
 */
const passThrough: Policy = {
  _altReturn: undefined as never,
  onSuccess: () => ({ dispose: () => undefined }),
  onFailure: () => ({ dispose: () => undefined }),
  execute: async (fn) => fn({ signal: new AbortController().signal }),
};

/** Throws an actionable error when etcd is not installed. */
export async function checkEtcdInstalled(): Promise<string> {
  const version = await runOrThrow('run etcd --version', ETCD_BINARY, ['--version']).catch(() => {
    throw new Error(`cannot run the raft benchmark: ${ETCD_BINARY} is missing; install it with "apt-get install -y etcd-server etcd-client" (etcd 3.4)`);
  });
  return /etcd Version: (\S+)/.exec(version)?.[1] ?? 'unknown';
}

/** Starts e1..e3 under `workDir` and returns once every member reports the same leader. */
export async function startEtcdCluster(options: { workDir: string; cleanups: CleanupStack }): Promise<EtcdCluster> {
  const ca = await createCertificateAuthority();
  const clientCredentials = await issueNodeCredentials(ca, { nodeId: newNodeId(), role: 'admin' });
  const ports = await freeLoopbackPorts(6);
  const names = ['e1', 'e2', 'e3'];
  const peerUrl = (index: number): string => `https://127.0.0.1:${ports[3 + index] ?? 0}`;
  const initialCluster = names.map((name, index) => `${name}=${peerUrl(index)}`).join(',');
  const token = `bench-raft-${newNodeId().slice(0, 8)}`;
  const members: EtcdMember[] = [];
  for (const [index, name] of names.entries()) {
    const dir = join(options.workDir, 'etcd', name);
    const certDir = join(dir, 'certs');
    await mkdir(certDir, { recursive: true });
    // Manager certificates: serverAuth + clientAuth, SAN IP 127.0.0.1, same key type as Skiff's.
    const server = await issueNodeCredentials(ca, { nodeId: newNodeId(), role: 'manager', ipAddresses: ['127.0.0.1'] });
    await writePem(certDir, server);
    const clientUrl = `https://127.0.0.1:${ports[index] ?? 0}`;
    const tls = (prefix: string): string[] => [`--${prefix}cert-file`, join(certDir, 'node.crt'), `--${prefix}key-file`, join(certDir, 'node.key'), `--${prefix}trusted-ca-file`, join(certDir, 'ca.crt'), `--${prefix}client-cert-auth`];
    const args = [
      '--name', name,
      '--data-dir', join(dir, 'data'),
      '--listen-client-urls', clientUrl,
      '--advertise-client-urls', clientUrl,
      '--listen-peer-urls', peerUrl(index),
      '--initial-advertise-peer-urls', peerUrl(index),
      '--initial-cluster', initialCluster,
      '--initial-cluster-token', token,
      '--initial-cluster-state', 'new',
      '--logger', 'zap',
      ...tls(''),
      ...tls('peer-'),
    ];
    progress(`etcd: starting ${name} on ${clientUrl}`);
    const daemon = await startDaemon(`etcd ${name}`, ETCD_BINARY, args, join(options.workDir, `etcd-${name}.log`));
    const client = new Etcd3({
      hosts: clientUrl,
      credentials: { rootCertificate: Buffer.from(clientCredentials.caCertPem), privateKey: Buffer.from(clientCredentials.keyPem), certChain: Buffer.from(clientCredentials.certPem) },
      faultHandling: { global: passThrough, host: () => passThrough },
    });
    const member: EtcdMember = { name, clientUrl, daemon, client };
    options.cleanups.push(`etcd ${name}`, async () => {
      client.close();
      await daemon.stop();
    });
    members.push(member);
  }
  await pollUntil('see three etcd members agree on a leader', async () => {
    for (const member of members) {
      if (!member.daemon.isRunning()) throw new Error(`cannot start etcd ${member.name}: it exited (${await logTail(member.daemon.logPath)})`);
    }
    const leaders = await Promise.all(members.map((member) => statusOf(member).catch(() => undefined)));
    const first = leaders[0]?.leader;
    return first !== undefined && first !== '0' && leaders.every((status) => status?.leader === first) ? true : undefined;
  }, { intervalMs: POLL_INTERVAL_MS, timeoutMs: FORM_CLUSTER_TIMEOUT_MS });
  progress('etcd: cluster formed');
  return {
    members,
    leader: () => findLeader(members),
    writers: (member, count) => Array.from({ length: count }, (_, index) => {
      let sequence = 0;
      return async () => {
        sequence += 1;
        await member.client.put(`bench-raft/${index}`).value(writeValue(index, sequence)).options({ deadline: Date.now() + WRITE_DEADLINE_MS });
      };
    }),
    readers: (member, count) => Array.from({ length: count }, (_, index) => async () => {
      const value = await member.client.get(`bench-raft/${index}`).options({ deadline: Date.now() + WRITE_DEADLINE_MS }).string();
      if (value === null) throw new Error(`cannot read etcd key bench-raft/${index}: it is not there`);
    }),
    failoverAttempt: (member) => {
      let attempt = 0;
      return async () => {
        attempt += 1;
        await member.client.put(`bench-raft/failover-${member.name}`).value(writeValue(0, attempt)).options({ deadline: Date.now() + FAILOVER_ATTEMPT_DEADLINE_MS });
      };
    },
  };
}

async function writePem(dir: string, credentials: NodeCredentials): Promise<void> {
  await writeFile(join(dir, 'ca.crt'), credentials.caCertPem, { mode: 0o644 });
  await writeFile(join(dir, 'node.crt'), credentials.certPem, { mode: 0o644 });
  await writeFile(join(dir, 'node.key'), credentials.keyPem, { mode: 0o600 });
}

async function statusOf(member: EtcdMember): Promise<{ leader: string; memberId: string }> {
  const status = await member.client.maintenance.status({ deadline: Date.now() + STATUS_DEADLINE_MS });
  member.memberId = status.header.member_id;
  return { leader: status.leader, memberId: status.header.member_id };
}

async function findLeader(members: readonly EtcdMember[]): Promise<EtcdMember> {
  return pollUntil('find the etcd leader', async () => {
    for (const member of members) {
      if (!member.daemon.isRunning()) continue;
      const status = await statusOf(member).catch(() => undefined);
      const leader = members.find((candidate) => candidate.memberId === status?.leader && candidate.daemon.isRunning());
      if (leader !== undefined) return leader;
    }
    return undefined;
  }, { intervalMs: POLL_INTERVAL_MS, timeoutMs: FORM_CLUSTER_TIMEOUT_MS });
}
