/**
 * A manager: the store, the control API, the dispatcher and the controllers, served on the
 * node's gRPC port with mutual TLS and on a local unix socket. With the local store backend
 * this manager is the single leader; the Raft backend makes it one of a group.
 */
import { chmod, mkdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { checkUnixSocketPath } from '../common/address.js';
import type { Logger } from '../common/log.js';
import { BOOTSTRAP_FILE, CA_KEY_FILE, channelCredentials, channelOptions, joinServerCredentials, type CertificateAuthority, type ClusterBootstrap, type NodeCredentials, serverCredentials } from '../pki/index.js';
import { NodeCAService, NodeJoinService } from '../proto/skiff/v1/ca.js';
import { ControlClient, ControlService } from '../proto/skiff/v1/control.js';
import { DispatcherService } from '../proto/skiff/v1/dispatcher.js';
import { NodeAvailability, NodeRole, NodeState } from '../proto/skiff/v1/types.js';
import { RaftService } from '../proto/skiff/v1/raft.js';
import { managerAddresses, managerStatuses } from './manager-status.js';
import type { MemberId } from './raft/core/types.js';
import { RaftGroup } from './raft-group.js';
import { controlHandlers } from './api/control-service.js';
import { dockerControlOverGrpc, startDockerApi } from './api/docker/docker-server.js';
import type { Membership, NodeRequestOptions } from './api/control-common.js';
import type { LeaderControl } from './api/leader-proxy.js';
import { DEFAULT_HEARTBEAT_PERIOD_MS, Dispatcher } from './dispatcher/dispatcher.js';
import { ControllerRunner } from './orchestrator/controller-loop.js';
import { DEFAULT_TASK_HISTORY_LIMIT, reaperController } from './orchestrator/reaper-controller.js';
import { allocatorController } from './allocator/allocator-controller.js';
import { updateController } from './orchestrator/update-controller.js';
import { replicatedController } from './orchestrator/replicated-controller.js';
import { globalController } from './orchestrator/global-controller.js';
import { rebalanceController } from './orchestrator/rebalance-controller.js';
import { meetsPlacementConstraints } from './orchestrator/scheduler-controller.js';
import { placingController } from './orchestrator/placing-controller.js';
import { Store, type StoreReader, type WriteTransaction } from './store/store.js';
import { Authorizer } from './security/authorization.js';
import { ensureClusterSecurity, nodeCaHandlers, nodeJoinHandlers } from './security/node-ca.js';
import { rootRotationController } from './security/root-rotation.js';
import { resolveImageTag } from '../agent/image/tag-resolver.js';
import type { RegistryCredentials } from '../agent/image/registry-client.js';

/** Largest gRPC message a manager accepts; bigger requests are refused with RESOURCE_EXHAUSTED. */
export const MAX_GRPC_MESSAGE_BYTES = 4 * 1024 * 1024;

export interface ManagerOptions {
  dataDir: string;
  clusterId: string;
  selfNodeId: string;
  credentials: NodeCredentials;
  listenAddr: string;
  advertiseAddr: string;
  controlSocket: string;
  /**
   * The unix socket of the Docker-compatible API (manager/api/docker); default: `docker.sock`
   * beside the control socket; '' serves none.
   */
  dockerSocket?: string;
  /** A manager to join (a new manager); undefined bootstraps or restarts. */
  join?: string | undefined;
  /** More managers to try joining through, in order, after `join`. */
  joinAlternatives?: readonly string[];
  forceNewCluster?: boolean;
  heartbeatPeriodMs?: number;
  /**
   * Runs no scheduler: tasks are committed and never placed. Only for the placement benchmark's
   * reference (skiffd's hidden --simulation-no-scheduler), which times bare task commits.
   */
  withoutScheduler?: boolean;
  /** The cluster CA from `skiff init` (first manager only): moved into the store, then off disk. */
  ca?: CertificateAuthority | undefined;
  /** The data key that encrypts the Raft directory (see manager/keys). */
  dataKey?: Buffer | undefined;
  /**
   * Called with the cluster's unlock key whenever autolock is turned on, off (undefined) or the
   * key rotates: the caller re-wraps its data key and node key with it.
   */
  onUnlockKey?: (unlockKey: string | undefined) => Promise<void>;
  /** Where the join port listens; default: the gRPC port + 1 on the same address. Port 0 picks one. */
  joinListenAddr?: string;
  /** Tokens and certificate lifetime from `skiff init`, used when this manager creates the cluster. */
  bootstrap?: ClusterBootstrap | undefined;
  clock?: () => number;
  /** Registries as the agents see them (skiffd's --default-registry, --insecure-registry): tags are pinned to digests at service create. */
  registries?: { defaultRegistry: string; insecureRegistries: string[]; credentials?: Record<string, RegistryCredentials> };
  log: Logger;
}

export interface RunningManager {
  store: Store;
  /** The gRPC addresses of every manager this one knows of (from its store). */
  managerAddresses(): string[];
  /** The port the join port listens on. */
  joinPort: number;
  stop(): Promise<void>;
}

/** Binds `server`; resolves with the port bound (the kernel's choice for port 0). */
function bind(server: grpc.Server, address: string, credentials: grpc.ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, credentials, (error, port) => (error === null ? resolve(port) : reject(new Error(`cannot listen on ${address}: ${error.message}`))));
  });
}

