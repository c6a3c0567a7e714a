// `skiff join --token T ADDR`: make this machine a node of an existing cluster. It pins the
// cluster CA by the digest in the token (refusing a manager that presents another CA), sends a
// certificate request with the token to the manager's join port, writes the node credentials it
// gets back, and prints the skiffd command to run. `skiff join-token` shows or rotates tokens.
import { X509Certificate } from 'node:crypto';
import { access } from 'node:fs/promises';
import { hostname as osHostname } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type DetailedPeerCertificate } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import type { Command } from 'commander';
import {
  MANAGER_TLS_NAME,
  NODE_KEY_FILE,
  channelOptions,
  createCertificateRequest,
  digestOfDer,
  parseJoinToken,
  writeCredentials,
} from '../../pki/index.js';
import { NodeJoinClient } from '../../proto/skiff/v1/ca.js';
import { NodeRole } from '../../proto/skiff/v1/types.js';
import { CliError, connect } from '../client.js';
import { CERTS_DIR, DEFAULT_DATA_DIR, DEFAULT_GRPC_PORT, firstNonLoopbackIpv4, splitAddress } from './init.js';

/** How long the CA fetch and the join call may take. */
export const JOIN_TIMEOUT_MS = 15_000;

export interface JoinOptions {
  token: string;
  /** A manager's gRPC address (ip:port); its join port is port + 1. */
  managerAddr: string;
  dataDir: string;
  /** ip:port this node is reached at (managers: its gRPC address). */
  advertiseAddr: string;
  hostname: string;
}

export interface JoinResult {
  nodeId: string;
  role: 'manager' | 'worker';
  certsDir: string;
  daemonArgv: string[];
}

/** The join port of a manager whose gRPC port is at `address`. */
export function joinPortOf(address: string): string {
  const { ip, port } = splitAddress('manager address', address);
  return `${ip}:${port + 1}`;
}

/**
 * The CA certificate (PEM) that the manager at `joinAddr` presents in its chain and whose digest
 * is `digest`. A chain without it is refused with both digests named: wrong cluster, or a man
 * in the middle. The chain is read without verification, which is exactly what the pin replaces.
 */
export async function fetchPinnedCa(joinAddr: string, digest: string): Promise<string> {
  const { ip, port } = splitAddress('manager address', joinAddr);
  const chain = await new Promise<DetailedPeerCertificate>((resolve, reject) => {
    const socket = tlsConnect({ host: ip, port, servername: MANAGER_TLS_NAME, rejectUnauthorized: false, ALPNProtocols: ['h2'], timeout: JOIN_TIMEOUT_MS });
    socket.once('secureConnect', () => {
      const certificate = socket.getPeerCertificate(true);
      socket.destroy();
      resolve(certificate);
    });
    socket.once('timeout', () => {
      socket.destroy();
      reject(new CliError(`cannot join: no TLS answer from ${joinAddr} within ${JOIN_TIMEOUT_MS} ms`));
    });
    socket.once('error', (error) => reject(new CliError(`cannot join: cannot reach the join port ${joinAddr}: ${error.message}`)));
  });
  const presented: string[] = [];
  const seen = new Set<DetailedPeerCertificate>();
  for (let current: DetailedPeerCertificate | undefined = chain; current?.raw !== undefined && !seen.has(current); current = current.issuerCertificate) {
    seen.add(current);
    const currentDigest = digestOfDer(current.raw);
    if (currentDigest === digest) return new X509Certificate(current.raw).toString();
    presented.push(currentDigest);
  }
  throw new CliError(
    `cannot join: the manager at ${joinAddr} presents a CA with digest ${presented.at(-1) ?? '(none)'}, but the token pins ${digest}; refusing (wrong cluster, or a man in the middle)`,
  );
}

/** Joins: CA pin, certificate request, credentials written to `<dataDir>/certs`. */
export async function joinCluster(options: JoinOptions): Promise<JoinResult> {
  const token = parseJoinToken(options.token);
  splitAddress('advertise-addr', options.advertiseAddr);
  const certsDir = join(options.dataDir, CERTS_DIR);
  if (await access(join(certsDir, NODE_KEY_FILE)).then(() => true, () => false)) {
    throw new CliError(`cannot join: ${certsDir} already holds node credentials (this node is part of a cluster; remove the directory to join another)`);
  }
  const joinAddr = joinPortOf(options.managerAddr);
  const caCertPem = await fetchPinnedCa(joinAddr, token.caDigest);
  const request = await createCertificateRequest();
  const client = new NodeJoinClient(joinAddr, grpc.credentials.createSsl(Buffer.from(caCertPem)), channelOptions());
  try {
    const response = await new Promise<{ nodeId: string; certPem: string; caCertPem: string; role: NodeRole }>((resolve, reject) => {
      client.issueNodeCertificate(
        { csr: request.csrDer, token: options.token.trim(), hostname: options.hostname, addr: options.advertiseAddr },
        new grpc.Metadata(),
        { deadline: Date.now() + JOIN_TIMEOUT_MS },
        (error, reply) => (error === null ? resolve(reply) : reject(new CliError(error.details || error.message))),
      );
    });
    await writeCredentials(certsDir, { caCertPem: response.caCertPem, certPem: response.certPem, keyPem: request.keyPem });
    const role = response.role === NodeRole.NODE_ROLE_MANAGER ? 'manager' : 'worker';
    const daemonArgv = ['skiffd', ...(role === 'manager' ? ['--manager'] : []), '--data-dir', options.dataDir, '--hostname', options.hostname, '--advertise-addr', options.advertiseAddr, '--join', options.managerAddr];
    return { nodeId: response.nodeId, role, certsDir, daemonArgv };
  } finally {
    client.close();
  }
}

