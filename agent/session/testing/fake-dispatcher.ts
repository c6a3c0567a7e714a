/**
 * A scripted Dispatcher for session tests: a real grpc-js server with mutual TLS and a manager
 * certificate, whose sessions the test drives by hand (send started and assignments, end the
 * stream) while everything the agent sends is recorded per session.
 */
import * as grpc from '@grpc/grpc-js';
import { type NodeCredentials, peerIdentity, serverCredentials } from '../../../pki/index.js';
import {
  type AgentHello,
  type AgentMessage,
  type Assignments,
  type DispatcherMessage,
  DispatcherService,
  type TaskStatusUpdate,
} from '../../../proto/skiff/v1/dispatcher.js';

export class FakeSession {
  hello: AgentHello | undefined;
  heartbeats = 0;
  readonly statusBatches: TaskStatusUpdate[][] = [];
  cancelled = false;

  constructor(
    /** Node id of the client certificate. */
    readonly nodeId: string,
    private readonly call: grpc.ServerDuplexStream<AgentMessage, DispatcherMessage>,
  ) {
    call.on('data', (message: AgentMessage) => {
      switch (message.message?.$case) {
        case 'hello':
          this.hello = message.message.value;
          break;
        case 'heartbeat':
          this.heartbeats += 1;
          break;
        case 'status':
          this.statusBatches.push(message.message.value.updates);
          break;
        default:
          break;
      }
    });
    call.on('cancelled', () => (this.cancelled = true));
    call.on('error', () => (this.cancelled = true));
  }

  start(heartbeatPeriodMs: number, managers: string[] = []): void {
    this.call.write({ message: { $case: 'started', value: { nodeId: this.nodeId, sessionId: `session-${this.nodeId}`, heartbeatPeriodMs, managers } } });
  }

  assign(assignments: Assignments): void {
    this.call.write({ message: { $case: 'assignments', value: assignments } });
  }

  /** Ends the stream from the manager's side, as a stopping manager does. */
  end(): void {
    this.call.end();
  }

  /** Ends the session with a gRPC error, as a manager refusing this node does. */
  fail(code: grpc.status, details: string): void {
    this.call.emit('error', Object.assign(new Error(details), { code, details }));
  }
}

export class FakeDispatcher {
  private constructor(
    private readonly server: grpc.Server,
    readonly address: string,
    /** Every session opened, in order. */
    readonly sessions: FakeSession[],
  ) {}

  static async start(credentials: NodeCredentials): Promise<FakeDispatcher> {
    const server = new grpc.Server();
    const sessions: FakeSession[] = [];
    server.addService(DispatcherService, {
      session: (call: grpc.ServerDuplexStream<AgentMessage, DispatcherMessage>) => {
        sessions.push(new FakeSession(peerIdentity(call)?.nodeId ?? '', call));
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', serverCredentials(credentials), (error, bound) => (error === null ? resolve(bound) : reject(error))),
    );
    return new FakeDispatcher(server, `127.0.0.1:${port}`, sessions);
  }

  stop(): void {
    this.server.forceShutdown();
  }
}
