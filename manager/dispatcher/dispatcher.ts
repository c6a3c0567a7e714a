/**
 * The dispatcher: one bidirectional session per agent. The agent's identity is the node id of
 * its client certificate. The session sends SessionStarted, the full assignment set, then
 * incremental changes; it takes heartbeats and batched task-status reports. Nodes that miss
 * heartbeats for HEARTBEAT_MISSES periods are marked down and their tasks orphaned (with grace
 * after a leader change and for the manager's own stalls: heartbeat-deadlines.ts).
 */
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../common/log.js';
import { peerIdentity } from '../../pki/index.js';
import {
  type AgentFrame,
  type AgentHello,
  type AgentMessage,
  type ManagerFrame,
  AssignmentsKind,
  type DispatcherMessage,
  type DispatcherServer,
  type NetworksUpdate,
} from '../../proto/skiff/v1/dispatcher.js';
import type { Node, Task } from '../../proto/skiff/v1/objects.js';
import { NodeAvailability, NodeRole, NodeState } from '../../proto/skiff/v1/types.js';
import type { Store } from '../store/store.js';
import type { StoreCommit, StoreEvent } from '../store/tables.js';
import { orphanTasksOfNode } from '../orchestrator/node-tasks.js';
import { rootTrustKey } from '../security/root-rotation.js';
import { assignmentMessages, newSentData } from './assignment-messages.js';
import { emptyChanges, NetworkIndex } from './network-views.js';
import { fullNetworkUpdates, networkUpdates, type NetworkSession } from './network-updates.js';
import { StatusIntake } from './status-intake.js';
import { SentTasks } from './sent-tasks.js';
import { HeartbeatDeadlines } from './heartbeat-deadlines.js';
import { type AttachCall, NodeRequestBroker } from './node-requests.js';

/** Metadata key of a refusal that lists the managers to try instead (comma-separated ip:port). */
export const MANAGERS_METADATA_KEY = 'skiff-managers';
export { HEARTBEAT_MISSES, LEADER_CHANGE_GRACE_PERIODS } from './heartbeat-deadlines.js';
export const DEFAULT_HEARTBEAT_PERIOD_MS = 1_000;
/** After a CA rotation, nodes are told to renew at random within this window. */
export const CA_ROTATION_SPREAD_MS = 5_000;
/** How long a new session may take to say hello. */
const HELLO_TIMEOUT_MS = 10_000;

export interface DispatcherOptions {
  clusterId: string;
  heartbeatPeriodMs: number;
  /** Addresses of every manager, sent to agents for failover. */
  managers: () => string[];
  clock: () => number;
}

interface Session {
  id: string;
  nodeId: string;
  call: grpc.ServerDuplexStream<AgentMessage, DispatcherMessage>;
  close: () => void;
}

/** What a session wants to hear of a commit; the dispatcher's single subscription calls it. */
interface SessionListener extends NetworkSession {
  sessionId: string;
  taskChanged(event: Extract<StoreEvent, { kind: 'task' }>): void;
  nodesChanged(managers: string[]): void;
  rootChanged(trust: string): void;
}

export class Dispatcher {
  private readonly sessions = new Map<string, Session>();
  private readonly listeners = new Map<string, SessionListener>();
  private readonly deadlines: HeartbeatDeadlines;
  private readonly intake: StatusIntake;
  private checkTimer: NodeJS.Timeout | undefined;
  private active = false;
  /** Live tasks and services by overlay network; built while any session is open. */
  private networkIndex: NetworkIndex | undefined;
  private networkChanges = emptyChanges();
  private networkFlushScheduled = false;
  /** Logs, exec and image requests to the nodes of live sessions (see node-requests.ts). */
  readonly requests: NodeRequestBroker;

  constructor(
    private readonly store: Store,
    private readonly options: DispatcherOptions,
    private readonly log: Logger,
  ) {
    this.intake = new StatusIntake(store, log);
    this.deadlines = new HeartbeatDeadlines(options.heartbeatPeriodMs, checkIntervalMs(options.heartbeatPeriodMs));
    this.requests = new NodeRequestBroker({
      sendToNode: (nodeId, message) => {
        const session = this.active ? this.sessions.get(nodeId) : undefined;
        if (session === undefined) return false;
        session.call.write(message);
        return true;
      },
      log: log.child({ component: 'node-requests' }),
    });
    // One subscription for every session: each task event goes to its node's session only, and
    // what node and cluster changes mean is worked out once per commit, not once per session.
    store.subscribe((commit) => this.fanOut(commit));
  }

