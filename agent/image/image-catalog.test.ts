import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeRegistry, fakeImage } from './fake-registry.js';
import { collectByDiskUsage, collectGarbage, listImages, pruneImages, removeImage } from './image-catalog.js';
import { createImageOps } from './image-ops.js';
import { createImageStore, type LocalImageStore } from './image-store.js';
import { ImageError } from './types.js';

let registry: FakeRegistry;
let dataDir: string;
let store: LocalImageStore;
beforeEach(async () => {
  registry = new FakeRegistry();
  await registry.start();
  dataDir = await mkdtemp(join(tmpdir(), 'skiff-image-catalog-unit-'));
  store = createImageStore({ dataDir, defaultRegistry: registry.addr, insecureRegistries: [registry.addr] });
});
afterEach(async () => {
  await registry.stop();
  await rm(dataDir, { recursive: true, force: true });
});

async function failure(promise: Promise<unknown>): Promise<ImageError> {
  const caught = await promise.then(() => undefined, (error: unknown) => error);
  expect(caught).toBeInstanceOf(ImageError);
  return caught as ImageError;
}

const layersOnDisk = async (): Promise<string[]> => (await readdir(join(dataDir, 'layers')).catch(() => [] as string[])).filter((name) => !name.startsWith('.'));

describe('image catalog', () => {
  it('list groups names by manifest digest with size, created time and containers using it', async () => {
    const one = fakeImage('one');
    const two = fakeImage('two!');
    registry.addImage('team/app', 'v1', one);
    registry.addImage('team/app', 'latest', one);
    registry.addImage('team/db', 'v2', two);
    const before = Date.now();
    await store.pull('team/app:v1');
    await store.pull('team/app:latest');
    await store.pull('team/db:v2');
    const images = await listImages(store, ['team/app:v1', `team/app@${one.manifest.digest}`, 'not a ref']);
    expect(images).toHaveLength(2);
    const app = images.find((image) => image.digest === one.manifest.digest);
    expect(app).toMatchObject({ references: [`${registry.addr}/team/app:latest`, `${registry.addr}/team/app:v1`], containers: 2, sizeBytes: 3 });
    expect(app?.createdMs).toBeGreaterThanOrEqual(before);
    expect(images.find((image) => image.digest === two.manifest.digest)).toMatchObject({ references: [`${registry.addr}/team/db:v2`], containers: 0, sizeBytes: 4 });
  });

  it('remove refuses an image a container uses unless forced; forced, the layers stay for the container', async () => {
    const image = fakeImage('used');
    registry.addImage('team/app', 'v1', image);
    await store.pull('team/app:v1');
    const error = await failure(removeImage(store, 'team/app:v1', { force: false, inUse: ['team/app:v1'] }));
    expect(error.code).toBe('in_use');
    expect(error.message).toBe(`cannot remove image "team/app:v1": 1 container(s) on this node use it (${image.manifest.digest}); stop them or use --force`);
    const forced = await removeImage(store, 'team/app:v1', { force: true, inUse: [`team/app@${image.manifest.digest}`] });
    expect(forced.deleted).toEqual([`untagged: ${registry.addr}/team/app:v1`]);
    expect(await layersOnDisk()).toHaveLength(1);
    // The image is now untagged (dangling) and still used: prune keeps it until the container goes.
    expect((await pruneImages(store, { all: false, inUse: [`team/app@${image.manifest.digest}`] })).deleted).toEqual([]);
    const pruned = await pruneImages(store, { all: false, inUse: [] });
    expect(pruned.deleted).toContain(`deleted: ${image.manifest.digest}`);
    expect(pruned.deleted).toContain(`blob ${image.layer.digest}`);
    expect(pruned.reclaimedBytes).toBeGreaterThan(0);
    expect(await layersOnDisk()).toEqual([]);
    expect(await readdir(join(dataDir, 'blobs', 'sha256'))).toEqual([]);
  });

  it('remove of one tag keeps the image while another tag names it; the last tag deletes it and its layers', async () => {
    const image = fakeImage('tags');
    registry.addImage('team/app', 'v1', image);
    registry.addImage('team/app', 'stable', image);
    await store.pull('team/app:v1');
    const pulled = await store.pull('team/app:stable');
    const first = await removeImage(store, 'team/app:v1', { force: false, inUse: [] });
    expect(first.deleted).toEqual([`untagged: ${registry.addr}/team/app:v1`]);
    expect(await store.getLocal('team/app:stable')).toBeDefined();
    const last = await removeImage(store, 'team/app:stable', { force: false, inUse: [] });
    const layerHex = (pulled.layerDirs[0] ?? '').split('/').pop();
    expect(last.deleted).toEqual(expect.arrayContaining([`deleted: ${image.manifest.digest}`, `layer sha256:${layerHex}`, `blob ${image.layer.digest}`, `blob ${image.config.digest}`]));
    expect(await layersOnDisk()).toEqual([]);
    expect(await store.getLocal('team/app:stable')).toBeUndefined();
    const missing = await failure(removeImage(store, 'team/app:stable', { force: false, inUse: [] }));
    expect(missing).toMatchObject({ code: 'not_found', message: 'cannot remove image "team/app:stable": no such image on this node' });
  });

  it('remove by id prefix removes every name of the image', async () => {
    const image = fakeImage('byid');
    registry.addImage('team/app', 'v1', image);
    registry.addImage('team/other', 'v9', image);
    await store.pull('team/app:v1');
    await store.pull('team/other:v9');
    const removal = await removeImage(store, image.manifest.digest.slice(7, 19), { force: false, inUse: [] });
    expect(removal.deleted).toContain(`deleted: ${image.manifest.digest}`);
    expect(await listImages(store, [])).toEqual([]);
  });

  it('prune -a removes tagged unused images too, keeping layers shared with a used image', async () => {
    const kept = fakeImage('shared');
    registry.addImage('team/app', 'v1', kept);
    registry.addImage('team/copy', 'v1', kept);
    registry.addImage('team/gone', 'v1', fakeImage('gone'));
    await store.pull('team/app:v1');
    await store.pull('team/copy:v1');
    await store.pull('team/gone:v1');
    expect((await pruneImages(store, { all: false, inUse: [] })).deleted).toEqual([]);
    const pruned = await pruneImages(store, { all: true, inUse: ['team/app:v1'] });
    const gone = fakeImage('gone').manifest.digest;
    expect(pruned.deleted.filter((line) => line.startsWith('untagged')).sort()).toEqual([`untagged: ${registry.addr}/team/gone:v1`, `untagged: ${registry.addr}/team/gone@${gone}`].sort());
    expect(pruned.deleted).toContain(`deleted: ${gone}`);
    expect(await layersOnDisk()).toHaveLength(1);
    expect((await listImages(store, [])).map((image) => image.references)).toEqual([[`${registry.addr}/team/app:v1`, `${registry.addr}/team/copy:v1`]]);
  });

  it('garbage collection finishes a crashed deletion and leftovers at startup, and never takes a pinned layer', async () => {
    const image = fakeImage('gc');
    registry.addImage('team/app', 'v1', image);
    const pulled = await store.pull('team/app:v1');
    const layers = join(dataDir, 'layers');
    await mkdir(join(layers, '.gc-deadbeef-1', 'etc'), { recursive: true });
    await mkdir(join(layers, '.tmp-abc-XYZ'), { recursive: true });
    await mkdir(join(layers, 'f'.repeat(64)), { recursive: true });
    await mkdir(join(layers, 'e'.repeat(64)), { recursive: true });
    await writeFile(join(dataDir, 'blobs', 'sha256', `${'a'.repeat(64)}.1.1.tmp`), 'partial');
    store.pins.add([`layer:${'e'.repeat(64)}`]);
    const collected = await collectGarbage(store, [], { startup: true });
    expect(collected.deleted).toEqual([`layer sha256:${'f'.repeat(64)}`]);
    expect((await readdir(layers)).sort()).toEqual([...pulled.layerDirs.map((dir) => dir.slice(layers.length + 1)), 'e'.repeat(64)].sort());
    expect(existsSync(join(dataDir, 'blobs', 'sha256', `${'a'.repeat(64)}.1.1.tmp`))).toBe(false);
    expect(await store.getLocal('team/app:v1')).toEqual(pulled);
  });

  it('image ops answer list, pull, remove, prune and refuse a load without data', async () => {
    const image = fakeImage('ops');
    registry.addImage('team/app', 'v1', image);
    const ops = createImageOps({ store, imagesInUse: async () => [] });
    const pulled = await ops({ op: { $case: 'pull', value: { reference: 'team/app:v1' } } }, undefined);
    expect(pulled.images).toEqual([expect.objectContaining({ digest: image.manifest.digest, references: [`${registry.addr}/team/app:v1`] })]);
    expect((await ops({ op: { $case: 'list', value: {} } }, undefined)).images).toHaveLength(1);
    const removed = await ops({ op: { $case: 'remove', value: { reference: 'team/app:v1', force: false } } }, undefined);
    expect(removed.deleted).toContain(`deleted: ${image.manifest.digest}`);
    expect((await ops({ op: { $case: 'prune', value: { all: true } } }, undefined)).deleted).toEqual([]);
    await expect(ops({ op: { $case: 'load', value: {} } }, undefined)).rejects.toThrow('cannot load image archive: no archive data was sent');
  });
});

