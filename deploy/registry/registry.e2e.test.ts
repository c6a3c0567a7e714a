import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from './free-port.js';
import { registryPaths, registryPidAlive, startRegistry, startRegistryDetached, stopRegistryPid } from './registry.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'skiff-registry-e2e-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

describe('docker-registry', () => {
  it('startRegistry answers /v2/ and stop() ends the process', async () => {
    const dataDir = await tempDir();
    const listenAddr = `127.0.0.1:${await freePort()}`;
    const registry = await startRegistry({ dataDir, listenAddr });
    cleanups.push(() => registry.stop());
    const response = await fetch(`http://${listenAddr}/v2/`);
    expect(response.status).toBe(200);
    expect(registryPidAlive(registry.pid)).toBe(true);
    await registry.stop();
    expect(registryPidAlive(registry.pid)).toBe(false);
    await expect(fetch(`http://${listenAddr}/v2/`)).rejects.toThrow();
  });

  it('startRegistry refuses an address where a registry already answers', async () => {
    const dataDir = await tempDir();
    const listenAddr = `127.0.0.1:${await freePort()}`;
    const first = await startRegistry({ dataDir: join(dataDir, 'a'), listenAddr });
    cleanups.push(() => first.stop());
    await expect(startRegistry({ dataDir: join(dataDir, 'b'), listenAddr })).rejects.toThrow(/cannot start registry on .*already answers/);
  });

  it('startRegistryDetached writes its pid and stopRegistryPid ends it', async () => {
    const dataDir = await tempDir();
    const listenAddr = `127.0.0.1:${await freePort()}`;
    const pid = await startRegistryDetached({ dataDir, listenAddr });
    cleanups.push(() => stopRegistryPid(pid));
    expect((await readFile(registryPaths(dataDir).pidFile, 'utf8')).trim()).toBe(String(pid));
    expect(registryPidAlive(pid)).toBe(true);
    expect((await fetch(`http://${listenAddr}/v2/`)).status).toBe(200);
    await stopRegistryPid(pid);
    expect(registryPidAlive(pid)).toBe(false);
  });
});