  private rootTrust(): string {
    return rootTrustKey(this.store.reader.list('cluster')[0]);
  }

  private fanOut(commit: StoreCommit): void {
    if (this.listeners.size === 0) {
      this.networkIndex = undefined; // rebuilt from the store by the next session
      return;
    }
    const index = this.networkIndex;
    if (index !== undefined) {
      for (const event of commit.events) index.apply(event, this.networkChanges);
      // Scheduled before the sessions' assignment flushes of this commit: a node hears of a
      // network's view before it hears of a task on it.
      if (!this.networkFlushScheduled && (this.networkChanges.networks.size > 0 || this.networkChanges.nodes.size > 0)) {
        this.networkFlushScheduled = true;
        setImmediate(() => this.flushNetworks());
      }
    }
    let nodes = false;
    let cluster = false;
    for (const event of commit.events) {
      if (event.kind === 'task') this.listeners.get(event.object.nodeId)?.taskChanged(event);
      else if (event.kind === 'node') nodes = true;
      else if (event.kind === 'cluster') cluster = true;
    }
    if (cluster) {
      const trust = this.rootTrust();
      for (const listener of this.listeners.values()) listener.rootChanged(trust);
    }
    if (nodes) {
      const managers = this.options.managers();
      for (const listener of this.listeners.values()) listener.nodesChanged(managers);
    }
  }

  /** Sends each session the views of its networks that changed since the last flush (coalesced). */
  private flushNetworks(): void {
    this.networkFlushScheduled = false;
    const changes = this.networkChanges;
    this.networkChanges = emptyChanges();
    const index = this.networkIndex;
    if (index === undefined) return;
    for (const [listener, updates] of networkUpdates(index, changes, this.listeners)) for (const update of updates) listener.sendNetworks(update);
  }

  /** True between start() and stop(): this manager leads and holds the agents' sessions. */
  get dispatching(): boolean {
    return this.active;
  }

  /** The grpc-js handlers of the Dispatcher service. */
  handlers(): DispatcherServer {
    return {
      session: (call) => void this.openSession(call),
      attach: (call) => void this.openAttach(call),
    };
  }

  start(): void {
    this.active = true;
    this.deadlines.start(this.options.clock());
    this.checkTimer = setInterval(() => void this.checkHeartbeats(), checkIntervalMs(this.options.heartbeatPeriodMs));
  }

  /** Ends every session (agents reconnect, possibly to another manager). */
  stop(): void {
    this.active = false;
    if (this.checkTimer !== undefined) clearInterval(this.checkTimer);
    for (const session of this.sessions.values()) session.close();
    this.sessions.clear();
    this.requests.failAll('this manager stopped leading');
  }

  /** An agent answers a NodeRequest; who it is comes from its certificate, as for sessions. */
  private async openAttach(call: grpc.ServerDuplexStream<AgentFrame, ManagerFrame>): Promise<void> {
    const identity = peerIdentity(call);
    if (identity === undefined || identity.clusterId !== this.options.clusterId || identity.role === 'admin') {
      call.emit('error', Object.assign(new Error('cannot attach: the client certificate is not a node certificate of this cluster'), { code: grpc.status.UNAUTHENTICATED }));
      return;
    }
    if (!this.active) {
      call.emit('error', Object.assign(new Error('cannot attach: this manager is not the leader'), { code: grpc.status.UNAVAILABLE }));
      return;
    }
    await this.requests.attach(identity.nodeId, call as AttachCall);
  }

