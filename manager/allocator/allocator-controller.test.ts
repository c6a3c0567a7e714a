import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../../common/log.js';
import { Cluster, Network, Service, type Task } from '../../proto/skiff/v1/objects.js';
import { TaskSpec } from '../../proto/skiff/v1/specs.js';
import { TaskState } from '../../proto/skiff/v1/types.js';
import { ControllerRunner } from '../orchestrator/controller-loop.js';
import { schedulerController } from '../orchestrator/scheduler-controller.js';
import { fakeNode, fakeTask, type TempStore, tempStore } from '../orchestrator/testing/fake-objects.js';
import type { Store } from '../store/store.js';
import { allocatorController } from './allocator-controller.js';
import { taskAllocated } from './task-networks.js';

const WAIT = { timeout: 3_000, interval: 10 };

let temp: TempStore;
let store: Store;
let runners: ControllerRunner[] = [];

function network(id: string, subnet = ''): Network {
  return Network.fromPartial({ meta: { id }, spec: { name: id, driver: 'overlay', subnet } });
}

function service(id: string, networks: string[], ports: Array<{ targetPort: number; publishedPort: number; publishMode?: string }> = []): Service {
  return Service.fromPartial({
    meta: { id },
    spec: { name: id, taskTemplate: { networks }, endpoint: { mode: '', ports: ports.map((port) => ({ protocol: 'tcp', publishMode: 'ingress', ...port })) } },
    specVersion: 1,
  });
}

function networkedTask(id: string, serviceId: string, networks: string[], options: { state?: TaskState; desiredState?: TaskState; nodeId?: string } = {}): Task {
  return { ...fakeTask(id, { serviceId, ...options }), spec: TaskSpec.fromPartial({ networks }) };
}

function start(...controllers: Array<ReturnType<typeof allocatorController> | ReturnType<typeof schedulerController>>): void {
  for (const controller of controllers) {
    const runner = new ControllerRunner(controller, store, Date.now, silentLogger);
    runners.push(runner);
    runner.start();
  }
}

const addressOf = (taskId: string, networkId: string): string | undefined => store.reader.get('task', taskId)?.networks.find((attachment) => attachment.network === networkId)?.addresses[0];

beforeEach(async () => {
  temp = await tempStore();
  store = temp.store;
});
afterEach(async () => {
  for (const runner of runners) runner.stop();
  runners = [];
  await temp.close();
});