describe('pull falls back to the local image', () => {
  it('a tag the registry no longer serves runs from the stored image; a digest mismatch never does', async () => {
    const image = fakeImage('local');
    registry.addImage('team/app', 'v1', image);
    const pulled = await store.pull('team/app:v1');
    registry.manifests.delete('team/app:v1');
    expect(await store.pull('team/app:v1')).toEqual(pulled);
    await expect(store.pull('team/other:v1')).rejects.toMatchObject({ code: 'not_found' });
    const changed = fakeImage('changed');
    registry.addImage('team/app', 'v1', { manifest: changed.manifest, config: changed.config, layer: { ...changed.layer, bytes: Buffer.from('corrupt') } });
    await expect(store.pull('team/app:v1')).rejects.toMatchObject({ code: 'digest_mismatch' });
  });
});

describe('pinned pulls', () => {
  it('a pull of name:tag@digest lists the image under its tag', async () => {
    const image = fakeImage('pinned');
    registry.addImage('team/app', 'v1', image);
    await store.pull(`team/app:v1@${image.manifest.digest}`);
    expect(await listImages(store, [`team/app:v1@${image.manifest.digest}`])).toEqual([
      expect.objectContaining({ references: [`${registry.addr}/team/app:v1`], digest: image.manifest.digest, containers: 1 }),
    ]);
  });
});

describe('automatic image GC by disk use', () => {
  it('above the high-water mark removes unused images oldest first until under the low mark; below it does nothing', async () => {
    for (const name of ['old', 'mid', 'new']) {
      registry.addImage(`team/${name}`, 'v1', fakeImage(name));
      await store.pull(`team/${name}:v1`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    // A fake disk (test only): 70% plus 5% per image on it.
    const disk = async () => ({ usedBytes: 70 + 5 * (await listImages(store, [])).length, totalBytes: 100 });
    expect(await collectByDiskUsage(store, [], disk, { highPercent: 90, lowPercent: 75 })).toEqual({ deleted: [], reclaimedBytes: 0 });
    const removal = await collectByDiskUsage(store, ['team/old:v1'], disk, { highPercent: 80, lowPercent: 75 });
    expect(removal.deleted.filter((line) => line.startsWith('deleted:'))).toHaveLength(2);
    expect((await listImages(store, [])).map((image) => image.references[0])).toEqual([`${registry.addr}/team/old:v1`]);
  });
});
