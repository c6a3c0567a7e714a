import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Config, Secret, Service } from '../../proto/skiff/v1/objects.js';
import type { ConfigReference, SecretReference, ServiceSpec } from '../../proto/skiff/v1/specs.js';
import { type ControlApi, FakeCluster, fakeServiceSpec } from './testing/fake-cluster.js';
import { MAX_SECRET_BYTES } from './validate-secret.js';

let cluster: FakeCluster;
let admin: ControlApi;
beforeEach(async () => {
  cluster = await FakeCluster.start();
  admin = await cluster.control();
});
afterEach(async () => {
  await cluster.close();
});

const secretValue = `value-${randomBytes(12).toString('hex')}`;
const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const secretRef = (name: string, overrides: Partial<SecretReference> = {}): SecretReference => ({ secretId: '', secretName: name, target: '', uid: 0, gid: 0, mode: 0, ...overrides });
const configRef = (name: string, overrides: Partial<ConfigReference> = {}): ConfigReference => ({ configId: '', configName: name, target: '', uid: 0, gid: 0, mode: 0, ...overrides });

function usingService(name: string, secrets: SecretReference[], configs: ConfigReference[] = []): ServiceSpec {
  const spec = fakeServiceSpec(name, 1);
  return { ...spec, taskTemplate: { ...spec.taskTemplate!, container: { ...spec.taskTemplate!.container!, secrets, configs } } };
}

async function createSecret(name: string, value = secretValue): Promise<Secret> {
  const { secret } = await admin.call((c) => c.createSecret, { spec: { name, labels: { team: 'db' }, data: bytes(value) } });
  if (secret === undefined) throw new Error('createSecret returned no secret');
  return secret;
}

async function createConfig(name: string, value = 'port=80'): Promise<Config> {
  const { config } = await admin.call((c) => c.createConfig, { spec: { name, labels: {}, data: bytes(value) } });
  if (config === undefined) throw new Error('createConfig returned no config');
  return config;
}

