import * as grpc from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { NetworkSpec, ServiceSpec } from '../../proto/skiff/v1/specs.js';
import { type ControlApi, FakeCluster, fakeServiceSpec } from './testing/fake-cluster.js';

let cluster: FakeCluster;
let admin: ControlApi;
beforeEach(async () => {
  cluster = await FakeCluster.start();
  admin = await cluster.control();
});
afterEach(async () => {
  await cluster.close();
});

const networkSpec = (name: string, overrides: Partial<NetworkSpec> = {}): NetworkSpec => ({ name, labels: {}, driver: '', subnet: '', internal: false, attachable: false, ...overrides });

function onNetworks(name: string, networks: string[], published: number[] = []): ServiceSpec {
  const spec = fakeServiceSpec(name, 1);
  return {
    ...spec,
    taskTemplate: { ...spec.taskTemplate!, networks },
    endpoint: { mode: '', ports: published.map((port) => ({ name: '', protocol: 'tcp', targetPort: 80, publishedPort: port, publishMode: 'ingress' })) },
  };
}

describe('network API', () => {
  it('network API creates overlay networks that the allocator gives a subnet, and finds them by name, id and prefix', async () => {
    const { network } = await admin.call((c) => c.createNetwork, { spec: networkSpec('front', { labels: { team: 'web' } }) });
    const id = network!.meta!.id;
    expect(network?.spec).toMatchObject({ name: 'front', driver: 'overlay', labels: { team: 'web' } });
    for (const reference of ['front', id, id.slice(0, 6)]) expect((await admin.call((c) => c.getNetwork, { network: reference })).network?.meta?.id).toBe(id);
    await vi.waitFor(async () => expect((await admin.call((c) => c.getNetwork, { network: 'front' })).network?.allocation?.subnet).toMatch(/^10\.0\.\d+\.0\/24$/), { timeout: 5_000, interval: 20 });
    expect((await admin.call((c) => c.listNetworks, {})).networks.map((each) => each.spec?.name)).toEqual(['front']);
    await expect(admin.call((c) => c.getNetwork, { network: 'nope' })).rejects.toMatchObject({ code: grpc.status.NOT_FOUND, details: 'cannot find network "nope": no such network' });
  });

  it('network API refuses bad specs, naming the field, and duplicate names or overlapping subnets', async () => {
    const refused = async (spec: NetworkSpec, code: grpc.status, details: string): Promise<void> => {
      await expect(admin.call((c) => c.createNetwork, { spec })).rejects.toMatchObject({ code, details: expect.stringContaining(details) });
    };
    await refused(networkSpec('bad name'), grpc.status.INVALID_ARGUMENT, 'name "bad name" must be');
    await refused(networkSpec('n', { driver: 'bridge' }), grpc.status.INVALID_ARGUMENT, 'driver "bridge" is not supported');
    await refused(networkSpec('n', { subnet: '10.1.2.3/24' }), grpc.status.INVALID_ARGUMENT, 'subnet "10.1.2.3/24" has host bits set');
    await refused(networkSpec('n', { subnet: '10.1.2.0/30' }), grpc.status.INVALID_ARGUMENT, 'is too small');
    await admin.call((c) => c.createNetwork, { spec: networkSpec('a', { subnet: '10.7.0.0/16' }) });
    await refused(networkSpec('a'), grpc.status.ALREADY_EXISTS, 'a network with that name already exists');
    await refused(networkSpec('b', { subnet: '10.7.3.0/24' }), grpc.status.ALREADY_EXISTS, 'subnet 10.7.3.0/24 overlaps 10.7.0.0/16 of network "a"');
  });

  it('services name networks, which are stored by id, and a network in use cannot be removed', async () => {
    const { network } = await admin.call((c) => c.createNetwork, { spec: networkSpec('front') });
    await expect(admin.call((c) => c.createService, { noResolveImage: false, spec: onNetworks('web', ['nope']) })).rejects.toMatchObject({ code: grpc.status.NOT_FOUND, details: 'cannot create service "web": network "nope" not found' });
    await expect(admin.call((c) => c.createService, { noResolveImage: false, spec: onNetworks('web', ['front', network!.meta!.id]) })).rejects.toMatchObject({ details: 'cannot create service "web": network "' + network!.meta!.id + '" is given twice' });
    const { service } = await admin.call((c) => c.createService, { noResolveImage: false, spec: onNetworks('web', ['front'], [8080]) });
    expect(service?.spec?.taskTemplate?.networks).toEqual([network!.meta!.id]);
    await expect(admin.call((c) => c.removeNetwork, { network: 'front' })).rejects.toMatchObject({ code: grpc.status.FAILED_PRECONDITION, details: 'cannot remove network "front": in use by service "web"' });
    // The published port is the cluster's: another service cannot take it.
    await expect(admin.call((c) => c.createService, { noResolveImage: false, spec: onNetworks('api', [], [8080]) })).rejects.toMatchObject({ code: grpc.status.ALREADY_EXISTS, details: 'cannot create service "api": port 8080/tcp is already published by service "web"' });
    await admin.call((c) => c.removeService, { service: 'web' });
    // Its tasks may still hold addresses on the network until they stop; wait for the reaper.
    await vi.waitFor(async () => {
      await admin.call((c) => c.removeNetwork, { network: 'front' });
    }, { timeout: 10_000, interval: 100 });
    expect((await admin.call((c) => c.listNetworks, {})).networks).toEqual([]);
  });

  it('network aliases name their network as the networks do, and are stored by its id', async () => {
    const { network } = await admin.call((c) => c.createNetwork, { spec: networkSpec('shop_default') });
    const spec = onNetworks('shop_web', ['shop_default']);
    const withAliases = (network: string): ServiceSpec => ({ ...spec, taskTemplate: { ...spec.taskTemplate!, networkAliases: [{ network, aliases: ['web'] }] } });
    await expect(admin.call((c) => c.createService, { noResolveImage: false, spec: withAliases('other') })).rejects.toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      details: 'cannot create service "shop_web": aliases ["web"] are for network "other", which is not one of the service\'s networks',
    });
    const { service } = await admin.call((c) => c.createService, { noResolveImage: false, spec: withAliases('shop_default') });
    expect(service?.spec?.taskTemplate?.networkAliases).toEqual([{ network: network!.meta!.id, aliases: ['web'] }]);
    // The same spec again is no change: both resolve to the same ids.
    const current = (await admin.call((c) => c.getService, { service: 'shop_web' })).service;
    const { service: again } = await admin.call((c) => c.updateService, { noResolveImage: false, service: 'shop_web', version: current!.meta!.version, spec: withAliases('shop_default') });
    expect(again?.meta?.version).toBe(current?.meta?.version);
    expect(again?.specVersion).toBe(service?.specVersion);
  });
});
