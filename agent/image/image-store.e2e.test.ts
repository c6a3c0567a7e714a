import { lstat, mkdtemp, readdir, readFile, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBusyboxImage, buildDemoWebImage, pushOciLayout } from '../../deploy/images/busybox-image.js';
import { freePort } from '../../deploy/registry/free-port.js';
import { startRegistry, type RunningRegistry } from '../../deploy/registry/registry.js';
import { createImageStore, ImageError } from './index.js';

let workDir = '';
let registry: RunningRegistry | undefined;
let v1Digest = '';

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'skiff-image-store-e2e-'));
  registry = await startRegistry({ dataDir: join(workDir, 'registry'), listenAddr: `127.0.0.1:${await freePort()}` });
  const layoutDir = join(workDir, 'layout');
  v1Digest = (await buildDemoWebImage(layoutDir, 'v1')).manifestDigest;
  await pushOciLayout(layoutDir, 'v1', `${registry.addr}/demo/web:v1`, { insecure: true });
  await buildBusyboxImage({
    layoutDir,
    tag: 'tool',
    files: { '/etc/tool.conf': { content: 'x=1\n', mode: 0o600 } },
    entrypoint: ['/bin/sh'],
    cmd: ['-c', 'id'],
    env: ['MODE=tool'],
    workingDir: '/tmp',
  });
  await pushOciLayout(layoutDir, 'tool', `${registry.addr}/demo/tool:1`, { insecure: true });
});

afterAll(async () => {
  await registry?.stop();
  if (workDir !== '') await rm(workDir, { recursive: true, force: true });
});

function store(dataDir: string) {
  if (registry === undefined) throw new Error('registry not started');
  return createImageStore({ dataDir, defaultRegistry: registry.addr, insecureRegistries: [registry.addr] });
}

describe('image store against a real registry', () => {
  it('pulls the demo image: verified digest, run config, unpacked busybox layer', async () => {
    const images = store(join(workDir, 'store-a'));
    const image = await images.pull('demo/web:v1');
    expect(image.digest).toBe(v1Digest);
    expect(image.reference).toBe(`${registry?.addr}/demo/web:v1`);
    expect(image.config).toEqual({ entrypoint: ['/bin/demo-web'], cmd: [], env: [expect.stringMatching(/^PATH=/)], workingDir: '/www', user: '' });
    expect(image.layerDirs).toHaveLength(1);
    const layer = image.layerDirs[0] ?? '';
    expect((await lstat(join(layer, 'bin/busybox'))).mode & 0o7777).toBe(0o755);
    expect(await readlink(join(layer, 'bin/sh'))).toBe('busybox');
    expect((await lstat(join(layer, 'tmp'))).mode & 0o7777).toBe(0o1777);
    expect(await readFile(join(layer, 'bin/demo-web'), 'utf8')).toContain('demo/web:v1');
  });

  it('shares one layer dir between concurrent and repeated pulls, and getLocal works from a fresh store', async () => {
    const dataDir = join(workDir, 'store-b');
    const images = store(dataDir);
    const [first, second] = await Promise.all([images.pull('demo/web:v1'), images.pull(`${registry?.addr}/demo/web:v1`)]);
    expect(second.layerDirs).toEqual(first.layerDirs);
    const again = await images.pull('demo/web:v1');
    expect(again.layerDirs).toEqual(first.layerDirs);
    expect((await readdir(join(dataDir, 'layers'))).filter((name) => !name.startsWith('.'))).toHaveLength(1);

    const tool = await images.pull('demo/tool:1');
    expect(tool.config).toMatchObject({ entrypoint: ['/bin/sh'], cmd: ['-c', 'id'], workingDir: '/tmp' });
    expect(tool.config.env).toContain('MODE=tool');
    expect((await lstat(join(tool.layerDirs[0] ?? '', 'etc/tool.conf'))).mode & 0o7777).toBe(0o600);

    const fresh = store(dataDir);
    expect(await fresh.getLocal('demo/web:v1')).toEqual(first);
    expect((await fresh.getLocal(`demo/web@${first.digest}`))?.layerDirs).toEqual(first.layerDirs);
    expect(await fresh.getLocal('demo/web:v2')).toBeUndefined();
    expect(await store(join(workDir, 'store-empty')).getLocal('demo/web:v1')).toBeUndefined();
  });

  it('pulls by digest, and a missing tag is not_found naming the registry', async () => {
    const images = store(join(workDir, 'store-c'));
    const image = await images.pull(`demo/web@${v1Digest}`);
    expect(image.digest).toBe(v1Digest);
    const error = await images.pull('demo/web:nope').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ImageError);
    expect(error).toMatchObject({ code: 'not_found', message: `cannot pull image "demo/web:nope": manifest unknown to registry ${registry?.addr}` });
  });
});