describe('secret and config API', () => {
  it('secret API creates a secret, finds it by name, id and id prefix, and never returns its data', async () => {
    const created = await createSecret('db-password');
    const id = created.meta!.id;
    expect(created).toMatchObject({ spec: { name: 'db-password', labels: { team: 'db' }, data: new Uint8Array(0) } });
    expect(created.meta!.createdAtMs).toBeGreaterThan(0);
    const seen: unknown[] = [created];
    for (const reference of ['db-password', id, id.slice(0, 6)]) {
      const { secret } = await admin.call((c) => c.getSecret, { secret: reference });
      expect(secret?.meta?.id).toBe(id);
      seen.push(Secret.toJSON(secret!));
    }
    const { secrets } = await admin.call((c) => c.listSecrets, {});
    expect(secrets.map((secret) => secret.spec?.name)).toEqual(['db-password']);
    seen.push(...secrets.map((secret) => Secret.toJSON(secret)));
    for (const response of [...seen, ...secrets]) expect(JSON.stringify(response)).not.toContain(secretValue);
    expect(secrets[0]?.spec?.data).toEqual(new Uint8Array(0));
    // The store keeps the data: the dispatcher sends it to nodes that need it.
    expect(new TextDecoder().decode(cluster.manager.store.reader.get('secret', id)?.spec?.data)).toBe(secretValue);
    await expect(admin.call((c) => c.getSecret, { secret: 'nope' })).rejects.toMatchObject({ code: grpc.status.NOT_FOUND, details: 'cannot find secret "nope": no such secret' });
  });

  it('config API creates, lists, finds and removes configs without returning their data', async () => {
    const created = await createConfig('app.conf', 'listen=8080');
    expect(created.spec?.data).toEqual(new Uint8Array(0));
    const { configs } = await admin.call((c) => c.listConfigs, {});
    expect(configs.map((config) => [config.spec?.name, config.spec?.data.length])).toEqual([['app.conf', 0]]);
    expect(JSON.stringify(Config.toJSON((await admin.call((c) => c.getConfig, { config: 'app.conf' })).config!))).not.toContain('listen=8080');
    await admin.call((c) => c.removeConfig, { config: 'app.conf' });
    expect((await admin.call((c) => c.listConfigs, {})).configs).toEqual([]);
  });

  it('secret API refuses a duplicate name with ALREADY_EXISTS and keeps the first', async () => {
    const first = await createSecret('db');
    await expect(createSecret('db', 'other')).rejects.toMatchObject({ code: grpc.status.ALREADY_EXISTS, details: 'cannot create secret "db": a secret with that name already exists' });
    expect((await admin.call((c) => c.listSecrets, {})).secrets.map((secret) => secret.meta?.id)).toEqual([first.meta!.id]);
  });

  it('secret API refuses a bad name and oversize data with INVALID_ARGUMENT and stores nothing', async () => {
    const versionBefore = cluster.manager.store.reader.version;
    await expect(admin.call((c) => c.createSecret, { spec: { name: 'bad/name', labels: {}, data: bytes('x') } })).rejects.toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      details: expect.stringContaining('name "bad/name" must start with a letter or digit'),
    });
    await expect(admin.call((c) => c.createSecret, { spec: { name: 'big', labels: {}, data: new Uint8Array(MAX_SECRET_BYTES + 1) } })).rejects.toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      details: 'cannot create secret "big": data is 512001 bytes, more than the secret size limit of 500 KiB (512000 bytes)',
    });
    expect(cluster.manager.store.reader.version).toBe(versionBefore);
  });

  it('service create fills in secret and config ids by name, and refuses an unknown name with NOT_FOUND', async () => {
    const secret = await createSecret('db');
    const config = await createConfig('app');
    const { service } = await admin.call((c) => c.createService, { noResolveImage: false, spec: usingService('web', [secretRef('db', { target: 'password' })], [configRef('app', { target: '/etc/app.conf' })]) });
    expect(service?.spec?.taskTemplate?.container?.secrets).toEqual([secretRef('db', { target: 'password', secretId: secret.meta!.id })]);
    expect(service?.spec?.taskTemplate?.container?.configs).toEqual([configRef('app', { target: '/etc/app.conf', configId: config.meta!.id })]);
    expect(JSON.stringify(Service.toJSON(service!))).not.toContain(secretValue);
    await expect(admin.call((c) => c.createService, { noResolveImage: false, spec: usingService('api', [secretRef('x')]) })).rejects.toMatchObject({
      code: grpc.status.NOT_FOUND,
      details: 'cannot create service "api": secret "x" not found',
    });
    await expect(admin.call((c) => c.createService, { noResolveImage: false, spec: usingService('api', [secretRef('a', { target: 'x' }), secretRef('b', { target: 'x' })]) })).rejects.toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      details: 'cannot accept service spec: secret "a" and secret "b" both target /run/secrets/x',
    });
    expect((await admin.call((c) => c.listServices, {})).services.map((item) => item.spec?.name)).toEqual(['web']);
  });

  it('service update resolves added references, refuses unknown ones, and leaves a scale-only update a no-op on templates', async () => {
    await createSecret('db');
    const { service: created } = await admin.call((c) => c.createService, { noResolveImage: false, spec: usingService('web', [secretRef('db')]) });
    // The CLI sends back the spec it read, ids included: nothing in the template changes.
    const scaled = (await admin.call((c) => c.updateService, { noResolveImage: false, service: 'web', version: created!.meta!.version, spec: { ...created!.spec!, mode: { $case: 'replicated', value: { replicas: 2 } } } })).service!;
    expect(scaled.specVersion).toBe(created!.specVersion);
    await expect(admin.call((c) => c.updateService, { noResolveImage: false, service: 'web', version: scaled.meta!.version, spec: usingService('web', [secretRef('db'), secretRef('gone', { target: 'other' })]) })).rejects.toMatchObject({
      code: grpc.status.NOT_FOUND,
      details: 'cannot update service "web": secret "gone" not found',
    });
  });

  it('secret and config update change the labels only: the same data again is accepted, new data, a new name or a stale version refused', async () => {
    const created = await createSecret('db');
    const id = created.meta!.id;
    // What `docker stack deploy` sends on a second deploy: the whole spec again, new labels.
    const { secret } = await admin.call((c) => c.updateSecret, { secret: 'db', version: created.meta!.version, spec: { name: 'db', labels: { team: 'db', stack: 'shop' }, data: bytes(secretValue) } });
    expect(secret?.spec).toEqual({ name: 'db', labels: { team: 'db', stack: 'shop' }, data: new Uint8Array(0) });
    expect(new TextDecoder().decode(cluster.manager.store.reader.get('secret', id)?.spec?.data)).toBe(secretValue);
    const before = cluster.manager.store.reader.get('secret', id);
    await expect(admin.call((c) => c.updateSecret, { secret: 'db', version: 0, spec: { name: 'db', labels: {}, data: bytes('other') } })).rejects.toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      details: expect.stringContaining('cannot update secret "db": its data cannot change'),
    });
    await expect(admin.call((c) => c.updateSecret, { secret: 'db', version: 0, spec: { name: 'db2', labels: {}, data: new Uint8Array(0) } })).rejects.toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      details: 'cannot update secret "db": its name cannot change (asked "db2"); only labels can be updated',
    });
    await expect(admin.call((c) => c.updateSecret, { secret: 'db', version: created.meta!.version, spec: { name: 'db', labels: {}, data: new Uint8Array(0) } })).rejects.toMatchObject({ code: grpc.status.ABORTED });
    expect(cluster.manager.store.reader.get('secret', id)).toEqual(before);
    const config = await createConfig('app');
    const { config: updated } = await admin.call((c) => c.updateConfig, { config: config.meta!.id, version: 0, spec: { name: 'app', labels: { v: '2' }, data: new Uint8Array(0) } });
    expect(updated?.spec?.labels).toEqual({ v: '2' });
    expect(new TextDecoder().decode(cluster.manager.store.reader.get('config', config.meta!.id)?.spec?.data)).toBe('port=80');
  });

  it('secret remove is refused with FAILED_PRECONDITION naming the services that use it, and accepted once they are gone', async () => {
    await createSecret('db');
    await createConfig('app');
    await admin.call((c) => c.createService, { noResolveImage: false, spec: usingService('web', [secretRef('db')], [configRef('app')]) });
    await admin.call((c) => c.createService, { noResolveImage: false, spec: usingService('api', [secretRef('db', { target: 'db2' })]) });
    await expect(admin.call((c) => c.removeSecret, { secret: 'db' })).rejects.toMatchObject({
      code: grpc.status.FAILED_PRECONDITION,
      details: 'cannot remove secret "db": it is in use by services "api", "web"',
    });
    await expect(admin.call((c) => c.removeConfig, { config: 'app' })).rejects.toMatchObject({
      code: grpc.status.FAILED_PRECONDITION,
      details: 'cannot remove config "app": it is in use by service "web"',
    });
    await admin.call((c) => c.removeService, { service: 'web' });
    await admin.call((c) => c.removeConfig, { config: 'app' });
    await expect(admin.call((c) => c.removeSecret, { secret: 'db' })).rejects.toMatchObject({ code: grpc.status.FAILED_PRECONDITION, details: expect.stringContaining('service "api"') });
    await admin.call((c) => c.removeService, { service: 'api' });
    await admin.call((c) => c.removeSecret, { secret: 'db' });
    expect((await admin.call((c) => c.listSecrets, {})).secrets).toEqual([]);
    await expect(admin.call((c) => c.removeSecret, { secret: 'db' })).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
  });

  it('secret API refuses a worker certificate with PERMISSION_DENIED', async () => {
    await createSecret('db');
    const worker = await cluster.control(await cluster.credentials('worker'));
    await expect(worker.call((c) => c.listSecrets, {})).rejects.toMatchObject({ code: grpc.status.PERMISSION_DENIED });
    await expect(worker.call((c) => c.getSecret, { secret: 'db' })).rejects.toMatchObject({ code: grpc.status.PERMISSION_DENIED });
  });
});
