import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createVolumeOps, listVolumes, removeVolume, VolumeError } from './volumes.js';
import { volumeDataDir, volumesDir } from './mounts.js';

let stateDir: string;
beforeEach(async () => {
  stateDir = await mkdtemp(join(tmpdir(), 'skiff-volumes-unit-'));
});
afterEach(async () => {
  await rm(stateDir, { recursive: true, force: true });
});

async function volume(name: string, file = 'data'): Promise<void> {
  await mkdir(volumeDataDir(stateDir, name), { recursive: true });
  await writeFile(join(volumeDataDir(stateDir, name), file), name);
}

describe('named volumes on a node', () => {
  it('lists volumes by name with their task counts; a half-made first fill and other entries are not volumes', async () => {
    expect(await listVolumes(stateDir, [])).toEqual([]);
    await volume('web-data');
    await volume('a.cache');
    await mkdir(join(volumesDir(stateDir), 'half', '.init-x'), { recursive: true });
    await writeFile(join(volumesDir(stateDir), 'stray-file'), '');
    const listed = await listVolumes(stateDir, ['web-data', 'web-data', 'other']);
    expect(listed.map(({ name, tasks }) => ({ name, tasks }))).toEqual([
      { name: 'a.cache', tasks: 0 },
      { name: 'web-data', tasks: 2 },
    ]);
    expect(listed.every((entry) => entry.createdMs > 0)).toBe(true);
  });

  it('removes an unused volume with its data; refuses one in use unless forced, and names the cause', async () => {
    await volume('db');
    const refused = await removeVolume(stateDir, 'db', { force: false, inUse: ['db'] }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(VolumeError);
    expect((refused as Error).message).toBe('cannot remove volume "db": 1 task(s) on this node use it (remove or move them first, or use --force)');
    expect(existsSync(join(volumeDataDir(stateDir, 'db'), 'data'))).toBe(true);
    await removeVolume(stateDir, 'db', { force: true, inUse: ['db'] });
    expect(existsSync(join(volumesDir(stateDir), 'db'))).toBe(false);
    expect(await readdir(volumesDir(stateDir))).toEqual([]);
    await expect(removeVolume(stateDir, 'db', { force: false, inUse: [] })).rejects.toThrow('cannot remove volume "db": no such volume on this node');
    await expect(removeVolume(stateDir, '../etc', { force: true, inUse: [] })).rejects.toThrow(/not a volume name/);
  });

  it('a removal a crash interrupted is finished by the next listing, never shown as a volume', async () => {
    await mkdir(join(volumesDir(stateDir), '.removing-db-0a1b2c3d', '_data'), { recursive: true });
    expect(await listVolumes(stateDir, [])).toEqual([]);
    expect(await readdir(volumesDir(stateDir))).toEqual([]);
  });

  it('prune removes only volumes no task mounts', async () => {
    await volume('keep');
    await volume('drop1');
    await volume('drop2');
    const ops = createVolumeOps({ stateDir, volumesInUse: () => ['keep'] });
    expect(await ops({ op: { $case: 'prune', value: {} } })).toEqual({ volumes: [], removed: ['drop1', 'drop2'] });
    expect((await ops({ op: { $case: 'list', value: {} } })).volumes.map((entry) => entry.name)).toEqual(['keep']);
    expect(await ops({ op: { $case: 'remove', value: { name: 'keep', force: true } } })).toEqual({ volumes: [], removed: ['keep'] });
  });
});
