import * as grpc from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { channelCredentials, channelOptions, createCertificateAuthority, issueNodeCredentials, newNodeId } from '../../pki/index.js';
import { ControlClient } from '../../proto/skiff/v1/control.js';
import type { Service } from '../../proto/skiff/v1/objects.js';
import type { ServiceSpec } from '../../proto/skiff/v1/specs.js';
import { TaskState } from '../../proto/skiff/v1/types.js';
import { MAX_GRPC_MESSAGE_BYTES } from '../manager.js';
import { ControlApi, FakeCluster, fakeServiceSpec } from './testing/fake-cluster.js';
import { MAX_REPLICAS } from './validate-service.js';

const WAIT = { timeout: 5_000, interval: 20 };

let cluster: FakeCluster;
let admin: ControlApi;
beforeEach(async () => {
  cluster = await FakeCluster.start();
  admin = await cluster.control();
});
afterEach(async () => {
  await cluster.close();
});

const replicasOf = (service: Service | undefined): number | undefined => (service?.spec?.mode?.$case === 'replicated' ? service.spec.mode.value.replicas : undefined);
const withReplicas = (spec: ServiceSpec, replicas: number): ServiceSpec => ({ ...spec, mode: { $case: 'replicated', value: { replicas } } });

async function create(api: ControlApi, spec: ServiceSpec): Promise<Service> {
  const { service } = await api.call((c) => c.createService, { noResolveImage: false, spec });
  if (service === undefined) throw new Error('createService returned no service');
  return service;
}

async function tasksOf(api: ControlApi, service: string) {
  return (await api.call((c) => c.listTasks, { service, node: '' })).tasks;
}