  private async openSession(call: grpc.ServerDuplexStream<AgentMessage, DispatcherMessage>): Promise<void> {
    const identity = peerIdentity(call);
    if (identity === undefined || identity.clusterId !== this.options.clusterId || identity.role === 'admin') {
      call.emit('error', Object.assign(new Error('cannot open session: the client certificate is not a node certificate of this cluster'), { code: grpc.status.UNAUTHENTICATED }));
      return;
    }
    if (!this.active) {
      // Only the leader dispatches; the agent moves on to the next manager it knows.
      const metadata = new grpc.Metadata();
      metadata.set(MANAGERS_METADATA_KEY, this.options.managers().join(','));
      call.emit('error', Object.assign(new Error('cannot open session: this manager is not the leader'), { code: grpc.status.UNAVAILABLE, metadata }));
      return;
    }
    const nodeId = identity.nodeId;
    const log = this.log.child({ nodeId });
    const hello = await firstHello(call).catch((error: unknown) => error as Error);
    if (hello instanceof Error) {
      call.emit('error', Object.assign(hello, { code: grpc.status.INVALID_ARGUMENT }));
      return;
    }
    try {
      await this.registerNode(nodeId, identity.role === 'manager' ? NodeRole.NODE_ROLE_MANAGER : NodeRole.NODE_ROLE_WORKER, hello);
    } catch (error) {
      call.emit('error', Object.assign(new Error(`cannot register node: ${String(error)}`), { code: grpc.status.UNAVAILABLE }));
      return;
    }
    this.sessions.get(nodeId)?.close();
    const sessionId = randomUUID();
    this.deadlines.seen(nodeId, this.options.clock());
    let pendingUpdated = new Map<string, Task>();
    let pendingRemoved = new Set<string>();
    let flushScheduled = false;
    // Secrets and configs go to this node once per session, with the first task that uses them.
    const sent = newSentData();
    // What the agent has been told of each task: changes it needs nothing from stay here.
    const sentTasks = new SentTasks();
    const send = (kind: AssignmentsKind, updated: Task[], removed: string[]): void => {
      for (const assignments of assignmentMessages(kind, updated, removed, this.store.reader, sent)) call.write({ message: { $case: 'assignments', value: assignments } });
    };
    const flush = (): void => {
      flushScheduled = false;
      if (pendingUpdated.size === 0 && pendingRemoved.size === 0) return;
      send(AssignmentsKind.ASSIGNMENTS_KIND_INCREMENTAL, [...pendingUpdated.values()], [...pendingRemoved]);
      pendingUpdated = new Map();
      pendingRemoved = new Set();
    };
    // The full set and the subscription are taken in one synchronous turn: no change is missed.
    call.write({ message: { $case: 'started', value: { nodeId, sessionId, heartbeatPeriodMs: this.options.heartbeatPeriodMs, managers: this.options.managers() } } });
    // Network views before assignments: the agent needs a task's networks to start it.
    this.networkIndex ??= new NetworkIndex(this.store.reader);
    const networksSent = new Set<string>();
    const sendNetworks = (update: NetworksUpdate): void => {
      if (update.full) networksSent.clear();
      for (const view of update.views) networksSent.add(view.network?.meta?.id ?? '');
      for (const removed of update.removed) networksSent.delete(removed);
      call.write({ message: { $case: 'networks', value: update } });
    };
    for (const update of fullNetworkUpdates(this.networkIndex, nodeId)) sendNetworks(update);
    const assigned = this.store.reader.tasksByNode(nodeId);
    sentTasks.reset(assigned);
    send(AssignmentsKind.ASSIGNMENTS_KIND_FULL, assigned, []);
    let managersSent = this.options.managers().join(',');
    const roles = (): string => {
      const node = this.store.reader.get('node', nodeId);
      return `${node?.spec?.desiredRole ?? ''}/${node?.role ?? ''}`;
    };
    let rolesSent = roles();
    let rootSent = this.rootTrust();
    let renewTimer: NodeJS.Timeout | undefined;
    const listener: SessionListener = {
      sessionId,
      nodeId,
      networksSent,
      sendNetworks,
      // `skiff ca rotate` and its end (the old root no longer trusted): every node renews, for a
      // certificate from the new root and then for the new trust bundle, at a random point of a
      // spread window (in batches).
      rootChanged: (trust) => {
        if (trust === rootSent) return;
        rootSent = trust;
        const desiredRole = this.store.reader.get('node', nodeId)?.spec?.desiredRole ?? NodeRole.NODE_ROLE_WORKER;
        clearTimeout(renewTimer);
        renewTimer = setTimeout(() => call.write({ message: { $case: 'node', value: { desiredRole } } }), Math.random() * CA_ROTATION_SPREAD_MS);
      },
      nodesChanged: (managers) => {
        if (managers.join(',') !== managersSent) {
          managersSent = managers.join(',');
          call.write({ message: { $case: 'managers', value: { managers } } });
        }
        // `node promote|demote` (the desired role, then the role once the Raft group changed):
        // the node renews its certificate now, and with it changes role.
        const current = roles();
        const desiredRole = this.store.reader.get('node', nodeId)?.spec?.desiredRole;
        if (current !== rolesSent && desiredRole !== undefined) {
          rolesSent = current;
          call.write({ message: { $case: 'node', value: { desiredRole } } });
        }
      },
      taskChanged: (event) => {
        const id = event.object.meta?.id ?? '';
        if (event.action === 'remove') {
          sentTasks.removed(id);
          pendingUpdated.delete(id);
          pendingRemoved.add(id);
        } else {
          if (!sentTasks.mustSend(event.object)) return;
          pendingRemoved.delete(id);
          pendingUpdated.set(id, event.object);
        }
        if (!flushScheduled) {
          flushScheduled = true;
          setImmediate(flush);
        }
      },
    };
    this.listeners.set(nodeId, listener);
    const unsubscribe = (): void => {
      if (this.listeners.get(nodeId) === listener) this.listeners.delete(nodeId);
    };
    const session: Session = {
      id: sessionId,
      nodeId,
      call,
      close: () => {
        clearTimeout(renewTimer);
        unsubscribe();
        call.end();
      },
    };
    this.sessions.set(nodeId, session);
    log.info('session started', { sessionId, addr: hello.addr });
    call.on('data', (message: AgentMessage) => {
      this.deadlines.seen(nodeId, this.options.clock());
      if (message.message?.$case === 'status' && !this.intake.submit(nodeId, message.message.value.updates)) {
        log.warn('status queue full; dropping a batch (the agent resends)');
      }
    });
    call.resume();
    const end = (): void => {
      clearTimeout(renewTimer);
      unsubscribe();
      if (this.sessions.get(nodeId)?.id === sessionId) this.sessions.delete(nodeId);
      log.info('session ended', { sessionId });
    };
    call.on('end', () => {
      end();
      call.end();
    });
    call.on('error', end);
    call.on('cancelled', end);
  }

