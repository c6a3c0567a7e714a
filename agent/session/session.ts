/**
 * The agent's connection to the managers: one Dispatcher session at a time, with reconnection
 * and failover over the manager list the session hands out. Heartbeats go every period; task
 * statuses are batched and resent in full whenever a new session starts.
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../common/log.js';
import type { NodeCredentials } from '../../pki/credentials-store.js';
import { channelCredentials, channelOptions } from '../../pki/grpc-credentials.js';
import {
  type AgentMessage,
  type Assignments,
  type NodeChanged,
  DispatcherClient,
  type DispatcherMessage,
  type NetworksUpdate,
  type NodeRequest,
} from '../../proto/skiff/v1/dispatcher.js';
import type { NodeDescription, TaskStatus } from '../../proto/skiff/v1/objects.js';
import { HOST_BRIDGE_NETWORK } from '../../common/address.js';

/** First and largest delay between reconnection attempts. */
export const RECONNECT_MIN_DELAY_MS = 100;
export const RECONNECT_MAX_DELAY_MS = 2_000;
/** Wait after a manager refused this node (PERMISSION_DENIED or UNAUTHENTICATED). */
export const REFUSED_RETRY_DELAY_MS = 30_000;
/** Metadata key under which a refusing manager lists the managers to try (see manager/dispatcher). */
const MANAGERS_METADATA_KEY = 'skiff-managers';
/** Status updates per message at most. */
const MAX_STATUS_BATCH = 500;

export interface SessionOptions {
  managers: string[];
  credentials: NodeCredentials;
  description: NodeDescription;
  addr: string;
  log: Logger;
  onAssignments: (assignments: Assignments) => void;
  /** The manager says this node's desired role changed: renew the certificate now. */
  onNodeChanged?: (change: NodeChanged) => void;
  /** The node's overlay networks changed (views before the assignments that use them). */
  onNetworks?: (update: NetworksUpdate) => void;
  /** Called when a new session starts, before its assignments arrive. */
  onSessionStarted: (nodeId: string) => void;
  /** The managers changed (a session started with its list, or the list was updated). */
  onManagers?: (managers: readonly string[]) => void;
  /** A user's request to this node (logs, exec, images): answered over `client`'s Dispatcher.Attach. */
  onRequest?: (request: NodeRequest, client: InstanceType<typeof DispatcherClient>) => void;
}

interface PendingStatus {
  status: TaskStatus;
  addresses: string[];
}

export class AgentSession {
  private managers: string[];
  private managerIndex = 0;
  private call: grpc.ClientDuplexStream<AgentMessage, DispatcherMessage> | undefined;
  private client: InstanceType<typeof DispatcherClient> | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private delayMs = RECONNECT_MIN_DELAY_MS;
  private pending = new Map<string, PendingStatus>();
  private flushScheduled = false;
  private closed = false;
  private connected = false;

  constructor(private readonly options: SessionOptions) {
    this.managers = [...options.managers];
  }

  /** The managers this session tries, in order: the latest list a manager gave, else the configured one. */
  currentManagers(): string[] {
    return [...this.managers];
  }

  start(): void {
    this.connect();
  }

