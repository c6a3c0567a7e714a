import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AssignmentsKind, DispatcherMessage, type NetworksUpdate } from '../../proto/skiff/v1/dispatcher.js';
import type { Task } from '../../proto/skiff/v1/objects.js';
import type { ServiceSpec } from '../../proto/skiff/v1/specs.js';
import { NodeRole, NodeState, TaskState } from '../../proto/skiff/v1/types.js';
import { type ControlApi, FakeCluster, fakeServiceSpec } from '../api/testing/fake-cluster.js';
import { HEARTBEAT_MISSES } from './dispatcher.js';
import { FakeAgent } from './testing/fake-agent.js';

const HEARTBEAT_PERIOD_MS = 100;
const WAIT = { timeout: 5_000, interval: 10 };
const FORWARD: TaskState[] = [TaskState.TASK_STATE_ACCEPTED, TaskState.TASK_STATE_PREPARING, TaskState.TASK_STATE_READY, TaskState.TASK_STATE_STARTING, TaskState.TASK_STATE_RUNNING];

let cluster: FakeCluster;
let admin: ControlApi;
const agents: FakeAgent[] = [];
beforeEach(async () => {
  cluster = await FakeCluster.start({ heartbeatPeriodMs: HEARTBEAT_PERIOD_MS });
  admin = await cluster.control();
});
afterEach(async () => {
  for (const agent of agents.splice(0)) agent.close();
  await cluster.close();
});

async function connectAgent(hostname: string, options: { nodeId?: string; heartbeats?: boolean } = {}): Promise<{ agent: FakeAgent; nodeId: string }> {
  const nodeId = options.nodeId ?? `node-${hostname}`;
  const agent = new FakeAgent(cluster.address, await cluster.credentials('worker', nodeId), hostname, { heartbeats: options.heartbeats ?? true, addr: `10.0.0.${agents.length + 1}` });
  agents.push(agent);
  await vi.waitFor(() => expect(agent.assignments.length).toBeGreaterThan(0), WAIT);
  return { agent, nodeId };
}

/** The agents' nodes: the manager records its own node when it becomes leader, which these tests leave aside. */
async function nodes() {
  return (await admin.call((c) => c.listNodes, {})).nodes.filter((node) => node.role !== NodeRole.NODE_ROLE_MANAGER);
}

async function tasks(service = ''): Promise<Task[]> {
  return (await admin.call((c) => c.listTasks, { service, node: '' })).tasks;
}

async function taskById(taskId: string): Promise<Task | undefined> {
  return (await tasks()).find((task) => task.meta?.id === taskId);
}

async function waitForAssigned(agent: FakeAgent, count: number): Promise<Task[]> {
  await vi.waitFor(() => expect(agent.tasks.size).toBe(count), WAIT);
  return [...agent.tasks.values()];
}

/** The networks updates an agent received, in order. */
function networksUpdates(agent: FakeAgent): NetworksUpdate[] {
  return agent.received.flatMap((item) => (item.message?.$case === 'networks' ? [item.message.value] : []));
}

