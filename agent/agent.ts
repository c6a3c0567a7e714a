/**
 * The worker role of a node: an image store, a runtime, the task manager and a session to the
 * managers. It never imports manager code: it talks to managers only over the Dispatcher.
 */
import { availableParallelism, totalmem } from 'node:os';
import { readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Logger } from '../common/log.js';
import type { NodeCredentials } from '../pki/index.js';
import { collectImageGarbageAtStartup, createImageOps, createImageStore, startImageGcLoop, type ImageOps, type RegistryCredentials } from './image/index.js';
import { createRuntime, type Runtime } from './runtime/index.js';
import { BridgeNetwork, formatAddress, gatewayAddress, parseSubnet } from './network/index.js';
import { DnsServer } from './network/dns/dns-server.js';
import { OverlayNetworks } from './network/overlay/overlay-networks.js';
import { IngressMesh } from './network/ingress/ingress-mesh.js';
import { TaskManager } from './executor/task-manager.js';
import { onOverlay } from './executor/task-runner.js';
import { AgentSession } from './session/session.js';
import { answerNodeRequest, type ImageRequestHandler } from './attach/node-request-handler.js';
import { DEFAULT_LOG_MAX_BYTES, DEFAULT_LOG_MAX_FILES, LogRotator } from './logs/log-rotation.js';
import { RuntimePaths } from './runtime/paths.js';
import { underlayIp } from '../common/address.js';
import { createVolumeOps } from './runtime/volumes.js';
import { idleCollector } from './idle-gc.js';

export interface AgentOptions {
  dataDir: string;
  hostname: string;
  /** Address other hosts reach this node at. */
  addr: string;
  managers: string[];
  /** The session's manager list changed (to remember it across restarts). */
  onManagers?: (managers: readonly string[]) => void;
  credentials: NodeCredentials;
  runcRoot: string;
  /**
   * Where the per-task tmpfs mounts of secret and config files go; outside dataDir. Default:
   * `secrets` beside runcRoot (e.g. /run/skiff/secrets), which is under /run like runc's state.
   */
  secretsDir?: string;
  cgroupParent: string;
  bridgeName: string;
  bridgeSubnet: string;
  defaultRegistry: string;
  insecureRegistries: string[];
  /** Credentials per registry (`host:port`), from `skiffd --registry-auth-file`. */
  registryCredentials?: Record<string, RegistryCredentials>;
  log: Logger;
  clock?: () => number;
  /** The cluster changed this node's desired role: its certificate is to be renewed now. */
  onRoleChange?: () => void;
  /** Image operations for `skiff image …` (ls, pull, rm, prune, load); absent: the agent's own store (a test may put a fake here). */
  images?: ImageRequestHandler;
  /** Container log rotation: size of the current file and old files kept (defaults 10 MiB, 2). */
  logMaxBytes?: number;
  logMaxFiles?: number;
  /** Drain delay before stopping a task on an overlay network (default DRAIN_MS). */
  drainMs?: number;
}

export interface RunningAgent {
  runtime: Runtime;
  /** The managers the agent's session tries now (the list the managers last sent). */
  managers(): string[];
  /** Answers image requests for this node (`skiff image ...`), for the node-request channel. */
  images: ImageOps;
  /** Closes the session and watchers; containers keep running. */
  stop(): Promise<void>;
}

const ARCHITECTURES: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386' };