  private async registerNode(nodeId: string, role: NodeRole, hello: AgentHello): Promise<void> {
    await this.store.update((transaction, reader) => {
      const existing = reader.get('node', nodeId);
      const status = { state: NodeState.NODE_STATE_READY, message: '', addr: hello.addr };
      if (existing === undefined) {
        const node: Node = {
          meta: { id: nodeId, version: 0, createdAtMs: 0, updatedAtMs: 0 },
          spec: { desiredRole: role, availability: NodeAvailability.NODE_AVAILABILITY_ACTIVE, labels: {} },
          description: hello.description,
          status,
          managerStatus: undefined,
          role,
          // Unknown: the certificate predates this record (NodeCA records the next one).
          certCaDigest: '',
        };
        transaction.create('node', node);
        return;
      }
      // A known node keeps the role the cluster gave it (join, Raft membership, demotion): the
      // certificate it connects with may predate a promotion or demotion by a moment.
      transaction.update('node', { ...existing, description: hello.description, status });
    });
  }

  /** Marks nodes down that missed too many heartbeats, and orphans their running tasks. */
  private async checkHeartbeats(): Promise<void> {
    const now = this.options.clock();
    const candidates = this.store.reader
      .list('node')
      .filter((node) => node.status?.state === NodeState.NODE_STATE_READY || node.status?.state === NodeState.NODE_STATE_UNKNOWN)
      .map((node) => node.meta?.id ?? '');
    const expired = this.deadlines.expired(candidates, now);
    if (expired.length === 0) return;
    try {
      await this.store.update((transaction, reader) => {
        for (const nodeId of expired) {
          const node = reader.get('node', nodeId);
          if (node === undefined) continue;
          this.log.warn('node state', { nodeId: node.meta?.id, transition: 'ready -> down', reason: 'heartbeat missed' });
          transaction.update('node', { ...node, status: { state: NodeState.NODE_STATE_DOWN, message: 'heartbeat failure', addr: node.status?.addr ?? '' } });
          orphanTasksOfNode(transaction, reader, node.meta?.id ?? '', now, 'node is down', 'heartbeat failure for node');
        }
      });
      // A node that was only slow (its agent stalled, not gone) still has its session: end it, so
      // the agent reconnects and registers as ready with a fresh assignment set. Without this a
      // down node whose heartbeats resume in the same session stayed down for good.
      for (const nodeId of expired) this.sessions.get(nodeId)?.close();
    } catch (error) {
      this.log.debug('heartbeat check retry', { error: String(error) });
    }
  }
}

/** How often the leader checks heartbeat deadlines. */
function checkIntervalMs(heartbeatPeriodMs: number): number {
  return Math.max(50, heartbeatPeriodMs / 2);
}

function firstHello(call: grpc.ServerDuplexStream<AgentMessage, DispatcherMessage>): Promise<AgentHello> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`cannot open session: no hello within ${HELLO_TIMEOUT_MS} ms`)), HELLO_TIMEOUT_MS);
    call.once('data', (message: AgentMessage) => {
      clearTimeout(timer);
      // Hold further messages until the session attaches its handler: none may be lost.
      call.pause();
      if (message.message?.$case !== 'hello') reject(new Error('cannot open session: the first message must be hello'));
      else resolve(message.message.value);
    });
  });
}