describe('dispatcher network views', () => {
  it('dispatcher sends each node the view of a network its tasks are on before their assignments, and removes it when they end', async () => {
    const first = await connectAgent('h2');
    const second = await connectAgent('h3');
    const { network } = await admin.call((c) => c.createNetwork, { spec: { name: 'front', labels: {}, driver: '', subnet: '', internal: false, attachable: false } });
    const networkId = network?.meta?.id ?? '';
    const spec = fakeServiceSpec('web', 4);
    await admin.call((c) => c.createService, { noResolveImage: false, spec: { ...spec, taskTemplate: { ...spec.taskTemplate!, networks: [networkId] } } });
    const assigned = [...(await waitForAssigned(first.agent, 2)), ...(await waitForAssigned(second.agent, 2))];
    for (const { agent } of [first, second]) {
      // The first update that names the network came before the first assignment of a task on it.
      const firstView = agent.received.findIndex((item) => item.message?.$case === 'networks' && item.message.value.views.some((view) => view.network?.meta?.id === networkId));
      const firstTask = agent.received.findIndex((item) => item.message?.$case === 'assignments' && item.message.value.updated.length > 0);
      expect(firstView).toBeGreaterThan(-1);
      expect(firstView).toBeLessThan(firstTask);
    }
    first.agent.report(assigned.slice(0, 2).flatMap((task) => FORWARD.map((state) => ({ taskId: task.meta?.id ?? '', state, addresses: ['198.18.0.9'] }))));
    await vi.waitFor(() => {
      const view = networksUpdates(second.agent).flatMap((update) => update.views).filter((candidate) => candidate.network?.meta?.id === networkId).at(-1);
      expect(view?.endpoints).toHaveLength(4);
      expect(view?.endpoints.filter((endpoint) => endpoint.ready).map((endpoint) => endpoint.nodeAddr)).toEqual(['10.0.0.1', '10.0.0.1']);
      expect(view?.services).toEqual([expect.objectContaining({ name: 'web', endpointMode: 'vip', vip: expect.stringMatching(/\/\d+$/) })]);
    }, WAIT);
    // The agent's bridge address joins the task's attachments instead of replacing its overlay address.
    const reported = await taskById(assigned[0]?.meta?.id ?? '');
    expect(reported?.networks.map((attachment) => attachment.network).sort()).toEqual(['bridge', networkId].sort());
    await admin.call((c) => c.removeService, { service: 'web' });
    first.agent.report(assigned.slice(0, 2).map((task) => ({ taskId: task.meta?.id ?? '', state: TaskState.TASK_STATE_SHUTDOWN })));
    second.agent.report(assigned.slice(2).map((task) => ({ taskId: task.meta?.id ?? '', state: TaskState.TASK_STATE_SHUTDOWN })));
    for (const { agent } of [first, second]) {
      await vi.waitFor(() => expect(networksUpdates(agent).at(-1)?.removed).toEqual([networkId]), WAIT);
    }
  });
});

