/**
 * A fake agent: a real Dispatcher client over mutual TLS with a node certificate, driven by the
 * test. It says hello, keeps every message it receives, folds assignments into the task set an
 * agent would hold, sends heartbeats until told to stop, and sends the status reports it is given.
 */
import * as grpc from '@grpc/grpc-js';
import { channelCredentials, channelOptions, type NodeCredentials } from '../../../pki/index.js';
import {
  type AgentMessage,
  type Assignments,
  AssignmentsKind,
  DispatcherClient,
  type DispatcherMessage,
  type SessionStarted,
} from '../../../proto/skiff/v1/dispatcher.js';
import type { Task, TaskStatus } from '../../../proto/skiff/v1/objects.js';
import { HealthState, type TaskState } from '../../../proto/skiff/v1/types.js';

export class FakeAgent {
  /** Every message from the dispatcher, in order. */
  readonly received: DispatcherMessage[] = [];
  /** The task set an agent would hold: FULL replaces it, INCREMENTAL patches it. */
  readonly tasks = new Map<string, Task>();
  /** Set when the stream failed; `ended` when the manager closed it. */
  error: grpc.ServiceError | undefined;
  ended = false;
  private readonly client: DispatcherClient;
  private readonly call: grpc.ClientDuplexStream<AgentMessage, DispatcherMessage>;
  private heartbeat: NodeJS.Timeout | undefined;

  constructor(
    address: string,
    credentials: NodeCredentials,
    readonly hostname: string,
    options: { heartbeats?: boolean; addr?: string; hello?: boolean } = {},
  ) {
    this.client = new DispatcherClient(address, channelCredentials(credentials), channelOptions());
    this.call = this.client.session();
    this.call.on('data', (message: DispatcherMessage) => {
      this.received.push(message);
      if (message.message?.$case === 'started' && options.heartbeats !== false) this.startHeartbeats(message.message.value.heartbeatPeriodMs);
      if (message.message?.$case === 'assignments') this.apply(message.message.value);
    });
    this.call.on('error', (error: grpc.ServiceError) => {
      this.error = error;
      this.stopHeartbeats();
    });
    this.call.on('end', () => {
      this.ended = true;
      this.stopHeartbeats();
    });
    if (options.hello === false) {
      this.call.write({ message: { $case: 'heartbeat', value: {} } });
      return;
    }
    this.call.write({ message: { $case: 'hello', value: { description: { hostname, platform: undefined, resources: undefined, engineVersion: 'fake' }, addr: options.addr ?? '127.0.0.1' } } });
  }

  get started(): SessionStarted | undefined {
    const message = this.received.find((item) => item.message?.$case === 'started')?.message;
    return message?.$case === 'started' ? message.value : undefined;
  }

  /** Every assignments message received, in order. */
  get assignments(): Assignments[] {
    return this.received.flatMap((item) => (item.message?.$case === 'assignments' ? [item.message.value] : []));
  }

  startHeartbeats(periodMs: number): void {
    this.stopHeartbeats();
    this.heartbeat = setInterval(() => this.call.write({ message: { $case: 'heartbeat', value: {} } }), periodMs);
  }

  stopHeartbeats(): void {
    if (this.heartbeat !== undefined) clearInterval(this.heartbeat);
    this.heartbeat = undefined;
  }

  /** Sends one status batch: each entry a task id and the state to report. */
  report(updates: ReadonlyArray<{ taskId: string; state: TaskState; addresses?: string[]; containerId?: string; pid?: number }>): void {
    this.call.write({
      message: {
        $case: 'status',
        value: {
          updates: updates.map(({ taskId, state, addresses, containerId, pid }) => ({
            taskId,
            status: fakeStatus(state, containerId ?? taskId, pid ?? 0),
            networks: addresses === undefined ? [] : [{ network: 'bridge', addresses }],
          })),
        },
      },
    });
  }

  close(): void {
    this.stopHeartbeats();
    this.call.cancel();
    this.client.close();
  }

  private apply(assignments: Assignments): void {
    if (assignments.kind === AssignmentsKind.ASSIGNMENTS_KIND_FULL) this.tasks.clear();
    for (const task of assignments.updated) this.tasks.set(task.meta?.id ?? '', task);
    for (const taskId of assignments.removed) this.tasks.delete(taskId);
  }
}

function fakeStatus(state: TaskState, containerId: string, pid: number): TaskStatus {
  return { state, message: 'fake agent', err: '', timestampMs: Date.now(), exitCode: 0, containerId, pid, health: HealthState.HEALTH_STATE_NONE };
}
