/**
 * `skiff stack deploy|ls|services|ps|rm` against a REAL manager (bin/skiffd, built, no agent),
 * through its local control socket. What the CLI wrote is read back from the store through the
 * Control API: names, stack labels, network aliases, replicas and secret references, spec versions
 * that move only for the services a redeploy changed, --prune, refusals that write nothing, and a
 * stack removal that leaves nothing of the stack (and its external network in place).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ControlClient, type GetSecretResponse, type ListConfigsResponse, type ListNetworksResponse, type ListSecretsResponse, type ListServicesResponse } from '../../proto/skiff/v1/control.js';
import type { Service } from '../../proto/skiff/v1/objects.js';
import type { ServiceRow, TaskRow } from '../../cli/commands/service-rows.js';
import type { StackRow } from '../../cli/commands/stack.js';
import { type CliResult, skiff, waitFor } from './helpers.js';
import { type LoopbackManager, startBareManager } from './loopback-manager.js';

const MANAGER_START_DEADLINE_MS = 60_000;
const TASKS_DEADLINE_MS = 30_000;
const LABEL = 'com.docker.stack.namespace';

let dataDir = '';
let home = '';
let manager: LoopbackManager | undefined;
let control: InstanceType<typeof ControlClient> | undefined;

/** `skiff ARGS` on the manager's control socket. */
function local(...args: string[]): Promise<CliResult> {
  return skiff(home, ['-H', `unix://${join(dataDir, 'skiff.sock')}`, ...args], 60_000);
}

async function localJson<T>(...args: string[]): Promise<T> {
  const run = await local(...args, '--format', 'json');
  expect(run.code, run.stderr).toBe(0);
  return JSON.parse(run.stdout) as T;
}

/** The Control API, promisified: `call('listServices', {})`. */
function call<T>(invoke: (client: InstanceType<typeof ControlClient>, callback: (error: grpc.ServiceError | null, value: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    if (control === undefined) throw new Error('no control client');
    invoke(control, (error, value) => (error === null ? resolve(value) : reject(error)));
  });
}

async function stored(): Promise<{ services: Service[]; networks: Map<string, string>; secrets: Map<string, string>; configs: Map<string, string> }> {
  const [services, networks, secrets, configs] = await Promise.all([
    call<ListServicesResponse>((client, callback) => client.listServices({}, callback)),
    call<ListNetworksResponse>((client, callback) => client.listNetworks({}, callback)),
    call<ListSecretsResponse>((client, callback) => client.listSecrets({}, callback)),
    call<ListConfigsResponse>((client, callback) => client.listConfigs({}, callback)),
  ]);
  const byName = (objects: ReadonlyArray<{ meta?: { id: string } | undefined; spec?: { name: string } | undefined }>): Map<string, string> => new Map(objects.map((object) => [object.spec?.name ?? '', object.meta?.id ?? '']));
  return { services: services.services, networks: byName(networks.networks), secrets: byName(secrets.secrets), configs: byName(configs.configs) };
}

const service = async (name: string): Promise<Service | undefined> => (await stored()).services.find((each) => each.spec?.name === name);

const BASE = `version: "3.8"
services:
  web:
    image: busybox:latest
    command: ["sleep", "1000"]
    environment: { MODE: shop }
    ports: ["8082:80"]
    networks: [front, public]
    secrets: [token]
    configs: [{ source: site, target: /etc/site.conf }]
    deploy:
      replicas: 2
      labels: { tier: front }
  db:
    image: busybox:latest
    command: ["sleep", "1000"]
networks:
  front: {}
  public: { external: true }
secrets:
  token: { file: ./token.txt }
configs:
  site: { file: ./site.conf }
`;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'skiff-e2e-stack-'));
  home = await mkdtemp(join(tmpdir(), 'skiff-e2e-stack-home-'));
  manager = await startBareManager(dataDir, MANAGER_START_DEADLINE_MS);
  control = new ControlClient(`unix://${join(dataDir, 'skiff.sock')}`, grpc.credentials.createInsecure());
  await writeFile(join(dataDir, 'shop.yml'), BASE);
  await writeFile(join(dataDir, 'token.txt'), 's3cret');
  await writeFile(join(dataDir, 'site.conf'), 'listen 80;\n');
  // The file's external network: used by name, never created or removed by the stack.
  expect((await local('network', 'create', 'public')).code).toBe(0);
});