describe('dispatcher', () => {
  it('dispatcher registers an agent as a ready node with its hostname, under its certificate node id', async () => {
    const { agent, nodeId } = await connectAgent('h2');
    expect(agent.started).toMatchObject({ nodeId, heartbeatPeriodMs: HEARTBEAT_PERIOD_MS, managers: [cluster.address] });
    await vi.waitFor(async () => {
      const [node, ...others] = await nodes();
      expect(others).toEqual([]);
      expect(node).toMatchObject({ meta: { id: nodeId }, description: { hostname: 'h2' }, status: { state: NodeState.NODE_STATE_READY, addr: '10.0.0.1' }, role: NodeRole.NODE_ROLE_WORKER });
    }, WAIT);
  });

  it('dispatcher sends session started and a full set first, then incremental assignments', async () => {
    const { agent, nodeId } = await connectAgent('h2');
    expect(agent.received.slice(0, 3).map((message) => message.message?.$case)).toEqual(['started', 'networks', 'assignments']);
    expect(agent.assignments[0]).toEqual({ kind: AssignmentsKind.ASSIGNMENTS_KIND_FULL, updated: [], removed: [], secrets: [], configs: [] });
    await admin.call((c) => c.createService, { noResolveImage: false, spec: fakeServiceSpec('web', 2) });
    const assigned = await waitForAssigned(agent, 2);
    expect(agent.assignments.slice(1).every((assignments) => assignments.kind === AssignmentsKind.ASSIGNMENTS_KIND_INCREMENTAL)).toBe(true);
    expect(assigned.map((task) => task.slot).sort()).toEqual([1, 2]);
    expect(assigned.every((task) => task.nodeId === nodeId && task.serviceName === 'web' && task.spec?.container?.image === 'demo/web:v1')).toBe(true);
    expect(assigned.every((task) => task.status?.state === TaskState.TASK_STATE_ASSIGNED && task.desiredState === TaskState.TASK_STATE_RUNNING)).toBe(true);
  });

  it('dispatcher sends the tasks already assigned in the full set of a new session', async () => {
    const { agent, nodeId } = await connectAgent('h2');
    await admin.call((c) => c.createService, { noResolveImage: false, spec: fakeServiceSpec('web', 2) });
    const assigned = await waitForAssigned(agent, 2);
    agent.close();
    const { agent: again } = await connectAgent('h2', { nodeId });
    const full = again.assignments[0];
    expect(full?.kind).toBe(AssignmentsKind.ASSIGNMENTS_KIND_FULL);
    expect(full?.updated.map((task) => task.meta?.id).sort()).toEqual(assigned.map((task) => task.meta?.id).sort());
  });

  it('dispatcher records reports from accepted to running, with addresses', async () => {
    const { agent } = await connectAgent('h2');
    await admin.call((c) => c.createService, { noResolveImage: false, spec: fakeServiceSpec('web', 2) });
    const assigned = await waitForAssigned(agent, 2);
    for (const state of FORWARD) agent.report(assigned.map((task, index) => ({ taskId: task.meta!.id, state, addresses: [`198.18.129.${index + 2}`], pid: 100 + index })));
    await vi.waitFor(async () => expect((await tasks('web')).map((task) => task.status?.state)).toEqual([TaskState.TASK_STATE_RUNNING, TaskState.TASK_STATE_RUNNING]), WAIT);
    const first = await taskById(assigned[0]!.meta!.id);
    expect(first?.status).toMatchObject({ containerId: assigned[0]!.meta!.id, pid: 100 });
    expect(first?.networks).toEqual([{ network: 'bridge', addresses: ['198.18.129.2'] }]);
    const { counts } = await admin.call((c) => c.listServices, {});
    expect(counts).toEqual([expect.objectContaining({ running: 2, desired: 2 })]);
  });

  it('dispatcher does not send an agent its own status report back, and does send the next change it needs', async () => {
    const { agent } = await connectAgent('h2');
    await admin.call((c) => c.createService, { noResolveImage: false, spec: fakeServiceSpec('web', 1) });
    const [task] = await waitForAssigned(agent, 1);
    const id = task!.meta!.id;
    agent.report([{ taskId: id, state: TaskState.TASK_STATE_RUNNING, addresses: ['198.18.129.2'] }]);
    await vi.waitFor(async () => expect((await taskById(id))?.status?.state).toBe(TaskState.TASK_STATE_RUNNING), WAIT);
    const service = (await admin.call((c) => c.listServices, {})).services.find((candidate) => candidate.spec?.name === 'web');
    await admin.call((c) => c.updateService, { noResolveImage: false, service: 'web', version: service!.meta!.version, spec: { ...service!.spec!, mode: { $case: 'replicated', value: { replicas: 0 } } } });
    // The scale-down reaches the agent; messages are in order, so an echo of RUNNING would be before it.
    await vi.waitFor(() => expect(agent.tasks.get(id)?.desiredState).toBe(TaskState.TASK_STATE_REMOVE), WAIT);
    const sentStates = agent.assignments.flatMap((message) => message.updated.filter((sent) => sent.meta?.id === id).map((sent) => sent.status?.state));
    expect(sentStates).toEqual([TaskState.TASK_STATE_ASSIGNED, TaskState.TASK_STATE_RUNNING]);
    expect(agent.assignments.at(-1)?.updated.find((sent) => sent.meta?.id === id)?.desiredState).toBe(TaskState.TASK_STATE_REMOVE);
  });

  it('dispatcher ignores a report that would move a task backwards', async () => {
    const { agent } = await connectAgent('h2');
    await admin.call((c) => c.createService, { noResolveImage: false, spec: fakeServiceSpec('web', 2) });
    const [first, second] = await waitForAssigned(agent, 2);
    agent.report([{ taskId: first!.meta!.id, state: TaskState.TASK_STATE_RUNNING }]);
    await vi.waitFor(async () => expect((await taskById(first!.meta!.id))?.status?.state).toBe(TaskState.TASK_STATE_RUNNING), WAIT);
    const before = await taskById(first!.meta!.id);
    agent.report([{ taskId: first!.meta!.id, state: TaskState.TASK_STATE_STARTING }]);
    // Reports are applied in order: once this later one shows, the backwards one was handled.
    agent.report([{ taskId: second!.meta!.id, state: TaskState.TASK_STATE_ACCEPTED }]);
    await vi.waitFor(async () => expect((await taskById(second!.meta!.id))?.status?.state).toBe(TaskState.TASK_STATE_ACCEPTED), WAIT);
    expect(await taskById(first!.meta!.id)).toEqual(before);
  });

  it('dispatcher ignores reports about a task assigned to another node', async () => {
    const { agent: one, nodeId: oneId } = await connectAgent('h2');
    const { agent: two, nodeId: twoId } = await connectAgent('h3');
    await admin.call((c) => c.createService, { noResolveImage: false, spec: fakeServiceSpec('web', 2) });
    const [ofOne] = await waitForAssigned(one, 1);
    const [ofTwo] = await waitForAssigned(two, 1);
    expect([ofOne?.nodeId, ofTwo?.nodeId]).toEqual([oneId, twoId]);
    // The reporting node is the certificate's, whatever task ids the messages name.
    two.report([{ taskId: ofOne!.meta!.id, state: TaskState.TASK_STATE_RUNNING }]);
    two.report([{ taskId: ofTwo!.meta!.id, state: TaskState.TASK_STATE_RUNNING }]);
    await vi.waitFor(async () => expect((await taskById(ofTwo!.meta!.id))?.status?.state).toBe(TaskState.TASK_STATE_RUNNING), WAIT);
    expect((await taskById(ofOne!.meta!.id))?.status?.state).toBe(TaskState.TASK_STATE_ASSIGNED);
  });

  it('dispatcher marks a node down after missed heartbeats, orphans its running tasks and replaces them', async () => {
    const { agent: quiet, nodeId: quietId } = await connectAgent('h2');
    const { agent: alive, nodeId: aliveId } = await connectAgent('h3');
    await admin.call((c) => c.createService, { noResolveImage: false, spec: fakeServiceSpec('web', 2, { restartDelayMs: 100 }) });
    const [lost] = await waitForAssigned(quiet, 1);
    const [kept] = await waitForAssigned(alive, 1);
    quiet.report([{ taskId: lost!.meta!.id, state: TaskState.TASK_STATE_RUNNING }]);
    alive.report([{ taskId: kept!.meta!.id, state: TaskState.TASK_STATE_RUNNING }]);
    await vi.waitFor(async () => expect((await tasks('web')).every((task) => task.status?.state === TaskState.TASK_STATE_RUNNING)).toBe(true), WAIT);
    const silencedAtMs = Date.now();
    quiet.stopHeartbeats();
    await vi.waitFor(async () => {
      const states = Object.fromEntries((await nodes()).map((node) => [node.meta?.id, node.status?.state]));
      expect(states).toEqual({ [quietId]: NodeState.NODE_STATE_DOWN, [aliveId]: NodeState.NODE_STATE_READY });
    }, WAIT);
    expect(Date.now() - silencedAtMs).toBeGreaterThanOrEqual(HEARTBEAT_MISSES * HEARTBEAT_PERIOD_MS - 20);
    await vi.waitFor(async () => expect((await taskById(lost!.meta!.id))?.status?.state).toBe(TaskState.TASK_STATE_ORPHANED), WAIT);
    expect((await taskById(kept!.meta!.id))?.status?.state).toBe(TaskState.TASK_STATE_RUNNING);
    await vi.waitFor(async () => {
      const replacement = (await tasks('web')).find((task) => task.slot === lost!.slot && task.meta?.id !== lost!.meta!.id);
      expect(replacement).toMatchObject({ nodeId: aliveId, desiredState: TaskState.TASK_STATE_RUNNING, status: { state: TaskState.TASK_STATE_ASSIGNED } });
    }, WAIT);
    expect((await taskById(lost!.meta!.id))?.desiredState).toBe(TaskState.TASK_STATE_SHUTDOWN);
    // The slow node's session is ended, so its agent reconnects and comes back ready.
    await vi.waitFor(() => expect(quiet.ended).toBe(true), WAIT);
  });

  it('dispatcher keeps a node ready while it sends heartbeats', async () => {
    const { nodeId } = await connectAgent('h2');
    const { nodeId: quietId } = await connectAgent('h3', { heartbeats: false });
    // Wait until the silent node is down: by then the heartbeating one has outlived its deadline several times.
    await vi.waitFor(async () => expect((await nodes()).find((node) => node.meta?.id === quietId)?.status?.state).toBe(NodeState.NODE_STATE_DOWN), WAIT);
    expect((await nodes()).find((node) => node.meta?.id === nodeId)?.status?.state).toBe(NodeState.NODE_STATE_READY);
  });

  it('dispatcher refuses a session from an admin certificate and registers nothing', async () => {
    const agent = new FakeAgent(cluster.address, await cluster.credentials('admin'), 'intruder');
    agents.push(agent);
    await vi.waitFor(() => expect(agent.error?.code).toBe(grpc.status.PERMISSION_DENIED), WAIT);
    expect(agent.error?.details).toContain('requires a worker or manager certificate, the caller\'s is admin');
    expect(agent.received).toEqual([]);
    expect(await nodes()).toEqual([]);
  });

  it('dispatcher refuses a session whose first message is not hello and registers nothing', async () => {
    const agent = new FakeAgent(cluster.address, await cluster.credentials('worker'), 'rude', { hello: false });
    agents.push(agent);
    await vi.waitFor(() => expect(agent.error?.code).toBe(grpc.status.INVALID_ARGUMENT), WAIT);
    expect(agent.error?.details).toContain('the first message must be hello');
    expect(agent.received).toEqual([]);
    expect(await nodes()).toEqual([]);
  });

  it('dispatcher ends the older session when the same node connects again', async () => {
    const { agent: first, nodeId } = await connectAgent('h2');
    const { agent: second } = await connectAgent('h2-renamed', { nodeId });
    await vi.waitFor(() => expect(first.ended || first.error !== undefined).toBe(true), WAIT);
    expect(second.started?.nodeId).toBe(nodeId);
    const [node, ...others] = await nodes();
    expect(others).toEqual([]);
    expect(node?.description?.hostname).toBe('h2-renamed');
  });

  it('dispatcher tells every node to renew when the trust bundle changes, and not on other cluster changes', async () => {
    const { agent } = await connectAgent('h2');
    const store = cluster.manager.store;
    await vi.waitFor(() => expect(store.reader.list('cluster')).toHaveLength(1), WAIT);
    const renewals = (): number => agent.received.filter((message) => message.message?.$case === 'node').length;
    // The renewal goes out at once instead of somewhere in the spread window.
    const random = vi.spyOn(Math, 'random').mockReturnValue(0);
    try {
      const before = store.reader.list('cluster')[0]!;
      await store.update((tx) => tx.update('cluster', { ...before, spec: { ...before.spec!, taskHistoryLimit: 7 } }));
      // A rotation's end: the same signing root (same digest), a bundle without the previous root.
      const changed = store.reader.list('cluster')[0]!;
      await store.update((tx) => tx.update('cluster', { ...changed, rootCaCertPem: `${changed.rootCaCertPem.trimEnd()}\n` + '# bundle changed\n' }));
      await vi.waitFor(() => expect(renewals()).toBe(1), WAIT);
      expect(store.reader.list('cluster')[0]?.rootCa?.caDigest).toBe(before.rootCa?.caDigest);
    } finally {
      random.mockRestore();
    }
  });

  describe('secrets and configs', () => {
    const secretValue = `secret-${randomBytes(16).toString('hex')}`;
    const configValue = `config-${randomBytes(16).toString('hex')}`;
    const usingData = (replicas: number): ServiceSpec => {
      const spec = fakeServiceSpec('db', replicas);
      const container = { ...spec.taskTemplate!.container!, secrets: [{ secretId: '', secretName: 'db-password', target: '', uid: 0, gid: 0, mode: 0 }], configs: [{ configId: '', configName: 'db-conf', target: '/etc/db.conf', uid: 0, gid: 0, mode: 0 }] };
      return { ...spec, taskTemplate: { ...spec.taskTemplate!, container } };
    };
    /** True when any message the agent received carries `value` anywhere on the wire. */
    const everReceived = (agent: FakeAgent, value: string): boolean => agent.received.some((message) => Buffer.from(DispatcherMessage.encode(message).finish()).includes(value));
    const withData = (agent: FakeAgent) => agent.assignments.filter((assignments) => assignments.secrets.length > 0 || assignments.configs.length > 0);
    const text = (data: Uint8Array | undefined): string => new TextDecoder().decode(data);

    it('dispatcher sends secrets and configs only to the node whose task uses them, with that task, once per session', async () => {
      const { agent: one } = await connectAgent('h2');
      const { agent: two } = await connectAgent('h3');
      await admin.call((c) => c.createSecret, { spec: { name: 'db-password', labels: {}, data: new TextEncoder().encode(secretValue) } });
      await admin.call((c) => c.createConfig, { spec: { name: 'db-conf', labels: {}, data: new TextEncoder().encode(configValue) } });
      await admin.call((c) => c.createService, { noResolveImage: false, spec: usingData(1) });
      await vi.waitFor(() => expect(one.tasks.size + two.tasks.size).toBe(1), WAIT);
      const [user, bystander] = one.tasks.size === 1 ? [one, two] : [two, one];
      const [task] = [...user.tasks.values()];
      const [delivery, ...again] = withData(user);
      expect(again).toEqual([]);
      expect(delivery?.updated.map((item) => item.meta?.id)).toContain(task!.meta!.id);
      expect(delivery?.secrets.map((secret) => [secret.spec?.name, text(secret.spec?.data)])).toEqual([['db-password', secretValue]]);
      expect(delivery?.configs.map((config) => [config.spec?.name, text(config.spec?.data)])).toEqual([['db-conf', configValue]]);

      // The task moves on (its own report is not echoed back to it): no data goes again.
      user.report([{ taskId: task!.meta!.id, state: TaskState.TASK_STATE_RUNNING }]);
      await vi.waitFor(async () => expect((await taskById(task!.meta!.id))?.status?.state).toBe(TaskState.TASK_STATE_RUNNING), WAIT);
      expect(withData(user)).toHaveLength(1);

      // A new session sends no data for a task that is running already: it has used it.
      user.close();
      const { agent: reconnected } = await connectAgent(user.hostname, { nodeId: task!.nodeId });
      expect(reconnected.assignments[0]?.updated.map((item) => item.meta?.id)).toEqual([task!.meta!.id]);
      expect(withData(reconnected)).toEqual([]);

      // Another service without them, placed on both nodes, brings the bystander nothing secret.
      await admin.call((c) => c.createService, { noResolveImage: false, spec: fakeServiceSpec('plain', 2) });
      await vi.waitFor(() => expect(bystander.tasks.size).toBeGreaterThan(0), WAIT);
      expect(withData(bystander)).toEqual([]);
      expect(everReceived(bystander, secretValue) || everReceived(bystander, configValue)).toBe(false);
    });

    it('dispatcher sends a secret again in the full set of a new session, and to a node once its task uses it', async () => {
      const { agent: one, nodeId: oneId } = await connectAgent('h2');
      const { agent: two, nodeId: twoId } = await connectAgent('h3');
      await admin.call((c) => c.createSecret, { spec: { name: 'db-password', labels: {}, data: new TextEncoder().encode(secretValue) } });
      await admin.call((c) => c.createConfig, { spec: { name: 'db-conf', labels: {}, data: new TextEncoder().encode(configValue) } });
      const { service } = await admin.call((c) => c.createService, { noResolveImage: false, spec: usingData(1) });
      await vi.waitFor(() => expect(one.tasks.size + two.tasks.size).toBe(1), WAIT);
      const [user, userId, bystander] = one.tasks.size === 1 ? [one, oneId, two] : [two, twoId, one];
      expect(everReceived(bystander, secretValue)).toBe(false);

      user.close();
      const { agent: reconnected } = await connectAgent('h2', { nodeId: userId });
      const full = reconnected.assignments[0];
      expect(full?.kind).toBe(AssignmentsKind.ASSIGNMENTS_KIND_FULL);
      expect(full?.secrets.map((secret) => text(secret.spec?.data))).toEqual([secretValue]);
      expect(full?.configs.map((config) => text(config.spec?.data))).toEqual([configValue]);

      // A second replica spreads to the other node: now its task uses the secret, so it gets it.
      await admin.call((c) => c.updateService, { noResolveImage: false, service: 'db', version: service!.meta!.version, spec: { ...service!.spec!, mode: { $case: 'replicated', value: { replicas: 2 } } } });
      await vi.waitFor(() => expect(bystander.tasks.size).toBe(1), WAIT);
      const [delivery, ...again] = withData(bystander);
      expect(again).toEqual([]);
      expect(delivery?.updated.map((item) => item.meta?.id)).toEqual([...bystander.tasks.keys()]);
      expect(delivery?.secrets.map((secret) => text(secret.spec?.data))).toEqual([secretValue]);
    });
  });
});