function shellQuote(word: string): string {
  return /^[A-Za-z0-9_./:=@-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** The command a new node runs to join with `token`. */
export function joinCommand(token: string, managerAddr: string): string {
  return `skiff join --token ${token} ${managerAddr}`;
}

/** Registers `skiff join` and `skiff join-token`. */
export function registerJoinCommands(program: Command): void {
  program
    .command('join')
    .description('join this machine to a cluster as a worker or manager (the token decides)')
    .argument('<manager>', 'a manager address, ip:port')
    .requiredOption('--token <token>', 'join token from `skiff join-token worker|manager`')
    .option('--data-dir <dir>', 'node data directory', DEFAULT_DATA_DIR)
    .option('--advertise-addr <ip:port>', `address other nodes reach this node at (default: first non-loopback IPv4:${DEFAULT_GRPC_PORT})`)
    .option('--hostname <name>', 'hostname this node reports', osHostname())
    .action(async (manager: string, flags: { token: string; dataDir: string; advertiseAddr?: string; hostname: string }, command: Command) => {
      try {
        let advertiseAddr = flags.advertiseAddr;
        if (advertiseAddr === undefined) {
          const ip = firstNonLoopbackIpv4();
          if (ip === undefined) throw new CliError('cannot pick advertise-addr: this machine has no non-loopback IPv4 address; pass --advertise-addr');
          advertiseAddr = `${ip}:${DEFAULT_GRPC_PORT}`;
        }
        const result = await joinCluster({ token: flags.token, managerAddr: manager, dataDir: flags.dataDir, advertiseAddr, hostname: flags.hostname });
        process.stdout.write(
          [`This node joined as ${result.role} ${result.nodeId}; credentials in ${result.certsDir}.`, 'Start it with:', `  ${result.daemonArgv.map(shellQuote).join(' ')}`, ''].join('\n'),
        );
      } catch (error) {
        command.error(`skiff join: ${error instanceof Error ? error.message : String(error)}`, { exitCode: 1 });
      }
    });

  program
    .command('join-token')
    .description('show (or with --rotate, replace) the token that joins a worker or a manager')
    .argument('<role>', 'worker | manager')
    .option('--rotate', 'replace the token: the old one stops working for new joins (joined nodes are unaffected)', false)
    .option('-q, --quiet', 'print the token only', false)
    .action(async (role: string, flags: { rotate: boolean; quiet: boolean }, command: Command) => {
      const host = command.optsWithGlobals<{ host?: string }>().host;
      try {
        if (role !== 'worker' && role !== 'manager') throw new CliError(`cannot show join token: role "${role}" is not worker or manager`);
        const connection = await connect(host);
        try {
          let cluster = (await connection.call((c) => c.getCluster, {})).cluster;
          if (flags.rotate) {
            cluster = (
              await connection.call((c) => c.updateCluster, {
                version: cluster?.meta?.version ?? 0,
                spec: undefined,
                rotateWorkerToken: role === 'worker',
                rotateManagerToken: role === 'manager',
                rotateUnlockKey: false,
              })
            ).cluster;
          }
          const token = role === 'worker' ? cluster?.joinTokens?.worker : cluster?.joinTokens?.manager;
          if (token === undefined || token === '') throw new CliError('cannot show join token: the cluster has none yet (is the first manager still starting?)');
          if (flags.quiet) {
            process.stdout.write(`${token}\n`);
            return;
          }
          const nodes = (await connection.call((c) => c.listNodes, {})).nodes;
          const leader = nodes.find((node) => node.managerStatus?.leader === true)?.managerStatus?.addr ?? nodes.find((node) => node.managerStatus !== undefined)?.managerStatus?.addr ?? '<manager ip:port>';
          if (flags.rotate) process.stdout.write(`Rotated the ${role} join token.\n\n`);
          process.stdout.write(`To add a ${role} to this cluster, run on the new host:\n\n    ${joinCommand(token, leader)}\n\n`);
        } finally {
          connection.close();
        }
      } catch (error) {
        command.error(`skiff join-token: ${error instanceof Error ? error.message : String(error)}`, { exitCode: 1 });
      }
    });
}
