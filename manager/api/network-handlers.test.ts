import * as grpc from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Network } from '../../proto/skiff/v1/objects.js';
import type { NetworkAliases, NetworkSpec, ServiceSpec } from '../../proto/skiff/v1/specs.js';
import type { StoreReader } from '../store/store.js';
import { resolveServiceNetworks } from './network-handlers.js';
import { type ControlApi, FakeCluster, fakeServiceSpec } from './testing/fake-cluster.js';
import { refusal } from './testing/refusal.js';

const networkSpec = (name: string, overrides: Partial<NetworkSpec> = {}): NetworkSpec => ({ name, labels: {}, driver: '', subnet: '', internal: false, attachable: false, ...overrides });

function onNetworks(name: string, networks: string[], published: number[] = [], networkAliases: NetworkAliases[] = []): ServiceSpec {
  const spec = fakeServiceSpec(name, 1);
  return {
    ...spec,
    taskTemplate: { ...spec.taskTemplate!, networks, networkAliases },
    endpoint: { mode: '', ports: published.map((port) => ({ name: '', protocol: 'tcp', targetPort: 80, publishedPort: port, publishMode: 'ingress' })) },
  };
}

describe('network API', () => {
  let cluster: FakeCluster;
  let admin: ControlApi;
  beforeEach(async () => {
    cluster = await FakeCluster.start();
    admin = await cluster.control();
  });
  afterEach(async () => {
    await cluster.close();
  });

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

  it('a refused alias stores nothing, at create or update, and removing the network with its aliases is accepted', async () => {
    const { network } = await admin.call((c) => c.createNetwork, { spec: networkSpec('front') });
    await admin.call((c) => c.createNetwork, { spec: networkSpec('back') });
    const id = network!.meta!.id;
    await expect(admin.call((c) => c.createService, { noResolveImage: false, spec: onNetworks('web', ['front'], [], [{ network: 'back', aliases: ['shop'] }]) })).rejects.toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      details: 'cannot create service "web": taskTemplate.networkAliases[0].network: network "back" is not one of the service\'s networks',
    });
    expect((await admin.call((c) => c.listServices, {})).services).toEqual([]);
    const { service } = await admin.call((c) => c.createService, { noResolveImage: false, spec: onNetworks('web', ['front'], [], [{ network: 'front', aliases: ['shop'] }]) });
    expect(service?.spec?.taskTemplate?.networkAliases).toEqual([{ network: id, aliases: ['shop'] }]);
    const version = service!.meta!.version;
    await expect(admin.call((c) => c.updateService, { service: 'web', version, noResolveImage: false, spec: onNetworks('web', [], [], [{ network: 'front', aliases: ['shop'] }]) })).rejects.toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      details: expect.stringContaining('taskTemplate.networkAliases[0].network: network "front" is not one of the service\'s networks'),
    });
    await expect(admin.call((c) => c.updateService, { service: 'web', version, noResolveImage: false, spec: onNetworks('web', ['front'], [], [{ network: 'front', aliases: ['bad_'] }]) })).rejects.toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      details: expect.stringContaining('taskTemplate.networkAliases[0].aliases[0]: "bad_" is not a DNS name'),
    });
    // The allocator writes the service's endpoint meanwhile: its spec is what must not change.
    const unchanged = (await admin.call((c) => c.getService, { service: 'web' })).service;
    expect(unchanged?.spec).toEqual(service?.spec);
    expect(unchanged?.previousSpec).toBeUndefined();
    // The allocator may write the service again between the read and the update (ABORTED): read again and retry, as a client does.
    const updated = await vi.waitFor(async () => {
      const current = (await admin.call((c) => c.getService, { service: 'web' })).service;
      return (await admin.call((c) => c.updateService, { service: 'web', version: current!.meta!.version, noResolveImage: false, spec: onNetworks('web', [], []) })).service;
    }, { timeout: 10_000, interval: 50 });
    expect(updated?.spec?.taskTemplate).toMatchObject({ networks: [], networkAliases: [] });
  });
});

describe('resolve service networks', () => {
  const stored = (id: string, name: string): Network => ({ meta: { id, version: 1, createdAtMs: 0, updatedAtMs: 0 }, spec: networkSpec(name), allocation: undefined });
  const networks = [stored('id-front', 'front'), stored('id-back', 'back'), stored('id-other', 'other')];
  // Only get and findByName are read; the cast narrows a fake to the reader's type.
  const reader = {
    get: (_kind: string, id: string) => networks.find((network) => network.meta?.id === id),
    findByName: (_kind: string, name: string) => networks.find((network) => network.spec?.name === name),
  } as unknown as Pick<StoreReader, 'get' | 'findByName'>;
  const resolve = (networkReferences: string[], networkAliases: NetworkAliases[]): ServiceSpec => resolveServiceNetworks(reader, onNetworks('web', networkReferences, [], networkAliases), 'cannot create service "web"');

  it('resolve service networks stores an alias entry network as the id its networks entry resolves to, given by name or id either way', () => {
    const resolved = resolve(['front', 'id-back'], [{ network: 'id-front', aliases: ['shop'] }, { network: 'back', aliases: ['db', 'store'] }]);
    expect(resolved.taskTemplate?.networks).toEqual(['id-front', 'id-back']);
    expect(resolved.taskTemplate?.networkAliases).toEqual([{ network: 'id-front', aliases: ['shop'] }, { network: 'id-back', aliases: ['db', 'store'] }]);
  });

  it('resolve service networks leaves a spec without networks or aliases as it is', () => {
    const spec = onNetworks('web', []);
    expect(resolveServiceNetworks(reader, spec, 'cannot create service "web"')).toBe(spec);
  });

  it('resolve service networks refuses an alias entry for a network the service is not on, unknown, or named twice', () => {
    expect(refusal(() => resolve(['front'], [{ network: 'other', aliases: ['shop'] }]))).toBe(
      'invalid_argument: cannot create service "web": taskTemplate.networkAliases[0].network: network "other" is not one of the service\'s networks',
    );
    expect(refusal(() => resolve([], [{ network: 'front', aliases: ['shop'] }]))).toBe(
      'invalid_argument: cannot create service "web": taskTemplate.networkAliases[0].network: network "front" is not one of the service\'s networks',
    );
    expect(refusal(() => resolve(['front'], [{ network: 'nope', aliases: ['shop'] }]))).toBe('not_found: cannot create service "web": taskTemplate.networkAliases[0].network: network "nope" not found');
    // A name and an id of one network are the same network.
    expect(refusal(() => resolve(['front', 'back'], [{ network: 'back', aliases: ['a'] }, { network: 'front', aliases: ['b'] }, { network: 'id-front', aliases: ['c'] }]))).toBe(
      'invalid_argument: cannot create service "web": taskTemplate.networkAliases[2].network: network "id-front" already has its aliases in taskTemplate.networkAliases[1]',
    );
  });
});
