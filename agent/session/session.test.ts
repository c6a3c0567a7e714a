import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../../common/log.js';
import { type Assignments, AssignmentsKind } from '../../proto/skiff/v1/dispatcher.js';
import { HealthState, NodeState, TaskState } from '../../proto/skiff/v1/types.js';
// The agent never imports manager code; its tests talk to a real manager to check the wire contract.
import { type ControlApi, FakeCluster, fakeServiceSpec } from '../../manager/api/testing/fake-cluster.js';
import { FakeAgent } from '../../manager/dispatcher/testing/fake-agent.js';
import { AgentSession } from './session.js';

const HEARTBEAT_PERIOD_MS = 100;
const WAIT = { timeout: 8_000, interval: 10 };

let cluster: FakeCluster;
let admin: ControlApi;
let session: AgentSession | undefined;
beforeEach(async () => {
  cluster = await FakeCluster.start({ heartbeatPeriodMs: HEARTBEAT_PERIOD_MS });
  admin = await cluster.control();
});
afterEach(async () => {
  session?.close();
  session = undefined;
  await cluster.close();
});

interface Recorded {
  started: string[];
  assignments: Assignments[];
}

async function startSession(nodeId = 'node-h2'): Promise<Recorded> {
  const recorded: Recorded = { started: [], assignments: [] };
  session = new AgentSession({
    managers: [cluster.address],
    credentials: await cluster.credentials('worker', nodeId),
    description: { hostname: 'h2', platform: undefined, resources: undefined, engineVersion: 'test' },
    addr: '10.0.0.2',
    log: silentLogger,
    onAssignments: (assignments) => recorded.assignments.push(assignments),
    onSessionStarted: (id) => recorded.started.push(id),
  });
  session.start();
  return recorded;
}

const running = (containerId: string) => ({ state: TaskState.TASK_STATE_RUNNING, message: 'started', err: '', timestampMs: 1, exitCode: 0, containerId, pid: 42, health: HealthState.HEALTH_STATE_NONE });

describe('agent session', () => {
  it('agent session registers its node, receives its assignments and delivers task statuses', async () => {
    const recorded = await startSession();
    await vi.waitFor(() => expect(recorded.started).toEqual(['node-h2']), WAIT);
    await admin.call((c) => c.createService, { spec: fakeServiceSpec('web', 1) });
    await vi.waitFor(() => expect(recorded.assignments.flatMap((a) => a.updated)).toHaveLength(1), WAIT);
    expect(recorded.assignments[0]?.kind).toBe(AssignmentsKind.ASSIGNMENTS_KIND_FULL);
    const taskId = recorded.assignments.flatMap((a) => a.updated)[0]!.meta!.id;
    session!.report(taskId, running(taskId), ['198.18.129.2']);
    await vi.waitFor(async () => {
      const [task] = (await admin.call((c) => c.listTasks, { service: 'web', node: '' })).tasks;
      expect(task).toMatchObject({ status: { state: TaskState.TASK_STATE_RUNNING, pid: 42 }, networks: [{ network: 'bridge', addresses: ['198.18.129.2'] }] });
    }, WAIT);
  });

  it('agent session heartbeats keep its node ready past the heartbeat deadline', async () => {
    const recorded = await startSession();
    await vi.waitFor(() => expect(recorded.started).toHaveLength(1), WAIT);
    // A silent fake node next to it goes down after 3 missed periods; the session's node must not.
    const silent = new FakeAgent(cluster.address, await cluster.credentials('worker', 'silent'), 'h3', { heartbeats: false });
    try {
      await vi.waitFor(async () => {
        const states = Object.fromEntries((await admin.call((c) => c.listNodes, {})).nodes.map((node) => [node.meta?.id, node.status?.state]));
        expect(states).toEqual({ silent: NodeState.NODE_STATE_DOWN, 'node-h2': NodeState.NODE_STATE_READY });
      }, WAIT);
    } finally {
      silent.close();
    }
  });

  it('agent session reconnects after a manager restart, gets a new full set and resends what was reported meanwhile', async () => {
    const recorded = await startSession();
    await admin.call((c) => c.createService, { spec: fakeServiceSpec('web', 1) });
    await vi.waitFor(() => expect(recorded.assignments.flatMap((a) => a.updated)).toHaveLength(1), WAIT);
    const taskId = recorded.assignments.flatMap((a) => a.updated)[0]!.meta!.id;
    await cluster.restart();
    // Reported while no session is up: queued, sent once the new session starts.
    session!.report(taskId, running(taskId), []);
    await vi.waitFor(() => expect(recorded.started).toHaveLength(2), WAIT);
    const fullSets = (): Assignments[] => recorded.assignments.filter((a) => a.kind === AssignmentsKind.ASSIGNMENTS_KIND_FULL);
    await vi.waitFor(() => expect(fullSets()).toHaveLength(2), WAIT);
    expect(fullSets()[1]?.updated.map((task) => task.meta?.id)).toEqual([taskId]);
    await vi.waitFor(async () => {
      const [task] = (await admin.call((c) => c.listTasks, { service: 'web', node: '' })).tasks;
      expect(task?.status?.state).toBe(TaskState.TASK_STATE_RUNNING);
    }, WAIT);
  });
});