  /** Queues a task status; sent in the next batch of this or the next session. */
  report(taskId: string, status: TaskStatus, addresses: string[]): void {
    this.pending.set(taskId, { status, addresses });
    if (!this.flushScheduled && this.connected) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  close(): void {
    this.closed = true;
    this.teardown();
    if (this.reconnectTimer !== undefined) clearTimeout(this.reconnectTimer);
  }

  private connect(): void {
    if (this.closed) return;
    const manager = this.managers[this.managerIndex % this.managers.length] ?? '';
    const log = this.options.log.child({ manager });
    this.client = new DispatcherClient(manager, channelCredentials(this.options.credentials), {
      ...channelOptions(),
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5_000,
    });
    const call = this.client.session();
    this.call = call;
    call.write({ message: { $case: 'hello', value: { description: this.options.description, addr: this.options.addr } } });
    call.on('data', (message: DispatcherMessage) => {
      switch (message.message?.$case) {
        case 'started': {
          const started = message.message.value;
          log.info('session started', { nodeId: started.nodeId, sessionId: started.sessionId });
          this.connected = true;
          this.delayMs = RECONNECT_MIN_DELAY_MS;
          if (started.managers.length > 0) {
            this.managers = started.managers;
            this.managerIndex = Math.max(0, this.managers.indexOf(manager));
            this.options.onManagers?.(this.managers);
          }
          this.startHeartbeat(started.heartbeatPeriodMs);
          this.options.onSessionStarted(started.nodeId);
          this.flush();
          break;
        }
        case 'assignments':
          this.options.onAssignments(message.message.value);
          break;
        case 'managers':
          if (message.message.value.managers.length > 0) {
            // Keep the manager we are talking to at the current position of the rotation.
            this.managers = message.message.value.managers;
            this.managerIndex = Math.max(0, this.managers.indexOf(manager));
            log.info('managers changed', { managers: this.managers });
            this.options.onManagers?.(this.managers);
          }
          break;
        case 'node':
          this.options.onNodeChanged?.(message.message.value);
          break;
        case 'networks':
          this.options.onNetworks?.(message.message.value);
          break;
        case 'request':
          // Answered on the same manager (the one that holds the request), on this session's channel.
          if (this.client !== undefined && this.options.onRequest !== undefined) this.options.onRequest(message.message.value, this.client);
          else log.warn('node request not handled: no handler', { requestId: message.message.value.requestId });
          break;
        case undefined:
          break;
        default: {
          const exhaustive: never = message.message;
          log.warn('unknown dispatcher message', { message: String(exhaustive) });
        }
      }
    });
    const lost = (reason: string): void => {
      if (this.call !== call) return;
      log.warn('session lost', { reason });
      this.teardown();
      this.managerIndex += 1;
      this.scheduleReconnect();
    };
    call.on('error', (error: grpc.ServiceError) => {
      // A manager that is not the leader says which managers to try.
      const listed = error.metadata?.get(MANAGERS_METADATA_KEY)[0];
      if (typeof listed === 'string' && listed !== '') {
        const known = new Set(this.managers);
        for (const addr of listed.split(',')) if (!known.has(addr)) this.managers.push(addr);
      }
      // Refused for who we are (removed from the cluster, wrong role): asking again every 2 s
      // only fills logs. Wait longer; a new certificate or a re-join changes the answer.
      if (error.code === grpc.status.PERMISSION_DENIED || error.code === grpc.status.UNAUTHENTICATED) this.delayMs = REFUSED_RETRY_DELAY_MS;
      lost(error.message);
    });
    call.on('end', () => lost('stream ended by manager'));
  }

  private scheduleReconnect(): void {
    if (this.closed) return;
    const jitter = Math.floor(Math.random() * this.delayMs * 0.2);
    this.reconnectTimer = setTimeout(() => this.connect(), this.delayMs + jitter);
    this.delayMs = this.delayMs >= REFUSED_RETRY_DELAY_MS ? RECONNECT_MIN_DELAY_MS : Math.min(RECONNECT_MAX_DELAY_MS, this.delayMs * 2);
  }

  private startHeartbeat(periodMs: number): void {
    if (this.heartbeat !== undefined) clearInterval(this.heartbeat);
    this.heartbeat = setInterval(() => this.call?.write({ message: { $case: 'heartbeat', value: {} } }), Math.max(50, periodMs));
  }

  private flush(): void {
    this.flushScheduled = false;
    const call = this.call;
    if (call === undefined || !this.connected || this.pending.size === 0) return;
    const entries = [...this.pending.entries()];
    this.pending.clear();
    for (let offset = 0; offset < entries.length; offset += MAX_STATUS_BATCH) {
      const updates = entries.slice(offset, offset + MAX_STATUS_BATCH).map(([taskId, { status, addresses }]) => ({
        taskId,
        status,
        networks: addresses.length > 0 ? [{ network: HOST_BRIDGE_NETWORK, addresses }] : [],
      }));
      call.write({ message: { $case: 'status', value: { updates } } });
    }
  }

  private teardown(): void {
    this.connected = false;
    if (this.heartbeat !== undefined) clearInterval(this.heartbeat);
    this.heartbeat = undefined;
    const call = this.call;
    this.call = undefined;
    call?.cancel();
    this.client?.close();
    this.client = undefined;
  }
}