export async function startManager(options: ManagerOptions): Promise<RunningManager> {
  // Before anything binds: a path the socket API would truncate is refused, not served elsewhere.
  checkUnixSocketPath(options.controlSocket, 'the control API');
  const clock = options.clock ?? Date.now;
  const log = options.log.child({ component: 'manager' });
  const peerCredentials = channelCredentials(options.credentials);
  let onLeadership: (leader: boolean) => void = () => undefined;
  const group: RaftGroup = new RaftGroup({
    dir: join(options.dataDir, 'raft'),
    selfId: options.selfNodeId as MemberId,
    selfAddr: options.advertiseAddr,
    selfName: options.advertiseAddr,
    clusterId: options.clusterId,
    credentials: peerCredentials,
    channelOptions: channelOptions(),
    join: options.join,
    ...(options.joinAlternatives === undefined ? {} : { joinAlternatives: options.joinAlternatives }),
    forceNewCluster: options.forceNewCluster ?? false,
    onLeadership: (leader) => onLeadership(leader),
    onJoin: (member, addr): Promise<void> => recordManagerAddress(store, member, addr),
    dataKey: options.dataKey,
    log: options.log.child({ component: 'raft' }),
  });
  const store: Store = new Store(group.backend, clock);
  await store.start();
  // Every manager keeps its transport's address book equal to the managers recorded in the store.
  const syncAddresses = (): void => {
    for (const [id, addr] of managerAddresses(store.reader)) group.transport.setAddress(id as MemberId, addr);
  };
  store.subscribe((commit) => {
    if (commit.events.some((event) => event.kind === 'node')) syncAddresses();
  });
  const heartbeatPeriodMs = options.heartbeatPeriodMs ?? DEFAULT_HEARTBEAT_PERIOD_MS;
  const dispatcher = new Dispatcher(
    store,
    { clusterId: options.clusterId, heartbeatPeriodMs, managers: () => [...managerAddresses(store.reader).values()], clock },
    options.log.child({ component: 'dispatcher' }),
  );
  // The replicated orchestrator places the tasks it creates itself (placing-controller.ts).
  const placing = options.withoutScheduler === true ? replicatedController : placingController();
  const controllers = [placing, globalController(meetsPlacementConstraints), rebalanceController, updateController, allocatorController(), reaperController(), rootRotationController];
  const runners = controllers.map(
    (controller) => new ControllerRunner(controller, store, clock, options.log.child({ component: controller.name })),
  );

  const serverOptions: grpc.ServerOptions = {
    'grpc.max_receive_message_length': MAX_GRPC_MESSAGE_BYTES,
    'grpc.keepalive_time_ms': 10_000,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.http2.min_ping_interval_without_data_ms': 5_000,
  };
  const statuses = () => managerStatuses(group, store.reader, options.selfNodeId, peerCredentials, channelOptions());
  // Removed nodes are refused on every RPC, and their open calls are ended the moment they are.
  let denied = new Set<string>();
  const authorizer = new Authorizer(options.clusterId, (nodeId) => denied.has(nodeId));
  const syncDenied = (): void => {
    const next = new Set((store.reader.list('cluster')[0]?.deniedNodes ?? []).map((entry) => entry.nodeId));
    const added = [...next].filter((id) => !denied.has(id));
    denied = next;
    for (const nodeId of added) {
      const ended = authorizer.cutOff(nodeId);
      log.info('node denied; its open calls were ended', { nodeId, calls: ended });
    }
  };
  syncDenied();
  // Autolock: every manager keeps its keys wrapped the way the cluster says, one change at a time.
  let unlockKeyApplied: string | undefined | null = null;
  let unlockKeyChain = Promise.resolve();
  const syncUnlockKey = (): void => {
    const cluster = store.reader.list('cluster')[0];
    if (cluster === undefined || options.onUnlockKey === undefined) return;
    const wanted = cluster.spec?.autolock === true && cluster.unlockKey !== '' ? cluster.unlockKey : undefined;
    if (wanted === unlockKeyApplied) return;
    unlockKeyApplied = wanted;
    const apply = options.onUnlockKey;
    unlockKeyChain = unlockKeyChain
      .then(() => apply(wanted))
      .then(() => log.info(wanted === undefined ? 'autolock is off: key-encryption key on disk' : 'autolock is on: keys wrapped with the unlock key'))
      .catch((error: unknown) => log.error('cannot re-wrap keys for autolock', { error: String(error) }));
  };
  store.subscribe((commit) => {
    if (commit.events.some((event) => event.kind === 'cluster')) {
      syncDenied();
      syncUnlockKey();
      void forgetCaKey(store.reader, options, log);
    }
  });
  const caOptions = { isRaftMember: (nodeId: string) => group.isMember(nodeId as MemberId), selfId: options.selfNodeId, clock };

  const remote = new grpc.Server({ ...serverOptions, interceptors: [authorizer.interceptor] });
  const membership: Membership = {
    get leading() {
      return group.leading;
    },
    selfId: options.selfNodeId,
    isMember: (nodeId) => group.isMember(nodeId as MemberId),
    removalBlocker: (nodeId) => group.removalBlocker(nodeId as MemberId),
    removeMember: (nodeId) => group.removeMember(nodeId as MemberId),
    transferLeadershipAway: () => group.transferLeadershipAway(),
    voters: () => {
      const status = group.status();
      const reachable = status.conf.voters.filter((id) => id === options.selfNodeId || status.progress.get(id)?.recentActive === true).length;
      return { total: status.conf.voters.length, reachable };
    },
  };
  // Logs, exec and images: the leader asks its agents; a follower relays the call to the leader.
  let leaderControl: LeaderControl | undefined;
  const nodeRequests: NodeRequestOptions = {
    broker: () => (dispatcher.dispatching ? dispatcher.requests : undefined),
    subscribe: (listener) => store.subscribe(listener),
    leader: () => {
      const addr = group.leaderId === options.selfNodeId ? undefined : managerAddresses(store.reader).get(group.leaderId);
      if (addr === undefined) return undefined;
      if (leaderControl?.addr !== addr) {
        leaderControl?.client.close();
        leaderControl = { addr, client: new ControlClient(addr, peerCredentials, channelOptions()) };
      }
      return leaderControl;
    },
  };
  const controlOptions = { clusterId: options.clusterId, managerStatuses: statuses, membership, clock, nodeRequests, ...imageResolver(options) };
  remote.addService(ControlService, controlHandlers(store, { ...controlOptions, local: false }));
  remote.addService(DispatcherService, dispatcher.handlers());
  remote.addService(RaftService, group.handlers());
  remote.addService(NodeCAService, nodeCaHandlers(store, caOptions));
  await bind(remote, options.listenAddr, serverCredentials(options.credentials));

  // The join port: TLS without client certificates, serving only NodeJoin (the token is checked).
  const joinServer = new grpc.Server({ ...serverOptions, 'grpc.max_receive_message_length': 64 * 1024, interceptors: [authorizer.interceptor] });
  joinServer.addService(NodeJoinService, nodeJoinHandlers(store, caOptions));
  const joinPort = await bind(joinServer, options.joinListenAddr ?? joinAddress(options.listenAddr), joinServerCredentials(options.credentials));

  const local = new grpc.Server(serverOptions);
  local.addService(ControlService, controlHandlers(store, { ...controlOptions, local: true }));
  await mkdir(dirname(options.controlSocket), { recursive: true });
  await rm(options.controlSocket, { force: true });
  await bind(local, `unix://${options.controlSocket}`, grpc.ServerCredentials.createInsecure());
  // The socket's file mode is its access control: root only.
  await chmod(options.controlSocket, 0o600);

  // The Docker-compatible API translates to the Control API through the socket just bound.
  const dockerSocket = options.dockerSocket ?? join(dirname(options.controlSocket), 'docker.sock');
  const dockerControl = dockerSocket === '' ? undefined : new ControlClient(`unix://${options.controlSocket}`, grpc.credentials.createInsecure(), channelOptions());
  // An auxiliary interface: a socket that cannot be made is logged, and the manager runs on.
  const dockerApi = dockerControl === undefined
    ? undefined
    : await startDockerApi({
        socketPath: dockerSocket,
        control: dockerControlOverGrpc(dockerControl),
        selfNodeId: options.selfNodeId,
        clusterId: options.clusterId,
        ...imageResolver(options),
        log: log.child({ component: 'docker-api' }),
      }).catch((error: unknown) => {
        log.error('cannot serve the Docker API; the manager runs without it', { dockerSocket, error: error instanceof Error ? error.message : String(error) });
        return undefined;
      });

  // Controllers and the dispatcher run on the leader only, and stop the moment it is not.
  let leading = false;
  let leaderDutiesStarted: Promise<void> = Promise.resolve();
  onLeadership = (leader) => {
    if (leader === leading) return;
    leading = leader;
    if (!leader) {
      for (const runner of runners) runner.stop();
      dispatcher.stop();
      return;
    }
    leaderDutiesStarted = recordLeadership(store, options, heartbeatPeriodMs, log).finally(() => {
      if (!leading) return;
      dispatcher.start();
      for (const runner of runners) runner.start();
    });
  };
  await group.start();
  // A manager that leads when start() returns is already dispatching and reconciling.
  await leaderDutiesStarted;
  syncAddresses();
  syncUnlockKey();
  await forgetCaKey(store.reader, options, log);
  log.info('manager started', { listenAddr: options.listenAddr, controlSocket: options.controlSocket, dockerSocket, storeVersion: store.reader.version });

  return {
    store,
    managerAddresses: () => [...managerAddresses(store.reader).values()],
    joinPort,
    async stop() {
      await unlockKeyChain;
      onLeadership(false);
      onLeadership = () => undefined;
      await Promise.all([remote, joinServer, local].map((server) => new Promise<void>((resolve) => {
        const timer = setTimeout(() => { server.forceShutdown(); resolve(); }, 2_000);
        server.tryShutdown(() => { clearTimeout(timer); resolve(); });
      })));
      leaderControl?.client.close();
      await dockerApi?.close();
      dockerControl?.close();
      await group.stop();
      await store.close();
      await rm(options.controlSocket, { force: true });
    },
  };
}

