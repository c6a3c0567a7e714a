import { describe, expect, it } from 'vitest';
import type { Node, Service, Task } from '../../proto/skiff/v1/objects.js';
import { TaskState } from '../../proto/skiff/v1/types.js';
import type { StoreReader } from '../store/store.js';
import { INGRESS_VIEW_ID } from './ingress-view.js';
import { networkUpdates, type NetworkSession } from './network-updates.js';
import { emptyChanges, NetworkIndex } from './network-views.js';

const meta = (id: string) => ({ id, version: 1, createdAtMs: 0, updatedAtMs: 0 });

/** A fake store reader over plain maps (named so: only get and list are used). */
class FakeReader {
  readonly objects = { network: new Map(), node: new Map<string, Node>(), service: new Map<string, Service>(), task: new Map<string, Task>() };
  get(kind: keyof FakeReader['objects'], id: string): unknown {
    return this.objects[kind].get(id);
  }
  list(kind: string): unknown[] {
    return kind in this.objects ? [...this.objects[kind as keyof FakeReader['objects']].values()] : [];
  }
  asReader(): StoreReader {
    return this as unknown as StoreReader;
  }
}

function task(id: string, nodeId: string, state: TaskState, bridge: string): Task {
  return {
    meta: meta(id), serviceId: 'svc1', serviceName: 'web', slot: Number(id.slice(1)), nodeId, spec: undefined, specVersion: 0, imageDigest: '',
    desiredState: TaskState.TASK_STATE_RUNNING,
    status: { state, message: '', err: '', timestampMs: 0, exitCode: 0, containerId: '', pid: 0, health: 0 },
    networks: [{ network: 'bridge', addresses: [bridge] }],
  } as Task;
}

function service(labels: Record<string, string>, published: number): Service {
  return {
    meta: meta('svc1'),
    spec: { name: 'web', labels, taskTemplate: { networks: [] }, endpoint: undefined },
    endpoint: { spec: undefined, ports: published > 0 ? [{ name: '', protocol: 'tcp', targetPort: 80, publishedPort: published, publishMode: 'ingress' }] : [], virtualIps: [] },
  } as unknown as Service;
}

function session(nodeId: string): NetworkSession & { sent: Set<string> } {
  const sent = new Set<string>();
  return { nodeId, sent, networksSent: sent, sendNetworks: () => undefined };
}

describe('ingress view', () => {
  const reader = new FakeReader();
  for (const [id, addr] of [['n1', '192.168.0.1'], ['n2', '192.168.0.2:4242'], ['n3', '192.168.0.3']] as Array<[string, string]>) reader.objects.node.set(id, { meta: meta(id), status: { state: 1, message: '', addr } } as Node);
  reader.objects.service.set('svc1', service({}, 0));
  reader.objects.task.set('t1', task('t1', 'n1', TaskState.TASK_STATE_RUNNING, '172.20.1.5'));
  reader.objects.task.set('t2', task('t2', 'n2', TaskState.TASK_STATE_STARTING, '172.20.2.5'));
  const index = new NetworkIndex(reader.asReader());
  const sessions = new Map(['n1', 'n2', 'n3'].map((id) => [id, session(id)]));

  it('is nobody\'s while no service publishes a port', () => {
    expect(index.networksOfNode('n3')).toEqual([]);
    expect(index.view(INGRESS_VIEW_ID)).toBeUndefined();
  });

  it('goes to every node once a service publishes, with every node\'s address and the tasks\' bridge addresses and readiness', () => {
    const published = service({ 'skiff.ingress.traffic': 'local' }, 8080);
    reader.objects.service.set('svc1', published);
    const changes = emptyChanges();
    index.apply({ kind: 'service', action: 'update', object: published } as never, changes);
    expect([...changes.nodes].sort()).toEqual(['n1', 'n2', 'n3']);
    expect(index.networksOfNode('n3')).toEqual([INGRESS_VIEW_ID]);
    const view = index.view(INGRESS_VIEW_ID);
    expect(view?.endpoints.map((endpoint) => [endpoint.taskId, endpoint.nodeAddr, endpoint.address, endpoint.ready])).toEqual([
      ['', '192.168.0.1', '', false],
      ['', '192.168.0.2', '', false],
      ['', '192.168.0.3', '', false],
      ['t1', '192.168.0.1', '172.20.1.5', true],
      ['t2', '192.168.0.2', '172.20.2.5', false],
    ]);
    expect(view?.services.map((entry) => [entry.name, entry.endpointMode, entry.ports.map((port) => port.publishedPort)])).toEqual([['web', 'local', [8080]]]);
    const updates = networkUpdates(index, changes, sessions);
    for (const id of ['n1', 'n2', 'n3']) expect(updates.get(sessions.get(id)!)?.[0]?.views.map((entry) => entry.network?.meta?.id)).toEqual([INGRESS_VIEW_ID]);
    for (const one of sessions.values()) one.sent.add(INGRESS_VIEW_ID);
  });

  it('changes with a task of the service becoming ready, and is removed everywhere when the service goes', () => {
    const ready = task('t2', 'n2', TaskState.TASK_STATE_RUNNING, '172.20.2.5');
    reader.objects.task.set('t2', ready);
    const changes = emptyChanges();
    index.apply({ kind: 'task', action: 'update', object: ready } as never, changes);
    expect(changes.networks.has(INGRESS_VIEW_ID)).toBe(true);
    expect(index.view(INGRESS_VIEW_ID)?.endpoints.filter((endpoint) => endpoint.ready).map((endpoint) => endpoint.taskId)).toEqual(['t1', 't2']);
    const removed = reader.objects.service.get('svc1')!;
    reader.objects.service.delete('svc1');
    const gone = emptyChanges();
    index.apply({ kind: 'service', action: 'remove', object: removed } as never, gone);
    const updates = networkUpdates(index, gone, sessions);
    for (const id of ['n1', 'n2', 'n3']) expect(updates.get(sessions.get(id)!)?.[0]?.removed).toEqual([INGRESS_VIEW_ID]);
  });
});
