import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { registryConfigYaml, registryPidAlive, startRegistry } from './registry.js';

describe('registry config', () => {
  it('registryConfigYaml serves plain http on the address with filesystem storage and deletes', () => {
    const yaml = registryConfigYaml('/data/storage', '127.0.0.1:5000');
    expect(yaml).toContain('rootdirectory: "/data/storage"');
    expect(yaml).toContain('addr: "127.0.0.1:5000"');
    expect(yaml).toMatch(/delete:\n {4}enabled: true/);
    expect(yaml).toContain('level: warn');
    expect(yaml).not.toMatch(/reporting|notifications|debug/);
  });

  it('startRegistry rejects a listen address that is not ip:port', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'skiff-registry-unit-'));
    try {
      await expect(startRegistry({ dataDir, listenAddr: 'localhost' })).rejects.toThrow(/listenAddr "localhost"/);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('registryPidAlive is false for a process that is not a registry', () => {
    expect(registryPidAlive(process.pid)).toBe(false);
    expect(registryPidAlive(2 ** 22 + 1)).toBe(false);
  });
});
