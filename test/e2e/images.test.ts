/**
 * Images on the lab (issue #7, images): managers pin tags to digests at service create; a pull
 * whose bytes do not match their digest fails with a clear error; while the registry is down a
 * task is rejected after the pull's retries and the service stays (and runs once it is back).
 * The `skiff image ...` block runs through the managers' ImageCommand/LoadImage and the agents'
 * node-request channel.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBusyboxImage, pushOciLayout } from '../../deploy/images/busybox-image.js';
import { labDown, labUp, leftovers, type LabState } from '../../deploy/lab/index.js';
import { registryPaths } from '../../deploy/registry/registry.js';
import { running, skiff, skiffJson, uniqueLab, waitFor, type TaskRow } from './helpers.js';

const lab = uniqueLab('img');
const work = mkdtempSync(join(tmpdir(), 'skiff-e2e-images-'));
let state: LabState;

beforeAll(async () => {
  process.env['SKIFF_HOME'] = lab.home;
  state = await labUp({ name: lab.name, managers: 1, workers: 1 });
}, 300_000);
afterAll(async () => {
  await labDown(lab.name).catch(() => undefined);
  rmSync(lab.home, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
});

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

/** Builds a one-layer busybox image with a unique file and pushes it to the lab registry as `repository:1`. */
async function pushUniqueImage(repository: string): Promise<{ digest: string; layerDigest: string }> {
  const layoutDir = join(work, repository.replace(/\//g, '_'));
  const { manifestDigest } = await buildBusyboxImage({
    layoutDir,
    tag: '1',
    files: { '/unique.txt': { content: `${repository} ${randomBytes(8).toString('hex')}\n`, mode: 0o644 } },
    entrypoint: ['/bin/sleep'],
    cmd: ['3600'],
  });
  await pushOciLayout(layoutDir, '1', `${state.registry.addr}/${repository}:1`, { insecure: true });
  const manifest = JSON.parse(readFileSync(join(layoutDir, 'blobs', 'sha256', manifestDigest.slice(7)), 'utf8')) as { layers: { digest: string }[] };
  return { digest: manifestDigest, layerDigest: manifest.layers[0]?.digest ?? '' };
}

/** The manifest digest the lab registry serves for `repository:tag`, asked the way a manager asks. */
async function registryDigest(repository: string, tag: string): Promise<string> {
  const response = await fetch(`http://${state.registry.addr}/v2/${repository}/manifests/${tag}`, { method: 'HEAD', headers: { accept: OCI_MANIFEST } });
  return response.headers.get('docker-content-digest') ?? '';
}

const imageOf = async (service: string): Promise<string> => {
  const [inspected] = await skiffJson<Array<{ spec?: { taskTemplate?: { container?: { image?: string } } } }>>(lab.home, ['service', 'inspect', service]);
  return inspected?.spec?.taskTemplate?.container?.image ?? '';
};
const ps = (service: string): Promise<TaskRow[]> => skiffJson<TaskRow[]>(lab.home, ['service', 'ps', service]);
const serviceNames = async (): Promise<string[]> => (await skiffJson<Array<{ name: string }>>(lab.home, ['service', 'ls'])).map((row) => row.name);

describe('images on the lab', () => {
  it('service create pins the tag to the registry digest; --no-resolve-image keeps the tag', async () => {
    const pinned = await skiff(lab.home, ['service', 'create', '--detach', '--name', 'pinned', 'demo/web:v1']);
    expect(pinned.stderr).toBe('');
    expect(await imageOf('pinned')).toBe(`demo/web:v1@${await registryDigest('demo/web', 'v1')}`);
    const raw = await skiff(lab.home, ['service', 'create', '--detach', '--no-resolve-image', '--name', 'unpinned', 'demo/web:v1']);
    expect(raw.stderr).toBe('');
    expect(await imageOf('unpinned')).toBe('demo/web:v1');
    // The pinned service runs (agents pull by digest), and lists show the tag as Docker does.
    const rows = await waitFor('the pinned service running', 60_000, async () => {
      const tasks = await ps('pinned');
      return running(tasks).length === 1 ? tasks : undefined;
    });
    expect(rows[0]?.image).toBe('demo/web:v1');
    await skiff(lab.home, ['service', 'rm', 'pinned', 'unpinned']);
  });

  it('a pull whose layer does not match its digest is rejected with a clear error; the service stays', async () => {
    const repository = `demo/corrupt${randomBytes(3).toString('hex')}`;
    const { layerDigest } = await pushUniqueImage(repository);
    // Flip bytes of the layer as the registry stores it: same size, other content.
    const hex = layerDigest.slice(7);
    const data = join(registryPaths(state.registry.dataDir).storage, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
    const bytes = readFileSync(data);
    for (let index = 100; index < 110; index += 1) bytes[index] = (bytes[index] ?? 0) ^ 0xff;
    writeFileSync(data, bytes);
    const created = await skiff(lab.home, ['service', 'create', '--detach', '--name', 'corrupt', `${repository}:1`]);
    expect(created.stderr).toBe('');
    const rejected = await waitFor('a rejected task', 60_000, async () => (await ps('corrupt')).find((row) => row.state === 'rejected'));
    expect(rejected.error).toMatch(new RegExp(`^cannot pull image "${repository}:1@sha256:[a-f0-9]{64}": blob ${layerDigest} from registry ${state.registry.addr.replace(/\./g, '\\.')} has digest sha256:[a-f0-9]{64}$`));
    expect(await serviceNames()).toContain('corrupt');
    await skiff(lab.home, ['service', 'rm', 'corrupt']);
  });

  it('while the registry is down a task is rejected after retries and the service stays; it runs once the registry is back', async () => {
    const repository = `demo/late${randomBytes(3).toString('hex')}`;
    await pushUniqueImage(repository);
    process.kill(state.registry.pid, 'SIGKILL');
    await waitFor('the registry to refuse connections', 10_000, () => fetch(`http://${state.registry.addr}/v2/`).then(() => undefined, () => true));
    // The manager cannot pin the tag either: it keeps it (and warns) without holding create up.
    const started = Date.now();
    const created = await skiff(lab.home, ['service', 'create', '--detach', '--name', 'late', `${repository}:1`]);
    expect(created.stderr).toBe('');
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(await imageOf('late')).toBe(`${repository}:1`);
    const rejected = await waitFor('a rejected task', 60_000, async () => (await ps('late')).find((row) => row.state === 'rejected'));
    expect(rejected.error).toBe(`cannot pull image "${repository}:1": registry ${state.registry.addr} is unreachable (ECONNREFUSED) after 4 attempts`);
    expect(await serviceNames()).toContain('late');
    // Back: lab up is idempotent and restarts what is down (here the registry, on its data).
    state = await labUp({ name: lab.name, managers: 1, workers: 1 });
    await waitFor('the service running from the registry that came back', 120_000, async () => (running(await ps('late')).length === 1 ? true : undefined));
    await skiff(lab.home, ['service', 'rm', 'late']);
  });
});

describe('skiff image commands', () => {
  it('image pull, ls, rm (refused while used, unless -f), prune -a, load on every node or one', async () => {
    const workerName = state.hosts.find((host) => host.role === 'worker')?.name ?? '';
    const pulled = await skiff(lab.home, ['image', 'pull', 'demo/web:v2']);
    expect(pulled.stderr).toBe('');
    const listed = await skiffJson<Array<{ node: string; references: string[]; digest: string }>>(lab.home, ['image', 'ls']);
    const v2 = `${state.registry.addr}/demo/web:v2`;
    expect(new Set(listed.filter((row) => row.references.includes(v2)).map((row) => row.node))).toEqual(new Set(state.hosts.map((host) => host.name)));

    await skiff(lab.home, ['service', 'create', '--name', 'user', '--constraint', `node.hostname==${workerName}`, 'demo/web:v2']);
    const refused = await skiff(lab.home, ['image', 'rm', '--node', workerName, 'demo/web:v2']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(new RegExp(`${workerName}: cannot remove image "demo/web:v2": 1 container\\(s\\) on this node use it`));
    const forced = await skiff(lab.home, ['image', 'rm', '-f', '--node', workerName, 'demo/web:v2']);
    expect(forced.stdout).toContain(`untagged: ${v2}`);
    expect(running(await ps('user'))).toHaveLength(1);
    await skiff(lab.home, ['service', 'rm', 'user']);

    const pruned = await skiffJson<Array<{ node: string; deleted: string[]; reclaimedBytes: number }>>(lab.home, ['image', 'prune', '-a']);
    expect(pruned.some((row) => row.reclaimedBytes > 0)).toBe(true);

    const layoutDir = join(work, 'load');
    await buildBusyboxImage({ layoutDir, tag: 'loaded', files: { '/loaded.txt': { content: 'loaded\n', mode: 0o644 } }, entrypoint: ['/bin/sleep'], cmd: ['3600'] });
    const index = JSON.parse(readFileSync(join(layoutDir, 'index.json'), 'utf8')) as { manifests: Array<{ annotations?: Record<string, string> }> };
    for (const entry of index.manifests) entry.annotations = { ...entry.annotations, 'io.containerd.image.name': 'local/loaded:1' };
    writeFileSync(join(layoutDir, 'index.json'), JSON.stringify(index));
    const archive = join(work, 'loaded.tar.gz');
    execFileSync('tar', ['-czf', archive, '-C', layoutDir, '.']);
    const loaded = await skiffJson<Array<{ node: string; references: string[] }>>(lab.home, ['image', 'load', '-i', archive, '--node', workerName]);
    expect(loaded).toEqual([expect.objectContaining({ node: workerName, references: [`${state.registry.addr}/local/loaded:1`] })]);
    await skiff(lab.home, ['service', 'create', '--name', 'fromload', '--no-resolve-image', '--constraint', `node.hostname==${workerName}`, 'local/loaded:1']);
    await waitFor('the loaded image running', 60_000, async () => (running(await ps('fromload')).length === 1 ? true : undefined));
    await skiff(lab.home, ['service', 'rm', 'fromload']);
  });
});

describe('images lab teardown', () => {
  it('lab down leaves nothing behind', async () => {
    await labDown(lab.name);
    expect(await leftovers(lab.name)).toEqual([]);
  });
});
