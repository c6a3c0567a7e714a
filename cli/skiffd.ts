/**
 * skiffd: one daemon per host. Parses flags, loads the node's credentials, starts the manager
 * role (with --manager) and the worker role, and shuts both down on SIGTERM/SIGINT leaving
 * containers running.
 */
import { access, readFile, rm } from 'node:fs/promises';
import { hostname as osHostname } from 'node:os';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { SKIFF_VERSION } from '../common/version.js';
import { startAgent, type RunningAgent } from '../agent/agent.js';
import { readRegistryAuthFile } from '../agent/image/registry-auth-file.js';
import { createLogger } from '../common/log.js';
import type { RunningManager } from '../manager/manager.js';
import { rootTrustKey } from '../manager/security/root-rotation.js';
// pki's modules one by one, not its index: the CA's (x509) code is loaded only where a CA is.
import { certificateIdentity } from '../pki/certificate-identity.js';
import { certificateRoleIn, isKeyEncrypted, readCredentials, rewrapNodeKey, writeFileAtomic } from '../pki/credentials-store.js';
import { LiveCredentials } from '../pki/live-credentials.js';
import { CertificateRenewer } from '../pki/renewal.js';
import { checkUnlockKey, openDataKey, wrapDataKey } from '../manager/keys/data-key.js';
import { parseDuration } from './commands/duration-flag.js';
import { renewCertificate } from './renew-certificate.js';

const collect = (value: string, previous: string[]): string[] => [...previous, value];

interface DaemonFlags {
  dataDir: string;
  hostname: string;
  listenAddr: string;
  advertiseAddr?: string;
  manager: boolean;
  join?: string;
  controlSocket: string;
  dockerSocket?: string;
  runcRoot: string;
  cgroupParent: string;
  bridgeName: string;
  bridgeSubnet: string;
  defaultRegistry: string;
  insecureRegistry: string[];
  registryAuthFile?: string;
  heartbeatPeriodMs?: string;
  logMaxSize: string;
  logMaxFiles: string;
  drainDelay: string;
  forceNewCluster: boolean;
  agent: boolean;
  simulationNoScheduler: boolean;
}

/**
 * The manager role's modules (Raft, store, scheduler, dispatcher, control API), imported only by a
 * node that runs the role: an agent-only skiffd never loads them (its memory: bench/agent-memory.ts).
 */
async function loadManagerRole(): Promise<{
  startManager: typeof import('../manager/manager.js').startManager;
  raftDirectoryEncryption: typeof import('../manager/raft/storage/raft-storage.js').raftDirectoryEncryption;
  caRotationSpreadMs: number;
}> {
  const [manager, storage, dispatcher] = await Promise.all([import('../manager/manager.js'), import('../manager/raft/storage/raft-storage.js'), import('../manager/dispatcher/dispatcher.js')]);
  return { startManager: manager.startManager, raftDirectoryEncryption: storage.raftDirectoryEncryption, caRotationSpreadMs: dispatcher.CA_ROTATION_SPREAD_MS };
}

/** `--log-max-size`: bytes, or a number with k, m or g (powers of 1024). */
function parseLogSize(value: string): number {
  const match = /^(\d+)([kmg]?)b?$/i.exec(value.trim());
  if (match === null) throw new Error(`invalid value "${value}" for --log-max-size: use bytes or a size such as 512k or 10m`);
  const units: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };
  return Number(match[1]) * (units[(match[2] ?? '').toLowerCase()] ?? 1);
}

