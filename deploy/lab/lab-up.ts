// `skiff lab up`: network, PKI, registry, demo images and one skiffd per host. Idempotent: on a
// lab that exists it starts only what is missing. lab.json is rewritten after each phase so that
// an aborted `up` is visible to `status` and fully removable by `down`.
import { access, mkdir, open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { CA_CERT_FILE, NODE_CERT_FILE, NODE_KEY_FILE, newNodeId } from '../../pki/index.js';
import { ControlClient, type GetClusterResponse } from '../../proto/skiff/v1/control.js';
import { contextCertsDir, saveContext } from '../../cli/context.js';
import { initCluster } from '../../cli/commands/init.js';
import { joinCluster } from '../../cli/commands/join.js';
import { buildDemoWebImage, pushOciLayout } from '../images/busybox-image.js';
import { registryPidAlive, startRegistryDetached } from '../registry/registry.js';
import { livePid, skiffdPath, startDaemon, waitDaemonsReady, type LaunchedDaemon } from './daemons.js';
import { waitNodesReady } from './nodes-ready.js';
import { DEFAULT_REGISTRY_PORT, LAB_ADDRESS_POOL, LAB_RUN_ROOT, MAX_HOSTS, bridgeAddress, checkLabName, chooseSubnetIndex, hostLayout, labPaths } from './naming.js';
import { ensureBridge, ensureHostNetwork, routeDestinations } from './network.js';
import { readLabState, subnetIndexesOfOtherLabs, writeLabState, type LabHost, type LabState } from './state.js';
import { joinDaemonCgroup, waitFor } from './system.js';

/** Options of `labUp`. Counts default to the existing lab's, else 1 manager and 2 workers. */
export interface LabUpOptions {
  name: string;
  managers?: number;
  workers?: number;
  registryPort?: number;
  /** False: network, PKI, registry and images only (tests of the lab itself, no skiffd needed). */
  startDaemons?: boolean;
  /** Lifetime of node certificates for a new lab (short ones exercise renewal). */
  certExpiryMs?: number;
  /** Progress lines (the CLI prints them); silent when absent. */
  log?: (line: string) => void;
}

const DEMO_IMAGE_REPOSITORY = 'demo/web';
const DEMO_IMAGE_TAGS = ['v1', 'v2', 'v3'] as const;
/** How long a parallel `lab up` may hold the subnet allocation lock before we give up. */
export const SUBNET_LOCK_TIMEOUT_MS = 30_000;
const SUBNET_LOCK_FILE = `${LAB_RUN_ROOT}/subnet.lock`;
const DEFAULT_MANAGERS = 1;
const DEFAULT_WORKERS = 2;
const REGISTRY_PROBE_TIMEOUT_MS = 2_000;
/** How long the first manager may take to put the join tokens in its store. */
const JOIN_TOKENS_TIMEOUT_MS = 30_000;

/** Brings lab `options.name` up (or completes it) and returns its state. Needs root. */
export async function labUp(options: LabUpOptions): Promise<LabState> {
  checkLabName(options.name);
  if (process.getuid?.() !== 0) throw new Error('cannot bring up lab: it needs root (network namespaces, cgroups, runc)');
  const log = options.log ?? (() => undefined);
  const binary = options.startDaemons === false ? '' : skiffdPath();
  const paths = labPaths(options.name);
  const existing = await readLabState(options.name);
  const managers = options.managers ?? existing?.hosts.filter((host) => host.role === 'manager').length ?? DEFAULT_MANAGERS;
  const workers = options.workers ?? existing?.hosts.filter((host) => host.role === 'worker').length ?? DEFAULT_WORKERS;
  checkCounts(managers, workers);
  if (existing !== undefined && existing.hosts.length > 0 && existing.hosts.length !== managers + workers) {
    throw new Error(`cannot bring up lab ${options.name}: it exists with ${existing.hosts.length} hosts; run \`skiff lab down --name ${options.name}\` first to change its size`);
  }
  const registryPort = options.registryPort ?? portOf(existing?.registry.addr) ?? DEFAULT_REGISTRY_PORT;

  const state = existing ?? (await allocateLab(options.name, managers, workers, registryPort));
  log(`lab ${state.name}: bridge ${state.bridge} ${state.bridgeAddr}/24, registry ${state.registry.addr}`);
  await ensureBridge(state.bridge, `${state.bridgeAddr}/24`);
  for (const host of state.hosts) {
    await ensureHostNetwork({ netns: host.netns, veth: host.veth, bridge: state.bridge, cidr: `${host.addr}/24` });
    await mkdir(host.dataDir, { recursive: true });
    await mkdir(host.runcRoot, { recursive: true });
  }
  await ensurePki(state, options.certExpiryMs);
  await writeLabState(state);
  log(`lab ${state.name}: ${state.hosts.map((host) => `${host.name}=${host.addr} (${host.role})`).join(', ')}`);

  await ensureRegistry(state, paths.registryDir, paths.registryCgroup);
  await writeLabState(state);
  await ensureDemoImages(state, paths.imagesDir, log);

  if (options.startDaemons !== false) {
    const launched: LaunchedDaemon[] = [];
    // The first manager runs before anyone can join through it.
    const first = firstManager(state);
    if ((await livePid(first)) === 0) {
      const daemon = await startDaemon(state, first, binary);
      first.pid = daemon.pid;
      launched.push(daemon);
      log(`lab ${state.name}: started skiffd on ${first.name} (pid ${first.pid})`);
      await writeLabState(state);
      await waitDaemonsReady([daemon]);
    }
    await joinHosts(state, log);
    for (const host of state.hosts) {
      if ((await livePid(host)) !== 0) continue;
      const daemon = await startDaemon(state, host, binary);
      host.pid = daemon.pid;
      launched.push(daemon);
      log(`lab ${state.name}: started skiffd on ${host.name} (pid ${host.pid})`);
    }
    await writeLabState(state);
    await waitDaemonsReady(launched);
    // Started daemons are not yet nodes the scheduler can place tasks on.
    await waitNodesReady(state, state.hosts);
  }
  return state;
}

function checkCounts(managers: number, workers: number): void {
  if (!Number.isInteger(managers) || managers < 1) throw new Error(`cannot bring up lab: managers must be an integer >= 1, got ${managers}`);
  if (!Number.isInteger(workers) || workers < 0) throw new Error(`cannot bring up lab: workers must be an integer >= 0, got ${workers}`);
  if (managers + workers > MAX_HOSTS) throw new Error(`cannot bring up lab: managers + workers must be at most ${MAX_HOSTS}, got ${managers + workers}`);
}

function portOf(address: string | undefined): number | undefined {
  const port = Number(address?.split(':')[1]);
  return Number.isInteger(port) && port > 0 ? port : undefined;
}

/**
 * Picks the lab's subnet and writes its first lab.json, under a machine-wide lock so that two labs
 * coming up in parallel never take the same /24.
 */
async function allocateLab(name: string, managers: number, workers: number, registryPort: number): Promise<LabState> {
  return withLockFile(SUBNET_LOCK_FILE, SUBNET_LOCK_TIMEOUT_MS, async () => {
    const subnetIndex = chooseSubnetIndex(name, await routeDestinations(), await subnetIndexesOfOtherLabs(name));
    if (subnetIndex === undefined) throw new Error(`cannot bring up lab ${name}: every 198.18.S.0/24 (S in 0..127) is used by a route or another lab`);
    const paths = labPaths(name);
    const hosts: LabHost[] = [];
    for (let index = 1; index <= managers + workers; index += 1) {
      const layout = hostLayout(name, index, subnetIndex);
      hosts.push({
        name: layout.name,
        index,
        role: index <= managers ? 'manager' : 'worker',
        addr: layout.addr,
        nodeId: newNodeId(),
        pid: 0,
        dataDir: layout.dataDir,
        runDir: layout.runDir,
        runcRoot: layout.runcRoot,
        controlSocket: layout.controlSocket,
        cgroupParent: layout.cgroupParent,
        daemonCgroup: layout.daemonCgroup,
        netns: layout.netns,
        veth: layout.veth,
        bridgeName: layout.bridgeName,
        bridgeSubnet: layout.bridgeSubnet,
      });
    }
    const state: LabState = {
      version: 1,
      name,
      subnetIndex,
      bridge: paths.bridge,
      bridgeAddr: bridgeAddress(subnetIndex),
      registry: { addr: `${bridgeAddress(subnetIndex)}:${registryPort}`, pid: 0, dataDir: paths.registryDir },
      hosts,
      contextName: name,
    };
    await writeLabState(state);
    return state;
  });
}

/**
 * The lab's cluster is made the way a user makes one: `skiff init` on the first manager (CA,
 * join tokens, its credentials, the admin context named like the lab); every other host joins
 * with a token once that manager runs (`joinHosts`). On a lab that exists, only the context is
 * refreshed.
 */
async function ensurePki(state: LabState, certExpiryMs: number | undefined): Promise<void> {
  const first = firstManager(state);
  const managers = state.hosts.filter((host) => host.role === 'manager').map((host) => `${host.addr}:4242`);
  if (!(await exists(join(first.dataDir, 'certs', NODE_KEY_FILE)))) {
    await rm(join(first.dataDir, 'ca'), { recursive: true, force: true });
    await initCluster({
      dataDir: first.dataDir,
      advertiseAddr: `${first.addr}:4242`,
      contextName: state.contextName,
      hostname: first.name,
      contextManagers: managers,
      nodeId: first.nodeId,
      ...(certExpiryMs === undefined ? {} : { certExpiryMs }),
      // Lab networks stay inside the benchmarking range, away from anything real.
      defaultAddressPool: LAB_ADDRESS_POOL,
    });
    return;
  }
  const adminDir = contextCertsDir(state.contextName);
  await saveContext(
    state.contextName,
    { managers, caCertPath: join(adminDir, CA_CERT_FILE), certPath: join(adminDir, NODE_CERT_FILE), keyPath: join(adminDir, NODE_KEY_FILE) },
    { makeCurrent: true },
  );
}

function firstManager(state: LabState): LabHost {
  const first = state.hosts.find((host) => host.role === 'manager');
  if (first === undefined) throw new Error(`cannot bring up lab ${state.name}: it has no manager`);
  return first;
}

/** Reads the join tokens from the first manager's local socket, waiting until it has them. */
async function joinTokens(state: LabState): Promise<{ worker: string; manager: string }> {
  const client = new ControlClient(`unix://${firstManager(state).controlSocket}`, grpc.credentials.createInsecure());
  let lastError = 'no answer';
  try {
    const deadline = Date.now() + JOIN_TOKENS_TIMEOUT_MS;
    while (Date.now() < deadline) {
      try {
        const { cluster } = await new Promise<GetClusterResponse>((resolve, reject) =>
          client.getCluster({}, new grpc.Metadata(), { deadline: Date.now() + 2_000 }, (error, value) => (error === null ? resolve(value) : reject(error))),
        );
        if (cluster?.joinTokens !== undefined && cluster.joinTokens.worker !== '') return cluster.joinTokens;
        lastError = 'the cluster has no join tokens yet';
      } catch (error) {
        lastError = String(error);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } finally {
    client.close();
  }
  throw new Error(`cannot bring up lab ${state.name}: cannot read join tokens from ${firstManager(state).name}: ${lastError}`);
}

/** `skiff join` for every host that has no credentials yet; records the node ids they got. */
async function joinHosts(state: LabState, log: (line: string) => void): Promise<void> {
  const first = firstManager(state);
  const pending: LabHost[] = [];
  for (const host of state.hosts) if (!(await exists(join(host.dataDir, 'certs', NODE_KEY_FILE)))) pending.push(host);
  if (pending.length === 0) return;
  const tokens = await joinTokens(state);
  for (const host of pending) {
    const result = await joinCluster({
      token: host.role === 'manager' ? tokens.manager : tokens.worker,
      managerAddr: `${first.addr}:4242`,
      dataDir: host.dataDir,
      advertiseAddr: `${host.addr}:4242`,
      hostname: host.name,
    });
    host.nodeId = result.nodeId;
    log(`lab ${state.name}: ${host.name} joined as ${result.role} ${result.nodeId}`);
  }
  await writeLabState(state);
}

async function ensureRegistry(state: LabState, dataDir: string, cgroup: string): Promise<void> {
  if (state.registry.pid > 0 && registryPidAlive(state.registry.pid)) return;
  state.registry.pid = await startRegistryDetached({ dataDir, listenAddr: state.registry.addr });
  // Into the lab's cgroup tree, so `down` finds it even without lab.json.
  await joinDaemonCgroup(state.registry.pid, cgroup);
}

async function ensureDemoImages(state: LabState, imagesDir: string, log: (line: string) => void): Promise<void> {
  const present = await registryTags(state.registry.addr, DEMO_IMAGE_REPOSITORY);
  for (const tag of DEMO_IMAGE_TAGS) {
    if (present.includes(tag)) continue;
    const layoutDir = join(imagesDir, `web-${tag}`);
    await rm(layoutDir, { recursive: true, force: true });
    await mkdir(layoutDir, { recursive: true });
    await buildDemoWebImage(layoutDir, tag);
    await pushOciLayout(layoutDir, tag, `${state.registry.addr}/${DEMO_IMAGE_REPOSITORY}:${tag}`, { insecure: true });
    log(`lab ${state.name}: pushed ${state.registry.addr}/${DEMO_IMAGE_REPOSITORY}:${tag}`);
  }
}

/** Tags of `repository` in the registry at `addr` ([] when it has none or does not answer). */
export async function registryTags(addr: string, repository: string): Promise<string[]> {
  try {
    const response = await fetch(`http://${addr}/v2/${repository}/tags/list`, { signal: AbortSignal.timeout(REGISTRY_PROBE_TIMEOUT_MS) });
    if (response.status !== 200) {
      await response.arrayBuffer();
      return [];
    }
    const body = (await response.json()) as { tags?: unknown };
    return Array.isArray(body.tags) ? body.tags.filter((tag): tag is string => typeof tag === 'string') : [];
  } catch {
    return [];
  }
}

/** Runs `work` holding an exclusive lock file; a lock whose owner died is taken over. */
async function withLockFile<T>(path: string, timeoutMs: number, work: () => Promise<T>): Promise<T> {
  await mkdir(LAB_RUN_ROOT, { recursive: true });
  let acquired = false;
  const got = await waitFor(async () => {
    try {
      const handle = await open(path, 'wx');
      await handle.writeFile(String(process.pid));
      await handle.close();
      acquired = true;
      return true;
    } catch (error) {
      if (!(error instanceof Error && 'code' in error && error.code === 'EEXIST')) throw error;
    }
    const owner = Number.parseInt(await readFile(path, 'utf8').catch(() => ''), 10);
    if (Number.isInteger(owner) && owner > 0 && !(await exists(`/proc/${owner}`))) await rm(path, { force: true });
    return false;
  }, timeoutMs);
  if (!got || !acquired) throw new Error(`cannot allocate a lab subnet: ${path} is held by another process`);
  try {
    return await work();
  } finally {
    await rm(path, { force: true });
  }
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}