/**
 * Adds to `transaction` what makes manager `nodeId` findable at `addr`: its node, created if the
 * node has not registered yet, with its manager address. Leadership is not stored: `node ls`
 * reads it live from Raft.
 */
function upsertManagerNode(transaction: WriteTransaction, reader: StoreReader, nodeId: string, addr: string): void {
  const node = reader.get('node', nodeId);
  const managerStatus = { addr, leader: false, reachability: 'reachable', raftId: 0 };
  if (node === undefined) {
    transaction.create('node', {
      meta: { id: nodeId, version: 0, createdAtMs: 0, updatedAtMs: 0 },
      spec: { desiredRole: NodeRole.NODE_ROLE_MANAGER, availability: NodeAvailability.NODE_AVAILABILITY_ACTIVE, labels: {} },
      description: undefined,
      status: { state: NodeState.NODE_STATE_UNKNOWN, message: '', addr: addr.split(':')[0] ?? '' },
      managerStatus,
      role: NodeRole.NODE_ROLE_MANAGER,
      // Unknown until NodeCA issues this node a certificate (the first manager's comes from `skiff init`).
      certCaDigest: '',
    });
  } else if (node.managerStatus?.addr !== addr || node.role !== NodeRole.NODE_ROLE_MANAGER) {
    // A promoted worker becomes a manager the moment it joins the group.
    transaction.update('node', { ...node, managerStatus, role: NodeRole.NODE_ROLE_MANAGER });
  }
}

