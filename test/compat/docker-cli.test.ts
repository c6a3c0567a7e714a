/**
 * The stock `docker` CLI (the client installed on this machine; no engine) against a REAL manager
 * (bin/skiffd, built, no agent) through its Docker-compatible API socket (DESIGN.md §1): version
 * negotiation, `docker info`, `node ls|inspect|update`, `service create|ls|ps|inspect|scale|
 * update|rollback|rm`, and refusals. What the CLI wrote is checked against the manager's store
 * through the Control API on the same manager's control socket, so a test passes only when the
 * CLI's request really became Skiff's state.
 */
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ControlClient, type GetNodeResponse, type GetServiceResponse, type ListTasksResponse } from '../../proto/skiff/v1/control.js';
import { NodeAvailability, TaskState } from '../../proto/skiff/v1/types.js';
import { type CliResult, docker as dockerCli, skiff, waitFor } from '../e2e/helpers.js';
import { type LoopbackManager, startBareManager } from '../e2e/loopback-manager.js';

const MANAGER_START_DEADLINE_MS = 60_000;
const DOCKER_DEADLINE_MS = 60_000;

let dataDir = '';
let manager: LoopbackManager | undefined;
let control: InstanceType<typeof ControlClient> | undefined;

/** The stock docker CLI against the manager's Docker API socket. */
function docker(...args: string[]): Promise<CliResult> {
  return dockerCli(join(dataDir, 'docker.sock'), join(dataDir, 'docker-config'), args, DOCKER_DEADLINE_MS);
}

/** docker that must succeed; its stdout trimmed. */
async function dockerOk(...args: string[]): Promise<string> {
  const run = await docker(...args);
  expect(run.code, `docker ${args.join(' ')}\n${run.stderr}`).toBe(0);
  return run.stdout.trim();
}

function controlCall<T>(invoke: (client: InstanceType<typeof ControlClient>, callback: (error: grpc.ServiceError | null, value: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    if (control === undefined) throw new Error('no control client');
    invoke(control, (error, value) => (error === null ? resolve(value) : reject(error)));
  });
}

const getService = (service: string): Promise<GetServiceResponse> => controlCall((client, callback) => client.getService({ service }, callback));

beforeAll(async () => {
  const version = await docker('--version');
  if (version.code !== 0) throw new Error(`cannot run the docker CLI (this machine's client, no engine needed): ${version.stderr}`);
  dataDir = await mkdtemp(join(tmpdir(), 'skiff-compat-docker-'));
  manager = await startBareManager(dataDir, MANAGER_START_DEADLINE_MS);
  control = new ControlClient(`unix://${join(dataDir, 'skiff.sock')}`, grpc.credentials.createInsecure());
});

afterAll(async () => {
  control?.close();
  await manager?.stop();
  if (dataDir !== '') await rm(dataDir, { recursive: true, force: true });
});

