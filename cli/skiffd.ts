/**
 * skiffd: one daemon per host. Parses flags, loads the node's credentials, starts the manager
 * role (with --manager) and the worker role, and shuts both down on SIGTERM/SIGINT leaving
 * containers running.
 */
import { hostname as osHostname } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { startAgent } from '../agent/agent.js';
import { createLogger } from '../common/log.js';
import { startManager } from '../manager/manager.js';
import { certificateIdentity, readCredentials } from '../pki/index.js';

const collect = (value: string, previous: string[]): string[] => [...previous, value];

interface DaemonFlags {
  dataDir: string;
  hostname: string;
  listenAddr: string;
  advertiseAddr?: string;
  manager: boolean;
  join?: string;
  controlSocket: string;
  runcRoot: string;
  cgroupParent: string;
  bridgeName: string;
  bridgeSubnet: string;
  defaultRegistry: string;
  insecureRegistry: string[];
  heartbeatPeriodMs?: string;
  forceNewCluster: boolean;
  agent: boolean;
}

async function main(): Promise<void> {
  const program = new Command('skiffd')
    .description('Skiff node daemon: manager and/or worker')
    .requiredOption('--data-dir <dir>', 'node state directory (certificates in <dir>/certs)')
    .option('--hostname <name>', 'node hostname', osHostname())
    .option('--listen-addr <ip:port>', 'gRPC listen address', '0.0.0.0:4242')
    .option('--advertise-addr <ip:port>', 'address other nodes reach this node at')
    .option('--manager', 'run the manager role', false)
    .option('--join <ip:port>', 'manager to connect to (default: this node, for a manager)')
    .option('--control-socket <path>', 'unix socket of the local control API', '/run/skiff/skiff.sock')
    .option('--runc-root <dir>', 'runc state root', '/run/skiff/runc')
    .option('--cgroup-parent <path>', 'cgroup parent of containers', '/skiff')
    .option('--bridge-name <name>', 'host bridge for containers', 'skiff0')
    .option('--bridge-subnet <cidr>', 'subnet of the host bridge', '198.18.128.0/24')
    .option('--default-registry <host:port>', 'registry for image references without a host', 'docker.io')
    .option('--insecure-registry <host:port>', 'registry reached over plain HTTP (repeatable)', collect, [])
    .option('--heartbeat-period-ms <ms>', 'agent heartbeat period (managers)')
    .option('--no-agent', 'run no worker role on this host (a manager that runs no tasks)')
    .option('--force-new-cluster', 'make this manager a new one-member cluster that keeps every object (after losing quorum for good)', false)
    .parse();
  const flags = program.opts<DaemonFlags>();
  const log = createLogger({ host: flags.hostname });
  const credentials = await readCredentials(join(flags.dataDir, 'certs'));
  const identity = certificateIdentity(credentials.certPem);
  if (identity === undefined) throw new Error(`cannot start: ${join(flags.dataDir, 'certs')} holds no Skiff node certificate`);
  if (flags.manager && identity.role !== 'manager') throw new Error(`cannot start as manager: the node certificate's role is ${identity.role}`);
  const advertiseAddr = flags.advertiseAddr ?? flags.listenAddr;
  const manager = flags.manager
    ? await startManager({
        dataDir: flags.dataDir,
        clusterId: identity.clusterId,
        selfNodeId: identity.nodeId,
        credentials,
        listenAddr: flags.listenAddr,
        advertiseAddr,
        controlSocket: flags.controlSocket,
        // A manager joins through --join unless that is itself (the first manager of a cluster).
        join: flags.join !== undefined && flags.join !== advertiseAddr ? flags.join : undefined,
        forceNewCluster: flags.forceNewCluster,
        ...(flags.heartbeatPeriodMs === undefined ? {} : { heartbeatPeriodMs: Number(flags.heartbeatPeriodMs) }),
        log,
      })
    : undefined;
  if (!flags.manager && !flags.agent) throw new Error('cannot start: --no-agent needs --manager (the node would have no role)');
  const join_ = flags.join ?? (flags.manager ? advertiseAddr : undefined);
  if (join_ === undefined) throw new Error('cannot start a worker: --join <manager ip:port> is required');
  const agent = !flags.agent ? undefined : await startAgent({
    dataDir: flags.dataDir,
    hostname: flags.hostname,
    addr: advertiseAddr.split(':')[0] ?? advertiseAddr,
    managers: [join_],
    credentials,
    runcRoot: flags.runcRoot,
    cgroupParent: flags.cgroupParent,
    bridgeName: flags.bridgeName,
    bridgeSubnet: flags.bridgeSubnet,
    defaultRegistry: flags.defaultRegistry,
    insecureRegistries: flags.insecureRegistry,
    log,
  });
  log.info('skiffd ready', { nodeId: identity.nodeId, role: identity.role, manager: flags.manager });
  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info('shutting down; containers keep running', { signal });
    void (async () => {
      await agent?.stop();
      await manager?.stop();
      process.exit(0);
    })();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((error: unknown) => {
  process.stderr.write(`skiffd: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