async function main(): Promise<void> {
  const program = new Command('skiffd')
    .version(SKIFF_VERSION, '-v, --version', 'print the version and exit')
    .description('Skiff node daemon: manager and/or worker')
    .requiredOption('--data-dir <dir>', 'node state directory (certificates in <dir>/certs)')
    .option('--hostname <name>', 'node hostname', osHostname())
    .option('--listen-addr <ip:port>', 'gRPC listen address', '0.0.0.0:4242')
    .option('--advertise-addr <ip:port>', 'address other nodes reach this node at')
    .option('--manager', 'run the manager role (a joined node then follows the role its certificate gives: promoted or demoted)', false)
    .option('--join <ip:port>', 'manager to connect to (default: this node, for a manager)')
    .option('--control-socket <path>', 'unix socket of the local control API', '/run/skiff/skiff.sock')
    .option('--docker-socket <path>', 'unix socket of the Docker-compatible API on a manager (default: docker.sock beside the control socket; "" for none)')
    .option('--runc-root <dir>', 'runc state root', '/run/skiff/runc')
    .option('--cgroup-parent <path>', 'cgroup parent of containers', '/skiff')
    .option('--bridge-name <name>', 'host bridge for containers', 'skiff0')
    .option('--bridge-subnet <cidr>', 'subnet of the host bridge', '198.18.128.0/24')
    .option('--default-registry <host:port>', 'registry for image references without a host', 'docker.io')
    .option('--insecure-registry <host:port>', 'registry reached over plain HTTP (repeatable)', collect, [])
    .option('--registry-auth-file <file>', 'registry credentials, as in ~/.docker/config.json ("auths")')
    .option('--heartbeat-period-ms <ms>', 'agent heartbeat period (managers)')
    .option('--log-max-size <size>', 'rotate a container log past this size (bytes, or with k, m, g)', '10m')
    .option('--log-max-files <n>', 'rotated container log files kept beside the current one (1-9)', '2')
    .option('--drain-delay <duration>', 'how long a task on an overlay network keeps running, out of every load-balancer set, before its stop signal', '2s')
    .option('--no-agent', 'run no worker role on this host (a manager that runs no tasks)')
    .option('--force-new-cluster', 'make this manager a new one-member cluster that keeps every object (after losing quorum for good)', false)
    // The placement benchmark's reference only: tasks are committed and never placed.
    .addOption(new Option('--simulation-no-scheduler', 'benchmark reference: run no scheduler').default(false).hideHelp())
    .parse();
  const flags = program.opts<DaemonFlags>();
  const registryCredentials = flags.registryAuthFile === undefined ? undefined : await readRegistryAuthFile(flags.registryAuthFile);
  const registryAccess = { defaultRegistry: flags.defaultRegistry, insecureRegistries: flags.insecureRegistry, ...(registryCredentials === undefined ? {} : { credentials: registryCredentials }) };
  const log = createLogger({ host: flags.hostname });
  const certsDir = join(flags.dataDir, 'certs');
  const keysDir = join(flags.dataDir, 'keys');
  // The role is the cluster's to give, and the node certificate carries it: a worker promoted
  // since it was started runs the manager role after a restart without --manager, and a manager
  // demoted meanwhile runs as a worker although its command line still says --manager.
  const certRole = await certificateRoleIn(certsDir);
  const managerRole = certRole === undefined ? flags.manager : certRole === 'manager';
  if (flags.manager && certRole === 'worker') log.warn('started with --manager, but the node certificate says worker (the node was demoted): running as a worker');
  if (!flags.manager && certRole === 'manager') log.info('the node certificate says manager (the node was promoted): running the manager role');
  // An autolocked manager restarts locked: its node key and data key need the unlock key.
  let keyPassphrase: string | undefined;
  const locked = managerRole && ((await isKeyEncrypted(certsDir).catch(() => false)) || (await openDataKey(keysDir)).status === 'locked');
  if (locked) {
    const { waitForUnlock } = await import('../manager/locked-server.js');
    keyPassphrase = await waitForUnlock(
      flags.controlSocket,
      async (key) => {
        checkUnlockKey(key);
        const opened = await openDataKey(keysDir, key);
        if (opened.status !== 'unlocked') throw new Error('the data key stays locked');
        await readCredentials(certsDir, { keyPassphrase: key });
      },
      log,
    );
    log.info('manager unlocked');
  }
  const credentials = new LiveCredentials(await readCredentials(certsDir, keyPassphrase === undefined ? {} : { keyPassphrase }));
  const identity = certificateIdentity(credentials.certPem);
  if (identity === undefined) throw new Error(`cannot start: ${join(flags.dataDir, 'certs')} holds no Skiff node certificate`);
  const advertiseAddr = flags.advertiseAddr ?? flags.listenAddr;
  // The first manager of a new cluster finds the CA and the bootstrap that `skiff init` left.
  const caDir = join(flags.dataDir, 'ca');
  const exists = (file: string): Promise<boolean> => access(file).then(() => true, () => false);
  const caStore = (await exists(caDir)) ? await import('../pki/ca-store.js') : undefined;
  const ca = caStore !== undefined && (await exists(join(caDir, caStore.CA_KEY_FILE))) ? await caStore.readCertificateAuthority(caDir) : undefined;
  const bootstrap = ca === undefined || caStore === undefined ? undefined : await caStore.readClusterBootstrap(caDir);
  // The managers this node's agent last heard of, kept across restarts: the manager that --join
  // names may have been demoted or removed since (or be this node, demoted).
  const managersFile = join(flags.dataDir, REMEMBERED_MANAGERS_FILE);
  let remembered = await readRememberedManagers(managersFile);
  let caRotationSpreadMs = 0;
  const startManagerRole = async (joinAddr: string | undefined, joinAlternatives: readonly string[] = []): Promise<RunningManager> => {
    const { startManager, raftDirectoryEncryption, caRotationSpreadMs: spread } = await loadManagerRole();
    caRotationSpreadMs = spread;
    const opened = await openDataKey(keysDir, keyPassphrase);
    if (opened.status === 'locked') throw new Error(`cannot start the manager role: ${keysDir} is locked; run \`skiff unlock\``);
    const raftDir = join(flags.dataDir, 'raft');
    // A Raft directory written before encryption at rest existed stays plaintext.
    const plaintext = (await raftDirectoryEncryption(raftDir)) === 'plaintext';
    if (plaintext) log.warn('the raft directory is not encrypted (it predates encryption at rest)', { raftDir });
    return startManager({
        dataDir: flags.dataDir,
        clusterId: identity.clusterId,
        selfNodeId: identity.nodeId,
        credentials,
        listenAddr: flags.listenAddr,
        advertiseAddr,
        controlSocket: flags.controlSocket,
        ...(flags.dockerSocket === undefined ? {} : { dockerSocket: flags.dockerSocket }),
        // A manager joins through --join unless that is itself (the first manager of a cluster).
        join: joinAddr,
        joinAlternatives,
        forceNewCluster: flags.forceNewCluster,
        withoutScheduler: flags.simulationNoScheduler,
        ca,
        bootstrap,
        ...(flags.heartbeatPeriodMs === undefined ? {} : { heartbeatPeriodMs: Number(flags.heartbeatPeriodMs) }),
        dataKey: plaintext ? undefined : opened.dek,
        registries: registryAccess,
        onUnlockKey: async (unlockKey) => {
          await wrapDataKey(keysDir, opened.dek, unlockKey);
          await rewrapNodeKey(certsDir, unlockKey, keyPassphrase);
          keyPassphrase = unlockKey;
        },
        log,
      });
  };
  // A manager joins through --join unless that is itself (the first manager of a cluster).
  let manager = managerRole ? await startManagerRole(flags.join !== undefined && flags.join !== advertiseAddr ? flags.join : undefined, remembered.filter((addr) => addr !== advertiseAddr)) : undefined;
  if (!managerRole && !flags.agent) throw new Error(`cannot start: --no-agent needs the manager role (${certRole === 'worker' ? 'the node certificate says worker' : 'give --manager'}; the node would have no role)`);
  const join_ = flags.join ?? (managerRole ? advertiseAddr : remembered[0]);
  if (join_ === undefined) throw new Error('cannot start a worker: --join <manager ip:port> is required');
  // Set once the agent runs; renewal (which may start before that) asks its managers too.
  const agentRef: { current?: RunningAgent } = {};
  // The managers of the manager role last seen, remembered past a demotion.
  let knownManagers: string[] = [];
  /** Every other manager this node knows of, freshest source first: its manager role, its agent, --join, the remembered list. */
  const otherManagers = (): string[] => {
    if (manager !== undefined) knownManagers = manager.managerAddresses();
    return [...new Set([...knownManagers, ...(agentRef.current?.managers() ?? []), join_, ...remembered])].filter((addr) => addr !== advertiseAddr);
  };
  // This node's own address serves a manager only while it runs the manager role.
  const agentManagers = managerRole ? [...new Set([join_, ...remembered])] : otherManagers();
  if (flags.agent && agentManagers.length === 0) {
    throw new Error(`cannot start a worker: --join ${join_} is this node, which no longer runs a manager, and it remembers no other manager: give --join <manager ip:port>`);
  }
  // Renewal asks the other managers first (a demoted manager's own store is stale), then itself.
  const renewTargets = (): string[] => [...otherManagers(), ...(manager === undefined ? [] : [advertiseAddr])];
  let roleChange: Promise<void> = Promise.resolve();
  const renewer = new CertificateRenewer({
    credentials,
    dir: certsDir,
    renew: (csr) => renewCertificate(renewTargets(), credentials, csr, advertiseAddr),
    keyPassphrase: () => keyPassphrase,
    onRenewed: (previous, role) => {
      if (previous === role) return;
      log.info('node role changed by its certificate', { from: previous, to: role });
      roleChange = roleChange.then(async () => {
        if (role === 'manager' && manager === undefined) {
          // Promoted: join through a manager the agent knows (--join may be gone, or be this node).
          const others = otherManagers();
          manager = await startManagerRole(others[0], others.slice(1));
          watchRootCa(manager);
        } else if (role === 'worker' && manager !== undefined) {
          await manager.stop();
          manager = undefined;
          // A demoted manager keeps no Raft state: a later promotion joins afresh.
          await rm(join(flags.dataDir, 'raft'), { recursive: true, force: true });
          // Autolock is for managers: a worker's key is not kept under the unlock key.
          await rewrapNodeKey(certsDir, undefined, keyPassphrase);
          keyPassphrase = undefined;
        }
      }).catch((error: unknown) => log.error('cannot change role', { error: String(error) }));
    },
    log,
  });
  renewer.start();
  // A manager renews on its own after `skiff ca rotate`, and again when the rotation ends and the
  // old root is no longer trusted (a manager may run no agent to be told): its servers then
  // refuse old-root certificates in new handshakes.
  const watchRootCa = (running: RunningManager | undefined): void => {
    if (running === undefined) return;
    let trust = rootTrustKey(running.store.reader.list('cluster')[0]);
    running.store.subscribe((commit) => {
      if (!commit.events.some((event) => event.kind === 'cluster')) return;
      const next = rootTrustKey(running.store.reader.list('cluster')[0]);
      if (next === trust) return;
      trust = next;
      setTimeout(() => void renewer.renewNow().catch(() => undefined), Math.random() * caRotationSpreadMs).unref();
    });
  };
  watchRootCa(manager);
  const agent = !flags.agent ? undefined : await startAgent({
    dataDir: flags.dataDir,
    hostname: flags.hostname,
    addr: advertiseAddr.split(':')[0] ?? advertiseAddr,
    managers: agentManagers,
    onManagers: (managers) => {
      if (managers.join(',') === remembered.join(',')) return;
      remembered = [...managers];
      writeFileAtomic(managersFile, `${JSON.stringify(remembered)}\n`, 0o644).catch((error: unknown) => log.warn('cannot remember the managers', { error: String(error) }));
    },
    credentials,
    runcRoot: flags.runcRoot,
    cgroupParent: flags.cgroupParent,
    bridgeName: flags.bridgeName,
    bridgeSubnet: flags.bridgeSubnet,
    defaultRegistry: flags.defaultRegistry,
    insecureRegistries: flags.insecureRegistry,
    ...(registryCredentials === undefined ? {} : { registryCredentials }),
    logMaxBytes: parseLogSize(flags.logMaxSize),
    logMaxFiles: Number(flags.logMaxFiles),
    drainMs: parseDuration('--drain-delay', flags.drainDelay),
    log,
    onRoleChange: () => void renewer.renewNow().catch(() => undefined),
  });
  if (agent !== undefined) agentRef.current = agent;
  log.info('skiffd ready', { nodeId: identity.nodeId, role: identity.role, manager: manager !== undefined });
  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info('shutting down; containers keep running', { signal });
    void (async () => {
      renewer.stop();
      await agent?.stop();
      await roleChange;
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

/** Beside the certificates in the data dir: the managers the node's agent last heard of (JSON). */
const REMEMBERED_MANAGERS_FILE = 'managers.json';

/** The remembered managers (ip:port strings); none when the file is missing or not such a list. */
async function readRememberedManagers(file: string): Promise<string[]> {
  try {
    const value: unknown = JSON.parse(await readFile(file, 'utf8'));
    return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string' && /^[\w.-]+:\d+$/.test(item)) : [];
  } catch {
    return [];
  }
}
