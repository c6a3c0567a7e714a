import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as tar from 'tar';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../registry/free-port.js';
import { startRegistry } from '../registry/registry.js';
import { buildDemoWebImage, pushOciLayout } from './busybox-image.js';

const run = promisify(execFile);
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'skiff-busybox-e2e-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Polls `check` until it returns a value or the deadline passes. */
async function waitFor<T>(what: string, deadlineMs: number, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + deadlineMs;
  let lastError = '';
  for (;;) {
    const value = await check().catch((error: unknown) => void (lastError = String(error)));
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${lastError}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function layerOf(layoutDir: string, manifestDigest: string): Promise<string> {
  const blobs = join(layoutDir, 'blobs', 'sha256');
  const manifest = JSON.parse(await readFile(join(blobs, manifestDigest.slice(7)), 'utf8')) as { layers: { digest: string }[] };
  return join(blobs, manifest.layers[0]?.digest.slice(7) ?? 'missing');
}

describe('demo web image', () => {
  it('pushes to a real registry with skopeo', async () => {
    const dir = await tempDir();
    const layoutDir = join(dir, 'layout');
    const { manifestDigest } = await buildDemoWebImage(layoutDir, 'v1');
    const listenAddr = `127.0.0.1:${await freePort()}`;
    const registry = await startRegistry({ dataDir: join(dir, 'registry'), listenAddr });
    cleanups.push(() => registry.stop());
    await pushOciLayout(layoutDir, 'v1', `${listenAddr}/demo/web:v1`, { insecure: true });
    const response = await fetch(`http://${listenAddr}/v2/demo/web/manifests/v1`, {
      headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('docker-content-digest')).toBe(manifestDigest);
    await expect(pushOciLayout(layoutDir, 'v9', `${listenAddr}/demo/web:v9`, { insecure: true })).rejects.toThrow(/cannot push .*:v9/);
  });

  it('runs under runc as pid 1, serves a page naming image and host, and stops within a second on TERM', async () => {
    const dir = await tempDir();
    const layoutDir = join(dir, 'layout');
    const { manifestDigest } = await buildDemoWebImage(layoutDir, 'v2');
    const bundle = join(dir, 'bundle');
    const rootfs = join(bundle, 'rootfs');
    await mkdir(rootfs, { recursive: true });
    await tar.x({ file: await layerOf(layoutDir, manifestDigest), cwd: rootfs });
    await run('runc', ['spec'], { cwd: bundle });
    const spec = JSON.parse(await readFile(join(bundle, 'config.json'), 'utf8')) as {
      process: { args: string[]; terminal: boolean };
      root: { readonly: boolean };
      hostname: string;
    };
    spec.process.args = ['/bin/demo-web'];
    spec.process.terminal = false;
    spec.root.readonly = false;
    spec.hostname = 'demo-host-1';
    await writeFile(join(bundle, 'config.json'), JSON.stringify(spec));
    const id = `skiff-demo-e2e-${process.pid}-${Date.now()}`;
    const container: ChildProcess = spawn('runc', ['run', '--bundle', bundle, id], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((resolve) => container.on('exit', (code) => resolve(code)));
    cleanups.push(() => run('runc', ['delete', '--force', id]));
    let stderr = '';
    container.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));

    const page = await waitFor('index.html', 10_000, async () => {
      const text = await readFile(join(rootfs, 'www', 'index.html'), 'utf8');
      return text.includes('</p>\n') ? text : undefined;
    }).catch((error: Error) => {
      throw new Error(`${error.message}; runc stderr: ${stderr}`);
    });
    expect(page).toContain('demo/web:v2');
    expect(page).toContain('host: demo-host-1');

    const state = JSON.parse((await run('runc', ['state', id])).stdout) as { pid: number };
    const netns = `--net=/proc/${state.pid}/ns/net`;
    const served = await waitFor('httpd answer', 10_000, async () => {
      const { stdout } = await run('nsenter', [netns, '/bin/busybox', 'wget', '-q', '-O', '-', 'http://127.0.0.1:80/'], { timeout: 2_000 });
      return stdout;
    });
    expect(served).toContain('demo/web:v2');

    const killedAt = Date.now();
    await run('runc', ['kill', id, 'TERM']);
    const stopped = await Promise.race([
      exited.then(() => true),
      new Promise<false>((resolve) => setTimeout(() => resolve(false), 2_000)),
    ]);
    expect(stopped).toBe(true);
    expect(Date.now() - killedAt).toBeLessThan(1_000);
  });
});