describe('control API', () => {
  it('control API creates a service and finds it by name, id and id prefix', async () => {
    const created = await create(admin, fakeServiceSpec('web', 2));
    const id = created.meta!.id;
    expect(created).toMatchObject({ spec: { name: 'web' }, specVersion: 1 });
    expect(created.meta!.version).toBeGreaterThan(0);
    for (const reference of ['web', id, id.slice(0, 6)]) {
      const { service } = await admin.call((c) => c.getService, { service: reference });
      expect(service?.meta?.id).toBe(id);
    }
    await expect(admin.call((c) => c.getService, { service: 'nope' })).rejects.toMatchObject({ code: grpc.status.NOT_FOUND, details: expect.stringContaining('"nope"') });
  });

  it('control API lists services with their desired and running counts', async () => {
    const web = await create(admin, fakeServiceSpec('web', 2));
    const api = await create(admin, fakeServiceSpec('api', 3));
    const { services, counts } = await admin.call((c) => c.listServices, {});
    expect(services.map((service) => service.spec?.name).sort()).toEqual(['api', 'web']);
    expect(counts).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ serviceId: web.meta!.id, running: 0, desired: 2 }),
        expect.objectContaining({ serviceId: api.meta!.id, running: 0, desired: 3 }),
      ]),
    );
    // `tasks` counts the tasks the orchestrator created to run, placed or not (no node runs them here).
    await vi.waitFor(async () => {
      const listed = await admin.call((c) => c.listServices, {});
      const tasks = Object.fromEntries(listed.counts.map((count) => [count.serviceId, count.tasks]));
      expect(tasks).toMatchObject({ [web.meta!.id]: 2, [api.meta!.id]: 3 });
    }, { timeout: 10_000, interval: 50 });
  });

  it('control API scales a service without changing its spec version, and the orchestrator follows', async () => {
    const created = await create(admin, fakeServiceSpec('web', 1));
    await vi.waitFor(async () => expect(await tasksOf(admin, 'web')).toHaveLength(1), WAIT);
    const { service } = await admin.call((c) => c.updateService, { noResolveImage: false, service: 'web', version: created.meta!.version, spec: withReplicas(created.spec!, 3) });
    expect(replicasOf(service)).toBe(3);
    expect(service?.specVersion).toBe(1);
    expect(service?.meta?.version).toBeGreaterThan(created.meta!.version);
    await vi.waitFor(async () => expect((await tasksOf(admin, 'web')).map((task) => task.slot).sort()).toEqual([1, 2, 3]), WAIT);
  });

  it('control API removes a service and its tasks', async () => {
    await create(admin, fakeServiceSpec('web', 2));
    await vi.waitFor(async () => expect(await tasksOf(admin, 'web')).toHaveLength(2), WAIT);
    await admin.call((c) => c.removeService, { service: 'web' });
    await expect(admin.call((c) => c.getService, { service: 'web' })).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    // Never placed on a node, the tasks are reaped as soon as they are marked for removal.
    await vi.waitFor(async () => expect(await tasksOf(admin, '')).toEqual([]), WAIT);
    await expect(admin.call((c) => c.removeService, { service: 'web' })).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
  });

  it('control API refuses a duplicate name with ALREADY_EXISTS naming the service', async () => {
    const first = await create(admin, fakeServiceSpec('web', 1));
    await expect(create(admin, fakeServiceSpec('web', 5))).rejects.toMatchObject({
      code: grpc.status.ALREADY_EXISTS,
      details: expect.stringContaining('"web"'),
    });
    const { services } = await admin.call((c) => c.listServices, {});
    expect(services.map((service) => service.meta?.id)).toEqual([first.meta!.id]);
    expect(replicasOf(services[0])).toBe(1);
  });

  const base = fakeServiceSpec('web', 1);
  const container = base.taskTemplate!.container!;
  const invalidSpecs: Array<[string, ServiceSpec, string]> = [
    ['an empty name', { ...base, name: '' }, 'name must not be empty'],
    ['a bad name', { ...base, name: 'web_1!' }, 'name "web_1!"'],
    ['an empty image', { ...base, taskTemplate: { ...base.taskTemplate!, container: { ...container, image: '' } } }, 'image must not be empty'],
    ['a bad image reference', { ...base, taskTemplate: { ...base.taskTemplate!, container: { ...container, image: 'Demo/Web:v1' } } }, 'image "Demo/Web:v1" is not a valid image reference'],
    ['too many replicas', withReplicas(base, MAX_REPLICAS + 1), `replicas must be an integer from 0 to ${MAX_REPLICAS}`],
    ['no mode', { ...base, mode: undefined }, 'mode must be replicated or global'],
  ];
  it.each(invalidSpecs)('control API refuses a spec with %s with INVALID_ARGUMENT and stores nothing', async (_case, spec, message) => {
    const versionBefore = cluster.manager.store.reader.version;
    await expect(create(admin, spec)).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: expect.stringContaining(message) });
    expect(cluster.manager.store.reader.version).toBe(versionBefore);
    expect((await admin.call((c) => c.listServices, {})).services).toEqual([]);
  });

  it('control API refuses an invalid update with INVALID_ARGUMENT and keeps the stored spec', async () => {
    const created = await create(admin, fakeServiceSpec('web', 2));
    await expect(
      admin.call((c) => c.updateService, { noResolveImage: false, service: 'web', version: created.meta!.version, spec: withReplicas(created.spec!, MAX_REPLICAS + 1) }),
    ).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
    await expect(
      admin.call((c) => c.updateService, { noResolveImage: false, service: 'web', version: created.meta!.version, spec: { ...created.spec!, name: 'other' } }),
    ).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: expect.stringContaining('renaming') });
    const { service } = await admin.call((c) => c.getService, { service: 'web' });
    expect(service?.meta?.version).toBe(created.meta!.version);
    expect(replicasOf(service)).toBe(2);
  });

  it('control API refuses an update carrying a stale version with ABORTED and keeps the stored spec', async () => {
    const created = await create(admin, fakeServiceSpec('web', 1));
    const scaled = (await admin.call((c) => c.updateService, { noResolveImage: false, service: 'web', version: created.meta!.version, spec: withReplicas(created.spec!, 2) })).service!;
    await expect(
      admin.call((c) => c.updateService, { noResolveImage: false, service: 'web', version: created.meta!.version, spec: withReplicas(created.spec!, 7) }),
    ).rejects.toMatchObject({ code: grpc.status.ABORTED });
    const { service } = await admin.call((c) => c.getService, { service: 'web' });
    expect(service?.meta?.version).toBe(scaled.meta!.version);
    expect(replicasOf(service)).toBe(2);
  });

  it('control API refuses a worker certificate with PERMISSION_DENIED', async () => {
    const worker = await cluster.control(await cluster.credentials('worker'));
    await expect(worker.call((c) => c.listServices, {})).rejects.toMatchObject({ code: grpc.status.PERMISSION_DENIED });
    await expect(create(worker, fakeServiceSpec('web', 1))).rejects.toMatchObject({ code: grpc.status.PERMISSION_DENIED });
    expect((await admin.call((c) => c.listServices, {})).services).toEqual([]);
  });

  it('control API accepts a manager certificate of the cluster', async () => {
    const peer = await cluster.control(await cluster.credentials('manager'));
    await create(peer, fakeServiceSpec('web', 1));
    expect((await admin.call((c) => c.getService, { service: 'web' })).service?.spec?.name).toBe('web');
  });

  it('control API refuses at the TLS handshake an admin certificate from another CA', async () => {
    const otherCa = await createCertificateAuthority();
    const stranger = await issueNodeCredentials(otherCa, { nodeId: newNodeId(), role: 'admin' });
    // The stranger trusts the real CA, so only the manager's check of the client can fail.
    const client = new ControlApi(new ControlClient(cluster.address, channelCredentials({ ...stranger, caCertPem: cluster.ca.certPem }), channelOptions()));
    try {
      await expect(create(client, fakeServiceSpec('web', 1))).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    } finally {
      client.close();
    }
    expect((await admin.call((c) => c.listServices, {})).services).toEqual([]);
  });

  it('control API serves the local unix socket without a certificate', async () => {
    const local = cluster.localControl();
    await create(local, fakeServiceSpec('web', 1));
    expect((await admin.call((c) => c.getService, { service: 'web' })).service?.spec?.name).toBe('web');
    const { cluster: info } = await local.call((c) => c.getCluster, {});
    expect(info?.meta?.id).toBe(cluster.ca.clusterId);
  });

  it('control API refuses a request larger than 4 MiB with RESOURCE_EXHAUSTED', async () => {
    const spec = fakeServiceSpec('web', 1);
    const huge = { ...spec, taskTemplate: { ...spec.taskTemplate!, container: { ...spec.taskTemplate!.container!, env: [`BIG=${'x'.repeat(MAX_GRPC_MESSAGE_BYTES)}`] } } };
    await expect(create(admin, huge)).rejects.toMatchObject({ code: grpc.status.RESOURCE_EXHAUSTED });
    expect((await admin.call((c) => c.listServices, {})).services).toEqual([]);
  });

  it('manager keeps every service, task and version across a restart', async () => {
    await create(admin, fakeServiceSpec('web', 2));
    await create(admin, fakeServiceSpec('api', 1));
    // With no nodes the tasks end pending; after that nothing writes.
    await vi.waitFor(async () => {
      const tasks = await tasksOf(admin, '');
      expect(tasks.map((task) => task.status?.state)).toEqual([TaskState.TASK_STATE_PENDING, TaskState.TASK_STATE_PENDING, TaskState.TASK_STATE_PENDING]);
    }, WAIT);
    const servicesBefore = (await admin.call((c) => c.listServices, {})).services;
    const tasksBefore = await tasksOf(admin, '');
    await cluster.restart();
    const byId = <T extends { meta?: { id: string } | undefined }>(items: T[]): T[] => [...items].sort((a, b) => a.meta!.id.localeCompare(b.meta!.id));
    expect(byId((await admin.call((c) => c.listServices, {})).services)).toEqual(byId(servicesBefore));
    expect(byId(await tasksOf(admin, ''))).toEqual(byId(tasksBefore));
    // And it still takes writes carrying the versions read before the restart.
    const web = servicesBefore.find((service) => service.spec?.name === 'web')!;
    const { service } = await admin.call((c) => c.updateService, { noResolveImage: false, service: 'web', version: web.meta!.version, spec: withReplicas(web.spec!, 3) });
    expect(replicasOf(service)).toBe(3);
  });
});
