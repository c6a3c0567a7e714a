/**
 * A simulated agent: the real client side of the dispatcher protocol (agent/session's
 * AgentSession: hello, heartbeats at the period SessionStarted gives, batched TaskStatusBatch
 * reports, failover to the leader) over its own gRPC channel with its own worker certificate, in
 * front of a FakeRuntime that "starts" and stops containers at once. Many live in one process.
 */
import type { Logger } from '../../common/log.js';
import { AgentSession } from '../../agent/session/session.js';
import type { NodeCredentials } from '../../pki/index.js';
import type { Assignments } from '../../proto/skiff/v1/dispatcher.js';
import type { NodeDescription, TaskStatus } from '../../proto/skiff/v1/objects.js';
import { HealthState, type TaskState } from '../../proto/skiff/v1/types.js';
import { FakeRuntime } from './fake-runtime.js';

/** What a simulated node says it has (the scheduler may count it against reservations). */
export const SIMULATED_NANO_CPUS = 4 * 1e9;
export const SIMULATED_MEMORY_BYTES = 8 * 1024 * 1024 * 1024;
/** The version string a simulated node reports, so `skiff node ls` tells it apart. */
export const SIMULATED_ENGINE_VERSION = 'skiff-sim';

export interface SimulatedAgentOptions {
  /** Manager addresses to try, the leader first if known (the session fails over on its own). */
  managers: string[];
  credentials: NodeCredentials;
  hostname: string;
  log: Logger;
  /** Wall-clock milliseconds for report timestamps (the shell owns the clock). */
  clock: () => number;
}

export class SimulatedAgent {
  readonly runtime = new FakeRuntime();
  /** Sessions started so far (more than one after a failover or a reconnection). */
  sessionsStarted = 0;
  /** Assignments messages received so far. */
  assignmentsReceived = 0;
  private readonly session: AgentSession;

  constructor(private readonly options: SimulatedAgentOptions) {
    const description: NodeDescription = {
      hostname: options.hostname,
      platform: { os: 'linux', architecture: 'amd64' },
      resources: { nanoCpus: SIMULATED_NANO_CPUS, memoryBytes: SIMULATED_MEMORY_BYTES, pids: 0 },
      engineVersion: SIMULATED_ENGINE_VERSION,
    };
    this.session = new AgentSession({
      managers: options.managers,
      credentials: options.credentials,
      description,
      addr: '127.0.0.1',
      log: options.log,
      onAssignments: (assignments) => this.onAssignments(assignments),
      onSessionStarted: () => {
        this.sessionsStarted += 1;
        for (const report of this.runtime.resend()) this.session.report(report.taskId, this.status(report.taskId, report.state), []);
      },
    });
  }

  start(): void {
    this.session.start();
  }

  close(): void {
    this.session.close();
  }

  private onAssignments(assignments: Assignments): void {
    this.assignmentsReceived += 1;
    // The session keeps the latest status per task and sends them in batches at the next turn,
    // as the real agent's executor reports do: a task's whole start usually goes out as RUNNING.
    for (const report of this.runtime.apply(assignments)) this.session.report(report.taskId, this.status(report.taskId, report.state), []);
  }

  private status(taskId: string, state: TaskState): TaskStatus {
    return { state, message: 'simulated', err: '', timestampMs: this.options.clock(), exitCode: 0, containerId: taskId, pid: 0, health: HealthState.HEALTH_STATE_NONE };
  }
}
