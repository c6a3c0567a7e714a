import { createServer } from 'node:net';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../../common/log.js';
import { createCertificateAuthority, type CertificateAuthority, issueNodeCredentials, newNodeId } from '../../pki/index.js';
import { type Assignments, AssignmentsKind } from '../../proto/skiff/v1/dispatcher.js';
import type { TaskStatus } from '../../proto/skiff/v1/objects.js';
import { HealthState, TaskState } from '../../proto/skiff/v1/types.js';
import * as grpc from '@grpc/grpc-js';
import { AgentSession, RECONNECT_MAX_DELAY_MS, REFUSED_RETRY_DELAY_MS } from './session.js';
import { FakeDispatcher, type FakeSession } from './testing/fake-dispatcher.js';

const WAIT = { timeout: 5_000, interval: 5 };
const HEARTBEAT_PERIOD_MS = 50;

let ca: CertificateAuthority;
let dispatcher: FakeDispatcher;
let session: AgentSession | undefined;
beforeEach(async () => {
  ca = await createCertificateAuthority();
  dispatcher = await FakeDispatcher.start(await issueNodeCredentials(ca, { nodeId: newNodeId(), role: 'manager' }));
});
afterEach(() => {
  session?.close();
  session = undefined;
  dispatcher.stop();
});

interface Recorded {
  started: string[];
  assignments: Assignments[];
}

async function startSession(managers: string[], nodeId = 'node-h2'): Promise<Recorded> {
  const recorded: Recorded = { started: [], assignments: [] };
  session = new AgentSession({
    managers,
    credentials: await issueNodeCredentials(ca, { nodeId, role: 'worker' }),
    description: { hostname: 'h2', platform: undefined, resources: undefined, engineVersion: 'test' },
    addr: '10.0.0.2',
    log: silentLogger,
    onAssignments: (assignments) => recorded.assignments.push(assignments),
    onSessionStarted: (id) => recorded.started.push(id),
  });
  session.start();
  return recorded;
}

async function nthSession(index: number): Promise<FakeSession> {
  await vi.waitFor(() => expect(dispatcher.sessions[index]?.hello).toBeDefined(), WAIT);
  return dispatcher.sessions[index]!;
}

const status = (state: TaskState): TaskStatus => ({ state, message: '', err: '', timestampMs: 1, exitCode: 0, containerId: 't1', pid: 0, health: HealthState.HEALTH_STATE_NONE });

async function unusedAddress(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return `127.0.0.1:${address.port}`;
}

describe('agent session', () => {
  it('agent session says hello with its description and address and passes on started and assignments', async () => {
    const recorded = await startSession([dispatcher.address]);
    const fake = await nthSession(0);
    expect(fake.nodeId).toBe('node-h2');
    expect(fake.hello).toMatchObject({ addr: '10.0.0.2', description: { hostname: 'h2', engineVersion: 'test' } });
    fake.start(HEARTBEAT_PERIOD_MS);
    const full: Assignments = { kind: AssignmentsKind.ASSIGNMENTS_KIND_FULL, updated: [], secrets: [], configs: [], removed: ['gone'] };
    fake.assign(full);
    await vi.waitFor(() => expect(recorded.assignments).toEqual([full]), WAIT);
    expect(recorded.started).toEqual(['node-h2']);
  });

  it('agent session sends heartbeats at the period the manager gave', async () => {
    await startSession([dispatcher.address]);
    const fake = await nthSession(0);
    expect(fake.heartbeats).toBe(0);
    fake.start(HEARTBEAT_PERIOD_MS);
    await vi.waitFor(() => expect(fake.heartbeats).toBeGreaterThanOrEqual(3), WAIT);
  });

  it('agent session holds reports until a session has started, then sends the latest per task in one batch', async () => {
    await startSession([dispatcher.address]);
    const fake = await nthSession(0);
    session!.report('t1', status(TaskState.TASK_STATE_ACCEPTED), []);
    session!.report('t1', status(TaskState.TASK_STATE_RUNNING), ['198.18.129.2']);
    session!.report('t2', status(TaskState.TASK_STATE_PREPARING), []);
    fake.start(HEARTBEAT_PERIOD_MS);
    await vi.waitFor(() => expect(fake.statusBatches).toHaveLength(1), WAIT);
    expect(fake.statusBatches[0]).toEqual([
      { taskId: 't1', status: status(TaskState.TASK_STATE_RUNNING), networks: [{ network: 'bridge', addresses: ['198.18.129.2'] }] },
      { taskId: 't2', status: status(TaskState.TASK_STATE_PREPARING), networks: [] },
    ]);
  });

  it('agent session reconnects when the manager ends the stream and sends what was reported meanwhile', async () => {
    const recorded = await startSession([dispatcher.address]);
    const first = await nthSession(0);
    first.start(HEARTBEAT_PERIOD_MS);
    await vi.waitFor(() => expect(recorded.started).toHaveLength(1), WAIT);
    first.end();
    const second = await nthSession(1);
    expect(second.hello?.description?.hostname).toBe('h2');
    // Between sessions (the new one said hello but has not started): queued, not lost.
    session!.report('t1', status(TaskState.TASK_STATE_FAILED), []);
    await new Promise((resolve) => setImmediate(resolve));
    expect(second.statusBatches).toEqual([]);
    second.start(HEARTBEAT_PERIOD_MS);
    await vi.waitFor(() => expect(second.statusBatches.flat().map((update) => update.status?.state)).toEqual([TaskState.TASK_STATE_FAILED]), WAIT);
    expect(recorded.started).toEqual(['node-h2', 'node-h2']);
    expect(first.statusBatches).toEqual([]);
  });

  it('agent session waits REFUSED_RETRY_DELAY_MS before asking again when a manager refuses the node, not 2 s', async () => {
    await startSession([dispatcher.address]);
    const first = await nthSession(0);
    const refusedAt = Date.now();
    first.fail(grpc.status.PERMISSION_DENIED, 'cannot call /skiff.v1.Dispatcher/Session: node x was removed from the cluster');
    // A transport failure would be retried within RECONNECT_MAX_DELAY_MS; a refusal is not.
    await new Promise((resolve) => setTimeout(resolve, RECONNECT_MAX_DELAY_MS + 500));
    expect(dispatcher.sessions).toHaveLength(1);
    expect(Date.now() - refusedAt).toBeLessThan(REFUSED_RETRY_DELAY_MS);
  });

  it('agent session fails over to the next manager when the first cannot be reached', async () => {
    const recorded = await startSession([await unusedAddress(), dispatcher.address]);
    const fake = await nthSession(0);
    fake.start(HEARTBEAT_PERIOD_MS);
    await vi.waitFor(() => expect(recorded.started).toEqual(['node-h2']), WAIT);
  });
});