/** Records a joining manager's address durably. */
async function recordManagerAddress(store: Store, nodeId: string, addr: string): Promise<void> {
  await store.update((transaction, reader) => upsertManagerNode(transaction, reader, nodeId, addr));
}

/**
 * A new leader makes sure the cluster object exists and that its own node records its manager
 * address, so every manager (and every agent) can find it. Retried by the next leadership if it fails.
 */
async function recordLeadership(store: Store, options: ManagerOptions, heartbeatPeriodMs: number, log: Logger): Promise<void> {
  try {
    await store.update((transaction, reader) => {
      if (reader.list('cluster').length === 0) {
        transaction.create('cluster', {
          meta: { id: options.clusterId, version: 0, createdAtMs: 0, updatedAtMs: 0 },
          spec: { name: 'default', heartbeatPeriodMs, taskHistoryLimit: DEFAULT_TASK_HISTORY_LIMIT, nodeCertExpiryMs: options.bootstrap?.certExpiryMs ?? 0,
            autolock: false,
            defaultAddressPool: options.bootstrap?.defaultAddressPool ?? '',
            defaultSubnetSize: options.bootstrap?.defaultSubnetSize ?? 0,
          },
          rootCaCertPem: options.credentials.caCertPem,
          rootCa: undefined,
          joinTokens: undefined,
          deniedNodes: [],
          unlockKey: '',
        });
      }
      upsertManagerNode(transaction, reader, options.selfNodeId, options.advertiseAddr);
    });
    await store.update((transaction, reader) => {
      const cluster = reader.list('cluster')[0];
      if (cluster !== undefined) ensureClusterSecurity(transaction, cluster, options.ca, options.bootstrap === undefined ? undefined : { worker: options.bootstrap.workerToken, manager: options.bootstrap.managerToken });
    });
  } catch (error) {
    log.warn('cannot record leadership in the store', { error: String(error) });
  }
}