export async function startAgent(options: AgentOptions): Promise<RunningAgent> {
  const log = options.log.child({ component: 'agent' });
  const clock = options.clock ?? Date.now;
  const stateDir = join(options.dataDir, 'runtime');
  // Overlay networks and the embedded resolver (issue #8). The records of attached containers
  // are read before anything else: a restarted agent keeps their devices.
  const overlay = new OverlayNetworks({ stateDir, localAddr: underlayIp(options.addr), logger: log.child({ component: 'overlay' }) });
  await overlay.init();
  const ingress = new IngressMesh({ localAddr: underlayIp(options.addr), hostBridge: options.bridgeName, bridgeSubnet: options.bridgeSubnet, logger: log.child({ component: 'ingress' }) });
  const dns = await startResolver(options, stateDir, overlay, log);
  const runtime = await createRuntime({
    stateDir,
    runcRoot: options.runcRoot,
    secretsDir: options.secretsDir ?? join(dirname(options.runcRoot), 'secrets'),
    cgroupParent: options.cgroupParent,
    bridgeName: options.bridgeName,
    bridgeSubnet: options.bridgeSubnet,
  }, { overlay, embeddedDns: dns !== undefined });
  const images = createImageStore({
    dataDir: join(options.dataDir, 'images'),
    defaultRegistry: options.defaultRegistry,
    insecureRegistries: options.insecureRegistries,
    ...(options.registryCredentials === undefined ? {} : { credentials: options.registryCredentials }),
  });
  // The session is made before the task manager reports anything: reports start only once
  // assignments arrive over that session.
  // Every task state change defers the collection that follows a burst of starts or stops.
  const collector = idleCollector();
  const tasks: TaskManager = new TaskManager(runtime, images, (taskId, status, addresses) => {
    collector.poke();
    session.report(taskId, status, addresses);
  }, clock, log, {
    ...(options.drainMs === undefined ? {} : { drainMs: options.drainMs }),
    // Backends: tasks on overlay networks (VIPs) and tasks of services that publish ports (the mesh).
    balanced: (task) => onOverlay(task) || ingress.hasTask(task.meta?.id ?? ''),
  });
  await tasks.start();
  const imageDeps = { store: images, imagesInUse: async () => tasks.imagesInUse() };
  // Before any pull: finishes deletions a crash interrupted and drops what no image refers to.
  await collectImageGarbageAtStartup(imageDeps).catch((error: unknown) => log.warn('image garbage collection failed', { error: String(error) }));
  const imageOps: ImageOps = createImageOps(imageDeps);
  const stopImageGc = startImageGcLoop(imageDeps, log);
  const volumeOps = createVolumeOps({ stateDir, volumesInUse: () => tasks.volumesInUse() });
  const runtimePaths = new RuntimePaths(stateDir);
  const rotator = new LogRotator({
    maxBytes: options.logMaxBytes ?? DEFAULT_LOG_MAX_BYTES,
    maxFiles: options.logMaxFiles ?? DEFAULT_LOG_MAX_FILES,
    // The logs directory, not runtime.list(): cheap enough to look at every few seconds.
    containers: async () =>
      (await readdir(runtimePaths.logsDir).catch(() => []))
        .filter((name) => name.endsWith('.log'))
        .map((name) => name.slice(0, -'.log'.length))
        .map((containerId) => ({ containerId, logPath: runtimePaths.logPath(containerId), ctlFifo: join(runtimePaths.bundleDir(containerId), 'ctl') })),
    log,
  });
  rotator.start();
  let nodeId = '';
  const session: AgentSession = new AgentSession({
    managers: options.managers,
    credentials: options.credentials,
    addr: options.addr,
    description: {
      hostname: options.hostname,
      platform: { os: process.platform, architecture: ARCHITECTURES[process.arch] ?? process.arch },
      resources: { nanoCpus: availableParallelism() * 1e9, memoryBytes: totalmem(), pids: 0 },
      engineVersion: 'skiff-runc',
    },
    log,
    onSessionStarted: (id) => {
      nodeId = id;
      tasks.sessionStarted();
    },
    ...(options.onManagers === undefined ? {} : { onManagers: options.onManagers }),
    onRequest: (request, client) => void answerNodeRequest(client, request, { runtime, images: options.images ?? imageOps, volumes: volumeOps, nodeId: () => nodeId, log }),
    onAssignments: (assignments) => tasks.apply(assignments.kind, assignments.updated, assignments.removed, assignments),
    onNodeChanged: () => options.onRoleChange?.(),
    onNetworks: (update) => {
      overlay.apply(update).catch((error: unknown) => log.warn('cannot apply networks update', { error: String(error) }));
      void ingress.apply(update);
    },
  });
  session.start();
  log.info('agent started', { hostname: options.hostname, managers: options.managers });
  return {
    runtime,
    images: imageOps,
    managers: () => session.currentManagers(),
    async stop() {
      collector.stop();
      session.close();
      stopImageGc();
      await rotator.stop();
      await tasks.stop();
      await runtime.close();
      await dns?.stop();
    },
  };
}

/** The IP part of the node's address (`ip` or `ip:port`): the VXLAN tunnel endpoint. */

/**
 * Starts the embedded DNS resolver on the host bridge's gateway (the bridge is made first so the
 * address exists). Without it (port 53 taken) containers use the host's nameservers directly.
 */
async function startResolver(options: AgentOptions, stateDir: string, overlay: OverlayNetworks, log: Logger): Promise<DnsServer | undefined> {
  const address = formatAddress(gatewayAddress(parseSubnet(options.bridgeSubnet)));
  const dns = new DnsServer({ address, scopeOf: (source) => overlay.scopeOf(source), logger: log.child({ component: 'dns' }) });
  try {
    await new BridgeNetwork({ stateDir, bridgeName: options.bridgeName, bridgeSubnet: options.bridgeSubnet }).ensureBridge();
    await dns.start();
    return dns;
  } catch (error) {
    log.warn('embedded DNS resolver not started; containers use the host nameservers', { address, error: String(error) });
    return undefined;
  }
}
