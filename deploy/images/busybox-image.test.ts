import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import * as tar from 'tar';
import { afterEach, describe, expect, it } from 'vitest';
import { buildBusyboxImage, buildDemoWebImage, demoWebScript, hostOciArchitecture } from './busybox-image.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'skiff-busybox-image-'));
  dirs.push(dir);
  return dir;
}

interface Json {
  [key: string]: unknown;
}
async function blob(layoutDir: string, digest: string): Promise<Buffer> {
  return readFile(join(layoutDir, 'blobs', 'sha256', digest.replace('sha256:', '')));
}
async function listLayer(bytes: Buffer): Promise<Map<string, { type: string; mode: number; linkpath: string }>> {
  const entries = new Map<string, { type: string; mode: number; linkpath: string }>();
  const parser = new tar.Parser({
    onReadEntry: (entry) => {
      entries.set(entry.path, { type: entry.type, mode: entry.mode ?? 0, linkpath: entry.linkpath ?? '' });
      entry.resume();
    },
  });
  await new Promise<void>((resolve, reject) => {
    parser.on('end', resolve);
    parser.on('error', reject);
    parser.end(gunzipSync(bytes));
  });
  return entries;
}

describe('busybox image', () => {
  const options = {
    tag: 'v1',
    files: { '/www/index.html': { content: 'hello', mode: 0o644 }, '/opt/app/run.sh': { content: 'echo hi', mode: 0o755 } },
    entrypoint: ['/bin/sh', '-c'],
    cmd: ['echo hi'],
    env: ['GREETING=hello'],
    workingDir: '/www',
    exposedPorts: [80],
  };

  it('buildBusyboxImage writes a layout with one gzip layer holding busybox, applets and files', async () => {
    const layoutDir = await tempDir();
    const { manifestDigest } = await buildBusyboxImage({ ...options, layoutDir });
    const index = JSON.parse(await readFile(join(layoutDir, 'index.json'), 'utf8')) as { manifests: Json[] };
    expect(index.manifests).toHaveLength(1);
    expect(index.manifests[0]).toMatchObject({ digest: manifestDigest, annotations: { 'org.opencontainers.image.ref.name': 'v1' } });
    expect(JSON.parse(await readFile(join(layoutDir, 'oci-layout'), 'utf8'))).toEqual({ imageLayoutVersion: '1.0.0' });
    const manifest = JSON.parse((await blob(layoutDir, manifestDigest)).toString()) as { config: Json; layers: Json[] };
    expect(manifest.layers).toHaveLength(1);
    expect(manifest.layers[0]?.mediaType).toBe('application/vnd.oci.image.layer.v1.tar+gzip');
    const config = JSON.parse((await blob(layoutDir, String(manifest.config.digest))).toString()) as { config: Json; architecture: string; os: string };
    expect(config.os).toBe('linux');
    expect(config.architecture).toBe(hostOciArchitecture());
    expect(config.config).toMatchObject({ Entrypoint: ['/bin/sh', '-c'], Cmd: ['echo hi'], WorkingDir: '/www', ExposedPorts: { '80/tcp': {} } });
    expect(config.config.Env).toEqual(expect.arrayContaining(['GREETING=hello', expect.stringMatching(/^PATH=.*\/bin/)]));
    const entries = await listLayer(await blob(layoutDir, String(manifest.layers[0]?.digest)));
    expect(entries.get('bin/busybox')).toMatchObject({ type: 'File', mode: 0o755 });
    for (const applet of ['sh', 'httpd', 'wget', 'hostname', 'cat', 'echo', 'sleep', 'ls', 'ps', 'id', 'nc']) {
      expect(entries.get(`bin/${applet}`)).toMatchObject({ type: 'SymbolicLink', linkpath: 'busybox' });
    }
    expect(entries.get('tmp/')).toMatchObject({ type: 'Directory', mode: 0o1777 });
    for (const dir of ['proc/', 'sys/', 'dev/', 'www/', 'etc/', 'opt/', 'opt/app/']) expect(entries.get(dir)?.type).toBe('Directory');
    expect(entries.get('opt/app/run.sh')).toMatchObject({ type: 'File', mode: 0o755 });
    expect(entries.get('etc/passwd')?.type).toBe('File');
  });

  it('buildBusyboxImage is deterministic and keeps other tags in the layout', async () => {
    const first = await buildBusyboxImage({ ...options, layoutDir: await tempDir() });
    const layoutDir = await tempDir();
    const second = await buildBusyboxImage({ ...options, layoutDir });
    expect(second.manifestDigest).toBe(first.manifestDigest);
    const other = await buildBusyboxImage({ ...options, layoutDir, tag: 'v2', cmd: ['echo bye'] });
    expect(other.manifestDigest).not.toBe(first.manifestDigest);
    const index = JSON.parse(await readFile(join(layoutDir, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    expect(index.manifests.map((entry) => entry.digest)).toEqual([first.manifestDigest, other.manifestDigest]);
  });

  it('buildBusyboxImage rejects a file path with ".."', async () => {
    await expect(
      buildBusyboxImage({ ...options, layoutDir: await tempDir(), files: { '/../x': { content: '', mode: 0o644 } } }),
    ).rejects.toThrow(/file path "\/..\/x"/);
  });

  it('demo web images differ by version and name it on the page', async () => {
    const layoutDir = await tempDir();
    const v1 = await buildDemoWebImage(layoutDir, 'v1');
    const v2 = await buildDemoWebImage(layoutDir, 'v2');
    expect(v1.manifestDigest).not.toBe(v2.manifestDigest);
    expect(demoWebScript('v2')).toContain('demo/web:v2');
    expect(demoWebScript('v2')).toContain('$(hostname)');
    expect(demoWebScript('v2')).toMatch(/trap .* TERM/);
    // The broken release starts httpd but has no page to serve.
    expect(demoWebScript('v3')).toContain('httpd -f');
    expect(demoWebScript('v3')).not.toContain('index.html <<EOF');
  });
});