/** The join port: the gRPC port + 1 on the same address. */
export function joinAddress(listenAddr: string): string {
  const separator = listenAddr.lastIndexOf(':');
  return `${listenAddr.slice(0, separator)}:${Number(listenAddr.slice(separator + 1)) + 1}`;
}

/**
 * Once the store holds the CA key that `skiff init` left in <dataDir>/ca, the file goes: the only
 * copy at rest is then the one in the (encrypted) Raft log.
 */
async function forgetCaKey(reader: StoreReader, options: ManagerOptions, log: Logger): Promise<void> {
  if (options.ca === undefined) return;
  if (reader.list('cluster')[0]?.rootCa?.caKeyPem !== options.ca.keyPem) return;
  const path = join(options.dataDir, 'ca', CA_KEY_FILE);
  const existed = await rm(path).then(() => true, () => false);
  await rm(join(options.dataDir, 'ca', BOOTSTRAP_FILE), { force: true });
  if (existed) log.info('the CA key is in the replicated store now; removed it from disk', { path });
}

/** Tag pinning for the control API: the registry's digest, or the tag unchanged with a warning (as Docker does). */
function imageResolver(options: ManagerOptions): { resolveImage?: (image: string) => Promise<string> } {
  const registries = options.registries;
  if (registries === undefined) return {};
  const log = options.log.child({ component: 'image-resolver' });
  return {
    resolveImage: async (image) => {
      const resolution = await resolveImageTag(image, registries);
      if (resolution.kind === 'pinned') log.info('image tag pinned', { image, digest: resolution.digest });
      else if (resolution.reason !== 'the reference has a digest already') log.warn('image could not be resolved to a digest; tasks may run different versions of it', { image, reason: resolution.reason });
      return resolution.image;
    },
  };
}
