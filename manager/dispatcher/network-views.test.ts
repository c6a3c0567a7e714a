import { describe, expect, it } from 'vitest';
import type { Network, Node, Service, Task } from '../../proto/skiff/v1/objects.js';
import { TaskState } from '../../proto/skiff/v1/types.js';
import type { StoreReader } from '../store/store.js';
import type { StoreEvent } from '../store/tables.js';
import { networkUpdates, type NetworkSession } from './network-updates.js';
import { underlayIp } from '../../common/address.js';
import { emptyChanges, NetworkIndex } from './network-views.js';

const meta = (id: string) => ({ id, version: 1, createdAtMs: 0, updatedAtMs: 0 });

/** A fake store reader over plain maps (named so: only get and list are used). */
class FakeReader {
  readonly objects = { network: new Map<string, Network>(), node: new Map<string, Node>(), service: new Map<string, Service>(), task: new Map<string, Task>() };
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

function task(id: string, nodeId: string, state: TaskState, address: string, networkId = 'net1'): Task {
  return {
    meta: meta(id), serviceId: 'svc1', serviceName: 'web', slot: Number(id.slice(1)), nodeId, spec: undefined, specVersion: 0, imageDigest: '',
    desiredState: TaskState.TASK_STATE_RUNNING,
    status: { state, message: '', err: '', timestampMs: 0, exitCode: 0, containerId: '', pid: 0, health: 0 },
    networks: [{ network: networkId, addresses: [address] }, { network: 'bridge', addresses: ['198.18.0.2'] }],
  } as Task;
}

function setup(): FakeReader {
  const reader = new FakeReader();
  reader.objects.network.set('net1', { meta: meta('net1'), spec: { name: 'front', labels: {}, driver: '', subnet: '', internal: false, attachable: false }, allocation: { subnet: '10.0.0.0/24', gateway: '10.0.0.1', vni: 4096 } });
  for (const [id, addr] of [['n1', '192.168.0.1'], ['n2', '192.168.0.2:4242'], ['n3', '192.168.0.3']] as Array<[string, string]>) reader.objects.node.set(id, { meta: meta(id), status: { state: 1, message: '', addr } } as Node);
  reader.objects.service.set('svc1', {
    meta: meta('svc1'),
    spec: { name: 'web', taskTemplate: { networks: ['net1'], networkAliases: [{ network: 'net1', aliases: ['www'] }] }, endpoint: undefined },
    endpoint: { spec: undefined, ports: [], virtualIps: [{ networkId: 'net1', addr: '10.0.0.2/24' }] },
  } as unknown as Service);
  reader.objects.task.set('t1', task('t1', 'n1', TaskState.TASK_STATE_RUNNING, '10.0.0.3/24'));
  reader.objects.task.set('t2', task('t2', 'n2', TaskState.TASK_STATE_ASSIGNED, '10.0.0.4/24'));
  return reader;
}

function session(nodeId: string): NetworkSession & { sent: Set<string> } {
  const sent = new Set<string>();
  return { nodeId, sent, networksSent: sent, sendNetworks: () => undefined };
}

describe('network views', () => {
  it('network view lists every live endpoint with its node underlay IP and readiness, and the services with their VIP', () => {
    const index = new NetworkIndex(setup().asReader());
    const view = index.view('net1');
    expect(view?.endpoints.map((endpoint) => [endpoint.taskName, endpoint.address, endpoint.nodeAddr, endpoint.ready])).toEqual([
      ['web.1', '10.0.0.3/24', '192.168.0.1', true],
      ['web.2', '10.0.0.4/24', '192.168.0.2', false],
    ]);
    expect(view?.services).toEqual([{ serviceId: 'svc1', name: 'web', vip: '10.0.0.2/24', endpointMode: 'vip', ports: [], aliases: ['www'] }]);
    expect(index.networksOfNode('n1')).toEqual(['net1']);
    expect(index.networksOfNode('n3')).toEqual([]);
    expect(underlayIp('10.1.2.3:4242')).toBe('10.1.2.3');
  });

  it('network updates go only to the nodes on a changed network, and a node whose last task ended hears the removal', () => {
    const reader = setup();
    const index = new NetworkIndex(reader.asReader());
    const sessions = new Map([['n1', session('n1')], ['n2', session('n2')], ['n3', session('n3')]]);
    sessions.get('n1')?.sent.add('net1');
    sessions.get('n2')?.sent.add('net1');
    // t2 fails on n2; t3 starts on n3.
    const failed = task('t2', 'n2', TaskState.TASK_STATE_FAILED, '10.0.0.4/24');
    const started = task('t3', 'n3', TaskState.TASK_STATE_ASSIGNED, '10.0.0.5/24');
    reader.objects.task.set('t2', failed);
    reader.objects.task.set('t3', started);
    const changes = emptyChanges();
    for (const event of [{ kind: 'task', action: 'update', object: failed }, { kind: 'task', action: 'create', object: started }] as StoreEvent[]) index.apply(event, changes);
    const updates = networkUpdates(index, changes, sessions);
    const forNode = (nodeId: string) => updates.get(sessions.get(nodeId)!);
    expect(forNode('n2')).toEqual([{ full: false, views: [], removed: ['net1'] }]);
    expect(forNode('n1')?.[0]?.views[0]?.endpoints.map((endpoint) => endpoint.taskId)).toEqual(['t1', 't3']);
    expect(forNode('n3')?.[0]?.views.map((view) => view.network?.meta?.id)).toEqual(['net1']);
  });

  it('network updates leave nodes that are on no changed network alone', () => {
    const reader = setup();
    reader.objects.network.set('net2', { meta: meta('net2'), spec: undefined, allocation: { subnet: '10.0.1.0/24', gateway: '10.0.1.1', vni: 4097 } });
    const index = new NetworkIndex(reader.asReader());
    const sessions = new Map([['n1', session('n1')], ['n3', session('n3')]]);
    const other = task('t9', 'n3', TaskState.TASK_STATE_RUNNING, '10.0.1.3/24', 'net2');
    reader.objects.task.set('t9', other);
    const changes = emptyChanges();
    index.apply({ kind: 'task', action: 'create', object: other } as StoreEvent, changes);
    const updates = networkUpdates(index, changes, sessions);
    expect(updates.has(sessions.get('n1')!)).toBe(false);
    expect(updates.get(sessions.get('n3')!)?.[0]?.views.map((view) => view.network?.meta?.id)).toEqual(['net2']);
  });
});