describe('allocator controller', () => {
  it('gives networks subnets of the cluster pool and unique VXLAN ids, honouring a requested subnet', async () => {
    await store.update((tx) => {
      tx.create('cluster', Cluster.fromPartial({ meta: { id: 'c' }, spec: { name: 'default', defaultAddressPool: '198.19.0.0/16', defaultSubnetSize: 24 } }));
      tx.create('network', network('fixed', '198.19.0.0/24'));
      tx.create('network', network('a'));
    });
    start(allocatorController());
    await vi.waitFor(() => expect(store.reader.list('network').every((each) => each.allocation !== undefined)).toBe(true), WAIT);
    expect(store.reader.get('network', 'fixed')?.allocation).toEqual({ subnet: '198.19.0.0/24', gateway: '198.19.0.1', vni: expect.any(Number) });
    // The automatic one avoids the requested subnet.
    expect(store.reader.get('network', 'a')?.allocation).toMatchObject({ subnet: '198.19.1.0/24', gateway: '198.19.1.1' });
    await store.update((tx) => tx.create('network', network('b')));
    await vi.waitFor(() => expect(store.reader.get('network', 'b')?.allocation?.subnet).toBe('198.19.2.0/24'), WAIT);
    const vnis = store.reader.list('network').map((each) => each.allocation?.vni);
    expect(new Set(vnis).size).toBe(3);
    expect(Math.min(...vnis.map(Number))).toBeGreaterThanOrEqual(4096);
    // A removed network's subnet is free for the next one.
    await store.update((tx) => tx.remove('network', store.reader.get('network', 'a')!));
    await store.update((tx) => tx.create('network', network('c')));
    await vi.waitFor(() => expect(store.reader.get('network', 'c')?.allocation?.subnet).toBe('198.19.1.0/24'), WAIT);
  });

  it('gives a service a VIP per network and ingress ports, and tasks addresses before the scheduler places them', async () => {
    await store.update((tx) => {
      tx.create('node', fakeNode('n1'));
      tx.create('node', fakeNode('n2'));
      tx.create('network', network('front'));
      tx.create('network', network('back'));
      tx.create('service', service('web', ['front', 'back'], [{ targetPort: 80, publishedPort: 8080 }, { targetPort: 443, publishedPort: 0 }, { targetPort: 9000, publishedPort: 9000, publishMode: 'host' }]));
      tx.create('service', service('api', [], [{ targetPort: 80, publishedPort: 0 }]));
      tx.create('task', networkedTask('t1', 'web', ['front', 'back']));
      tx.create('task', networkedTask('t2', 'web', ['front', 'back']));
    });
    start(allocatorController(), schedulerController());
    // Host-mode port 9000 keeps the two tasks on different nodes.
    await vi.waitFor(() => expect(['t1', 't2'].map((id) => store.reader.get('task', id)?.nodeId).sort()).toEqual(['n1', 'n2']), WAIT);
    const web = store.reader.get('service', 'web')!;
    const front = store.reader.get('network', 'front')!.allocation!.subnet;
    expect(front).toBe('10.0.0.0/24');
    expect(web.endpoint?.virtualIps.map((vip) => vip.addr).sort()).toEqual(['10.0.0.2/24', '10.0.1.2/24']);
    expect(web.endpoint?.ports.map((port) => `${port.targetPort}:${port.publishedPort}/${port.publishMode}`)).toEqual(['80:8080/ingress', '443:30000/ingress', '9000:9000/host']);
    expect(store.reader.get('service', 'api')?.endpoint?.ports.map((port) => port.publishedPort)).toEqual([30001]);
    const taskAddresses = ['t1', 't2'].flatMap((id) => [addressOf(id, 'front'), addressOf(id, 'back')]);
    expect(new Set(taskAddresses).size).toBe(4);
    expect(taskAddresses.sort()).toEqual(['10.0.0.3/24', '10.0.0.4/24', '10.0.1.3/24', '10.0.1.4/24']);
  });

  it('makes tasks wait when a network is full, and gives a stopped task\'s address to the next', async () => {
    await store.update((tx) => {
      tx.create('network', network('tiny', '10.9.0.0/29')); // 5 host addresses: the VIP and 4 tasks
      tx.create('service', service('web', ['tiny']));
      for (const id of ['t1', 't2', 't3', 't4', 't5']) tx.create('task', networkedTask(id, 'web', ['tiny']));
    });
    start(allocatorController());
    await vi.waitFor(() => expect(store.reader.get('task', 't5')?.status?.err).toMatch(/^waiting for an address on network tiny/), WAIT);
    expect(['t1', 't2', 't3', 't4'].map((id) => addressOf(id, 'tiny')).sort()).toEqual(['10.9.0.3/29', '10.9.0.4/29', '10.9.0.5/29', '10.9.0.6/29']);
    expect(taskAllocated(store.reader.get('task', 't5')!)).toBe(false);
    // t2 stops for good: its address is free again.
    const t2 = store.reader.get('task', 't2')!;
    await store.update((tx) => tx.update('task', { ...t2, nodeId: 'n1', desiredState: TaskState.TASK_STATE_SHUTDOWN, status: { ...t2.status!, state: TaskState.TASK_STATE_SHUTDOWN } }));
    await vi.waitFor(() => expect(addressOf('t5', 'tiny')).toBe(addressOf('t2', 'tiny')), WAIT);
    expect(store.reader.get('task', 't5')?.status?.err).toBe('');
  });

  it('rebuilds what is taken from the store, so a new leader never hands out an address twice', async () => {
    await store.update((tx) => {
      tx.create('network', network('net'));
      tx.create('service', service('web', ['net'], [{ targetPort: 80, publishedPort: 0 }]));
      tx.create('task', networkedTask('t1', 'web', ['net']));
    });
    start(allocatorController());
    await vi.waitFor(() => expect(addressOf('t1', 'net')).toBeDefined(), WAIT);
    for (const runner of runners) runner.stop();
    runners = [];
    await store.update((tx) => {
      tx.create('task', networkedTask('t2', 'web', ['net']));
      tx.create('service', service('api', [], [{ targetPort: 80, publishedPort: 0 }]));
    });
    start(allocatorController());
    await vi.waitFor(() => expect(addressOf('t2', 'net')).toBeDefined(), WAIT);
    const vip = store.reader.get('service', 'web')?.endpoint?.virtualIps[0]?.addr;
    expect(new Set([vip, addressOf('t1', 'net'), addressOf('t2', 'net')]).size).toBe(3);
    await vi.waitFor(() => expect(store.reader.get('service', 'api')?.endpoint?.ports[0]?.publishedPort).toBe(30001), WAIT);
  });
});