describe('the stock docker CLI against a Skiff manager', () => {
  it('finds the API next to the control socket, root-only, and negotiates its version', async () => {
    expect((await stat(join(dataDir, 'docker.sock'))).mode & 0o777).toBe(0o600);
    expect(await dockerOk('version', '--format', '{{.Server.APIVersion}} {{.Server.Os}}')).toBe('1.43 linux');
    // The engine version is Skiff's release, the one `skiff --version` prints.
    const skiffVersion = await skiff(dataDir, ['--version']);
    expect(skiffVersion.code).toBe(0);
    expect(await dockerOk('version', '--format', '{{.Server.Version}}')).toBe(skiffVersion.stdout.trim());
    expect(skiffVersion.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    const info = JSON.parse(await dockerOk('info', '--format', '{{json .Swarm}}')) as { LocalNodeState: string; ControlAvailable: boolean; Managers: number };
    expect(info).toMatchObject({ LocalNodeState: 'active', ControlAvailable: true, Managers: 1 });
  });

  it('lists the manager as the leader, marked as the node it talks to', async () => {
    const rows = (await dockerOk('node', 'ls', '--format', '{{.Self}} {{.ManagerStatus}}')).split('\n');
    expect(rows).toEqual(['true Leader']);
  });

  it('drains a node with docker node update, in Skiff\'s store', async () => {
    const self = await dockerOk('info', '--format', '{{.Swarm.NodeID}}');
    await dockerOk('node', 'update', '--availability', 'drain', '--label-add', 'zone=a', 'self');
    const node = await controlCall<GetNodeResponse>((client, callback) => client.getNode({ node: self }, callback));
    expect(node.node?.spec).toMatchObject({ availability: NodeAvailability.NODE_AVAILABILITY_DRAIN, labels: { zone: 'a' } });
    await dockerOk('node', 'update', '--availability', 'active', 'self');
  });

  it('creates a service that Skiff stores as the CLI described it, and lists it and its tasks', async () => {
    const id = await dockerOk('service', 'create', '--detach', '--name', 'web', '--replicas', '2', '--env', 'A=1', '--label', 'team=x', '--publish', '8080:80', '--stop-grace-period', '7s', 'busybox:latest', 'sleep', '1000');
    const stored = (await getService('web')).service;
    expect(stored?.meta?.id).toBe(id);
    expect(stored?.spec).toMatchObject({
      name: 'web',
      labels: { team: 'x' },
      mode: { $case: 'replicated', value: { replicas: 2 } },
      taskTemplate: { container: { image: 'busybox:latest', args: ['sleep', '1000'], env: ['A=1'], stopGracePeriodMs: 7_000 } },
      endpoint: { ports: [expect.objectContaining({ targetPort: 80, publishedPort: 8080, protocol: 'tcp' })] },
    });
    expect(await dockerOk('service', 'ls', '--format', '{{.Name}} {{.Mode}} {{.Replicas}} {{.Image}}')).toMatch(/^web replicated [0-2]\/2 busybox:latest$/);
    // Two tasks for slots 1 and 2, wanted running (no worker here: they stay pending).
    await waitFor('two tasks for web', DOCKER_DEADLINE_MS, async () => {
      const rows = (await dockerOk('service', 'ps', 'web', '--format', '{{.Name}} {{.DesiredState}}')).split('\n').sort();
      return rows.length === 2 ? rows : undefined;
    }).then((rows) => expect(rows).toEqual(['web.1 Running', 'web.2 Running']));
  });

  it('scales, updates and rolls back, each a new version in the store', async () => {
    await dockerOk('service', 'scale', '--detach', 'web=3');
    expect((await getService('web')).service?.spec?.mode).toEqual({ $case: 'replicated', value: { replicas: 3 } });
    const before = (await getService('web')).service?.specVersion ?? 0;
    await dockerOk('service', 'update', '--detach', '--image', 'busybox:1.36', '--env-add', 'B=2', 'web');
    const updated = (await getService('web')).service;
    expect(updated?.spec?.taskTemplate?.container?.image).toBe('busybox:1.36');
    // The CLI merges --env-add through a map: the order of the variables is its own.
    expect([...(updated?.spec?.taskTemplate?.container?.env ?? [])].sort()).toEqual(['A=1', 'B=2']);
    expect(updated?.specVersion).toBe(before + 1);
    expect(updated?.spec?.mode).toEqual({ $case: 'replicated', value: { replicas: 3 } });
    await dockerOk('service', 'rollback', '--detach', 'web');
    expect((await getService('web')).service?.spec?.taskTemplate?.container?.image).toBe('busybox:latest');
    expect(await dockerOk('service', 'inspect', 'web', '--format', '{{.Spec.TaskTemplate.ContainerSpec.Image}} {{.PreviousSpec.TaskTemplate.ContainerSpec.Image}}')).toBe('busybox:latest busybox:1.36');
  });

  it('refuses what Skiff cannot honour, naming the field, and stores nothing', async () => {
    const refused = await docker('service', 'create', '--detach', '--name', 'bad', '--mount', 'type=bind,source=/srv,target=/srv,bind-propagation=rshared', 'busybox:latest');
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('TaskTemplate.ContainerSpec.Mounts[0].BindOptions');
    await expect(getService('bad')).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    const taken = await docker('service', 'create', '--detach', '--name', 'web', 'busybox:latest');
    expect(taken.code).not.toBe(0);
    expect(taken.stderr).toContain('a service with that name already exists');
    const unknown = await docker('ps');
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toContain("is not part of Skiff's Docker API");
  });

  it('creates secrets and overlay networks that a service then uses', async () => {
    const secretFile = join(dataDir, 'password.txt');
    await writeFile(secretFile, 'hunter2');
    const secretId = await dockerOk('secret', 'create', '--label', 'app=db', 'db-password', secretFile);
    expect(await dockerOk('secret', 'ls', '--format', '{{.ID}} {{.Name}}')).toBe(`${secretId} db-password`);
    const networkId = await dockerOk('network', 'create', '--driver', 'overlay', '--subnet', '10.77.0.0/24', '--internal', 'backend');
    expect(await dockerOk('network', 'ls', '--format', '{{.ID}} {{.Name}} {{.Driver}} {{.Scope}}')).toBe(`${networkId.slice(0, 12)} backend overlay swarm`);
    expect(await dockerOk('network', 'inspect', 'backend', '--format', '{{(index .IPAM.Config 0).Subnet}} {{.Internal}}')).toBe('10.77.0.0/24 true');
    await dockerOk('service', 'create', '--detach', '--name', 'db', '--secret', 'db-password', '--network', 'backend', 'busybox:latest', 'sleep', '1000');
    const db = (await getService('db')).service;
    expect(db?.spec?.taskTemplate?.container?.secrets).toEqual([expect.objectContaining({ secretId, secretName: 'db-password', target: 'db-password' })]);
    expect(db?.spec?.taskTemplate?.networks).toEqual([networkId]);
    // In use: Skiff refuses to remove either, and says by whom.
    const busy = await docker('secret', 'rm', 'db-password');
    expect(busy.code).not.toBe(0);
    expect(busy.stderr).toContain('db');
    await dockerOk('service', 'rm', 'db');
    await dockerOk('secret', 'rm', 'db-password');
    await dockerOk('network', 'rm', 'backend');
    expect(await dockerOk('secret', 'ls', '--quiet')).toBe('');
    expect(await dockerOk('config', 'ls', '--quiet')).toBe('');
    expect(await dockerOk('network', 'ls', '--quiet')).toBe('');
  });

  it('deploys a Compose file as a stack, lists it, its services and tasks, and removes it', async () => {
    const composeFile = join(dataDir, 'shop.yml');
    await writeFile(join(dataDir, 'token.txt'), 's3cret');
    await writeFile(
      composeFile,
      [
        'services:',
        '  web:',
        '    image: busybox:latest',
        '    command: ["sleep", "1000"]',
        '    environment: { MODE: shop }',
        '    ports: ["8081:80"]',
        '    networks: [front]',
        '    secrets: [token]',
        '    deploy:',
        '      replicas: 2',
        '      labels: { tier: front }',
        '  db:',
        '    image: busybox:latest',
        '    command: ["sleep", "1000"]',
        '    networks: [front]',
        '    configs: [site]',
        'networks:',
        '  front: {}',
        'secrets:',
        '  token:',
        '    file: ./token.txt',
        'configs:',
        '  site:',
        '    file: ./token.txt',
        '',
      ].join('\n'),
    );
    const deployed = await docker('stack', 'deploy', '--compose-file', composeFile, 'shop');
    expect(deployed.code, deployed.stderr).toBe(0);
    const web = (await getService('shop_web')).service;
    expect(web?.spec?.labels).toMatchObject({ 'com.docker.stack.namespace': 'shop', tier: 'front' });
    expect(web?.spec?.taskTemplate?.networkAliases).toEqual([{ network: web?.spec?.taskTemplate?.networks[0], aliases: ['web'] }]);
    expect(await dockerOk('stack', 'ls', '--format', '{{.Name}} {{.Services}}')).toBe('shop 2');
    expect((await dockerOk('stack', 'services', 'shop', '--format', '{{.Name}} {{.Replicas}}')).split('\n').sort()).toEqual(['shop_db 0/1', 'shop_web 0/2']);
    await waitFor('three tasks in the stack', DOCKER_DEADLINE_MS, async () => {
      const rows = (await dockerOk('stack', 'ps', 'shop', '--format', '{{.Name}}')).split('\n').sort();
      return rows.length === 3 ? rows : undefined;
    }).then((rows) => expect(rows).toEqual(['shop_db.1', 'shop_web.1', 'shop_web.2']));
    expect(await dockerOk('secret', 'ls', '--format', '{{.Name}} {{.Labels}}')).toBe('shop_token com.docker.stack.namespace=shop');
    // The CLI sends a config's bare key as its target: Docker puts it under the container's root.
    expect((await getService('shop_db')).service?.spec?.taskTemplate?.container?.configs).toEqual([expect.objectContaining({ configName: 'shop_site', target: '/site' })]);
    // Deploying the same file again sends every secret and service again: nothing changes.
    const again = await docker('stack', 'deploy', '--compose-file', composeFile, 'shop');
    expect(again.code, again.stderr).toBe(0);
    expect((await getService('shop_web')).service?.specVersion).toBe(web?.specVersion);
    const rm = await docker('stack', 'rm', 'shop');
    expect(rm.code, rm.stderr).toBe(0);
    await expect(getService('shop_web')).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    expect(await dockerOk('stack', 'ls', '--format', '{{.Name}}')).toBe('');
    expect(await dockerOk('secret', 'ls', '--quiet')).toBe('');
    expect(await dockerOk('network', 'ls', '--quiet')).toBe('');
  });

  it('lists and removes a stack that skiff stack deploy made, as skiff does one that docker stack deploy made', async () => {
    const home = join(dataDir, 'skiff-home');
    await mkdir(home);
    const composeFile = join(dataDir, 'blog.yml');
    await writeFile(composeFile, 'services:\n  app: {image: "busybox:latest", command: [sleep, "1000"]}\n  cache: {image: "busybox:latest", command: [sleep, "1000"]}\n');
    const deployed = await skiff(home, ['-H', `unix://${join(dataDir, 'skiff.sock')}`, 'stack', 'deploy', '--detach', '-c', composeFile, 'blog']);
    expect(deployed.code, deployed.stderr).toBe(0);
    expect(await dockerOk('stack', 'ls', '--format', '{{.Name}} {{.Services}}')).toBe('blog 2');
    expect((await dockerOk('stack', 'services', 'blog', '--format', '{{.Name}}')).split('\n').sort()).toEqual(['blog_app', 'blog_cache']);
    await dockerOk('stack', 'deploy', '--compose-file', composeFile, 'news');
    const listed = await skiff(home, ['-H', `unix://${join(dataDir, 'skiff.sock')}`, 'stack', 'ls', '--format', 'json']);
    expect(JSON.parse(listed.stdout)).toEqual([{ name: 'blog', services: 2 }, { name: 'news', services: 2 }]);
    // Each CLI removes the other's stack, networks included.
    await dockerOk('stack', 'rm', 'blog');
    const removed = await skiff(home, ['-H', `unix://${join(dataDir, 'skiff.sock')}`, 'stack', 'rm', 'news']);
    expect(removed.code, removed.stderr).toBe(0);
    expect(await dockerOk('stack', 'ls', '--format', '{{.Name}}')).toBe('');
    expect(await dockerOk('network', 'ls', '--quiet')).toBe('');
  });

  it('removes a service and its tasks', async () => {
    expect(await dockerOk('service', 'rm', 'web')).toBe('web');
    await expect(getService('web')).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    expect(await dockerOk('service', 'ls', '--quiet')).toBe('');
    await waitFor('the tasks of web to go', DOCKER_DEADLINE_MS, async () => {
      const tasks = await controlCall<ListTasksResponse>((client, callback) => client.listTasks({ service: '', node: '' }, callback));
      return tasks.tasks.every((task) => task.serviceName !== 'web' || task.desiredState !== TaskState.TASK_STATE_RUNNING) ? true : undefined;
    });
  });
});