afterAll(async () => {
  control?.close();
  await manager?.stop();
  if (dataDir !== '') await rm(dataDir, { recursive: true, force: true });
  if (home !== '') await rm(home, { recursive: true, force: true });
});

describe('skiff stack', () => {
  it('refuses a file it cannot honour, naming the key, and writes nothing', async () => {
    const bad = join(dataDir, 'bad.yml');
    await writeFile(bad, `${BASE.replace('    deploy:\n      replicas: 2', '    deploy:\n      replicas: lots')}`);
    const refused = await local('stack', 'deploy', '--detach', '-c', bad, 'shop');
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('services.web.deploy.replicas: must be a non-negative integer');
    // Checked against the cluster before the first write too: an external network that is not there.
    await writeFile(bad, BASE.replace('public: { external: true }', 'public: { external: true, name: nowhere }'));
    const missingExternal = await local('stack', 'deploy', '--detach', '-c', bad, 'shop');
    expect(missingExternal.code).not.toBe(0);
    expect(missingExternal.stderr).toContain('network "nowhere" is declared external but does not exist');
    const now = await stored();
    expect(now.services).toEqual([]);
    expect([...now.networks.keys()]).toEqual(['public']);
    expect(now.secrets.size + now.configs.size).toBe(0);
  });

  it('deploys two services, a network, a secret and a config, named and labelled as Swarm does', async () => {
    const deployed = await local('stack', 'deploy', '--detach', '-c', join(dataDir, 'shop.yml'), 'shop');
    expect(deployed.code, deployed.stderr).toBe(0);
    expect(deployed.stdout.split('\n').filter(Boolean)).toEqual([
      'Creating network shop_front',
      'Creating network shop_default',
      'Creating secret shop_token',
      'Creating config shop_site',
      'Creating service shop_db',
      'Creating service shop_web',
    ]);
    const now = await stored();
    const web = now.services.find((each) => each.spec?.name === 'shop_web');
    const db = now.services.find((each) => each.spec?.name === 'shop_db');
    const front = now.networks.get('shop_front') ?? '';
    const defaultNetwork = now.networks.get('shop_default') ?? '';
    const publicNetwork = now.networks.get('public') ?? '';
    expect(web?.spec?.labels).toEqual({ tier: 'front', [LABEL]: 'shop', 'com.docker.stack.image': 'busybox:latest' });
    expect(web?.spec?.mode).toEqual({ $case: 'replicated', value: { replicas: 2 } });
    expect(web?.spec?.taskTemplate?.container).toMatchObject({ args: ['sleep', '1000'], env: ['MODE=shop'], labels: { [LABEL]: 'shop' } });
    expect(web?.spec?.taskTemplate?.networks.sort()).toEqual([front, publicNetwork].sort());
    expect(web?.spec?.taskTemplate?.networkAliases).toEqual(expect.arrayContaining([{ network: front, aliases: ['web'] }, { network: publicNetwork, aliases: ['web'] }]));
    expect(db?.spec?.taskTemplate?.networks).toEqual([defaultNetwork]);
    expect(db?.spec?.taskTemplate?.networkAliases).toEqual([{ network: defaultNetwork, aliases: ['db'] }]);
    expect(web?.spec?.taskTemplate?.container?.secrets).toEqual([expect.objectContaining({ secretId: now.secrets.get('shop_token'), secretName: 'shop_token', target: 'token' })]);
    expect(web?.spec?.taskTemplate?.container?.configs).toEqual([expect.objectContaining({ configId: now.configs.get('shop_site'), configName: 'shop_site', target: '/etc/site.conf' })]);
    const secret = await call<GetSecretResponse>((client, callback) => client.getSecret({ secret: 'shop_token' }, callback));
    expect(secret.secret?.spec?.labels).toEqual({ [LABEL]: 'shop' });
  });

  it('lists the stack, its services and its tasks', async () => {
    expect(await localJson<StackRow[]>('stack', 'ls')).toEqual([{ name: 'shop', services: 2 }]);
    const services = await localJson<ServiceRow[]>('stack', 'services', 'shop');
    expect(services.map((row) => [row.name, row.replicas])).toEqual([['shop_db', '0/1'], ['shop_web', '0/2']]);
    const tasks = await waitFor('three tasks in the stack', TASKS_DEADLINE_MS, async () => {
      const rows = await localJson<TaskRow[]>('stack', 'ps', 'shop');
      return rows.length === 3 ? rows : undefined;
    });
    expect(tasks.map((row) => row.name)).toEqual(['shop_db.1', 'shop_web.1', 'shop_web.2']);
    const table = await local('stack', 'ls');
    expect(table.stdout.split('\n')[1]).toMatch(/^shop\s+2$/);
  });

  it('redeploys an unchanged file without a new spec version, and a changed one moves only the changed service', async () => {
    const before = await stored();
    const version = (services: Service[], name: string): number | undefined => services.find((each) => each.spec?.name === name)?.specVersion;
    const again = await local('stack', 'deploy', '--detach', '-c', join(dataDir, 'shop.yml'), 'shop');
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/^Updating service shop_db \(id: \w+\)\nUpdating service shop_web \(id: \w+\)\n$/);
    const unchanged = await stored();
    expect(version(unchanged.services, 'shop_web')).toBe(version(before.services, 'shop_web'));
    expect(version(unchanged.services, 'shop_db')).toBe(version(before.services, 'shop_db'));
    // A second file overrides the first: web's image only.
    await writeFile(join(dataDir, 'v2.yml'), 'services:\n  web:\n    image: busybox:1.36\n');
    const changed = await local('stack', 'deploy', '--detach', '-c', join(dataDir, 'shop.yml'), '-c', join(dataDir, 'v2.yml'), 'shop');
    expect(changed.code, changed.stderr).toBe(0);
    const after = await stored();
    expect(version(after.services, 'shop_web')).toBe((version(before.services, 'shop_web') ?? 0) + 1);
    expect(version(after.services, 'shop_db')).toBe(version(before.services, 'shop_db'));
    expect((await service('shop_web'))?.spec?.taskTemplate?.container?.image).toBe('busybox:1.36');
  });

  it('refuses a secret whose file now holds other data, naming it', async () => {
    await writeFile(join(dataDir, 'token.txt'), 'rotated');
    const refused = await local('stack', 'deploy', '--detach', '-c', join(dataDir, 'shop.yml'), 'shop');
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('cannot update secret "shop_token"');
    await writeFile(join(dataDir, 'token.txt'), 's3cret');
  });

  it('prunes the services the file no longer has', async () => {
    await writeFile(join(dataDir, 'web-only.yml'), BASE.replace(/ {2}db:\n(?: {4}.*\n)+/, ''));
    const pruned = await local('stack', 'deploy', '--detach', '--prune', '-c', join(dataDir, 'web-only.yml'), 'shop');
    expect(pruned.code, pruned.stderr).toBe(0);
    expect(pruned.stdout).toContain('Removing service shop_db');
    expect(await service('shop_db')).toBeUndefined();
    expect(await localJson<StackRow[]>('stack', 'ls')).toEqual([{ name: 'shop', services: 1 }]);
  });

  it('removes the stack, leaving nothing of it and its external network in place', async () => {
    const removed = await local('stack', 'rm', 'shop');
    expect(removed.code, removed.stderr).toBe(0);
    expect(removed.stdout.split('\n').filter(Boolean)).toEqual([
      'Removing service shop_web',
      'Removing secret shop_token',
      'Removing config shop_site',
      'Removing network shop_default',
      'Removing network shop_front',
    ]);
    const now = await stored();
    expect(now.services).toEqual([]);
    expect([...now.networks.keys()]).toEqual(['public']);
    expect(now.secrets.size + now.configs.size).toBe(0);
    expect(await localJson<StackRow[]>('stack', 'ls')).toEqual([]);
    const again = await local('stack', 'rm', 'shop');
    expect(again.stderr).toContain('Nothing found in stack: shop');
  });
});
