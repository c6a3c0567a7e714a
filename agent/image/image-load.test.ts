import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeTar, type TarEntry } from '../../deploy/images/tar-writer.js';
import { digestOf, fakeImage, fakeIndex } from './fake-registry.js';
import { archiveAllowance, loadArchive } from './image-load.js';
import { createImageStore, type LocalImageStore } from './image-store.js';
import { ImageError } from './types.js';

let dataDir: string;
let store: LocalImageStore;
beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'skiff-image-load-unit-'));
  store = createImageStore({ dataDir, defaultRegistry: 'registry.test:5000', insecureRegistries: [], platform: { os: 'linux', architecture: 'amd64' } });
});
afterEach(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

const file = (path: string, content: Buffer | string): TarEntry => ({ kind: 'file', path, mode: 0o644, content: Buffer.from(content) });

/** Chunks of `bytes`, small enough that every entry spans several of them. */
async function* chunks(bytes: Buffer, size = 1000): AsyncIterable<Uint8Array> {
  for (let offset = 0; offset < bytes.length; offset += size) yield bytes.subarray(offset, offset + size);
}

/** A docker-save archive (legacy layout: <id>/layer.tar, <config hex>.json) of one image. */
function dockerSave(content: string, repoTags: string[], corruptLayer = false): { archive: Buffer; configDigest: string } {
  const layer = writeTar([file('hello', content)], 0);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['/hello'] }, rootfs: { type: 'layers', diff_ids: [digestOf(layer)] } }));
  const configHex = digestOf(config).slice(7);
  const shipped = corruptLayer ? writeTar([file('hello', `${content}?`)], 0) : layer;
  const manifest = JSON.stringify([{ Config: `${configHex}.json`, RepoTags: repoTags, Layers: ['abc123/layer.tar'] }]);
  const archive = writeTar([file(`${configHex}.json`, config), { kind: 'directory', path: 'abc123', mode: 0o755 }, file('abc123/layer.tar', shipped), file('manifest.json', manifest)], 0);
  return { archive, configDigest: digestOf(config) };
}

async function failure(promise: Promise<unknown>): Promise<ImageError> {
  const caught = await promise.then(() => undefined, (error: unknown) => error);
  expect(caught).toBeInstanceOf(ImageError);
  return caught as ImageError;
}

describe('image load', () => {
  it('loads a docker-save archive streamed in chunks: tags from RepoTags, layer unpacked, config kept', async () => {
    const { archive, configDigest } = dockerSave('from docker', ['team/app:v1', 'team/app:latest']);
    const loaded = await loadArchive(store, chunks(archive));
    expect(loaded).toHaveLength(1);
    expect(loaded[0]?.references).toEqual(['registry.test:5000/team/app:v1', 'registry.test:5000/team/app:latest']);
    const image = await store.getLocal('team/app:v1');
    expect(image?.digest).toBe(loaded[0]?.digest);
    expect(image?.config.cmd).toEqual(['/hello']);
    expect(await readFile(join(image?.layerDirs[0] ?? '', 'hello'), 'utf8')).toBe('from docker');
    expect(await readdir(join(dataDir, 'blobs', 'sha256'))).toContain(configDigest.slice(7));
    expect(await readdir(join(dataDir, 'staging'))).toEqual([]);
  });

  it('loads a gzip-compressed OCI image-layout archive, picking the platform from a nested index', async () => {
    const amd = fakeImage('amd64 bits');
    const arm = fakeImage('arm64 bits');
    const index = fakeIndex([
      { manifest: arm.manifest, os: 'linux', architecture: 'arm64' },
      { manifest: amd.manifest, os: 'linux', architecture: 'amd64' },
    ]);
    const blobs = [amd.layer, amd.config, amd.manifest, arm.layer, arm.config, arm.manifest, index].map((blob) => file(`blobs/sha256/${blob.digest.slice(7)}`, blob.bytes));
    const top = {
      schemaVersion: 2,
      manifests: [{ mediaType: index.mediaType, digest: index.digest, size: index.bytes.length, annotations: { 'io.containerd.image.name': 'team/multi:1', 'org.opencontainers.image.ref.name': '1' } }],
    };
    const archive = gzipSync(writeTar([file('oci-layout', '{"imageLayoutVersion":"1.0.0"}'), file('index.json', JSON.stringify(top)), ...blobs], 0));
    const loaded = await loadArchive(store, chunks(archive, 333));
    expect(loaded).toEqual([{ digest: index.digest, references: ['registry.test:5000/team/multi:1'] }]);
    const image = await store.getLocal('team/multi:1');
    expect(await readFile(join(image?.layerDirs[0] ?? '', 'hello'), 'utf8')).toBe('amd64 bits');
    expect(await store.getLocal(`team/multi@${index.digest}`)).toEqual({ ...image, reference: `registry.test:5000/team/multi@${index.digest}` });
  });

  it('a blob whose bytes do not match its name is digest_mismatch and nothing is recorded', async () => {
    const image = fakeImage('good');
    const top = { schemaVersion: 2, manifests: [{ mediaType: image.manifest.mediaType, digest: image.manifest.digest, size: image.manifest.bytes.length, annotations: { 'org.opencontainers.image.ref.name': 'team/app:v1' } }] };
    const entries = [image.config, image.manifest].map((blob) => file(`blobs/sha256/${blob.digest.slice(7)}`, blob.bytes));
    entries.push(file(`blobs/sha256/${image.layer.digest.slice(7)}`, gzipSync(writeTar([file('hello', 'evil')], 0))));
    const error = await failure(loadArchive(store, chunks(writeTar([file('index.json', JSON.stringify(top)), ...entries], 0))));
    expect(error.code).toBe('digest_mismatch');
    expect(error.message).toMatch(new RegExp(`^cannot load image archive: layer ${image.layer.digest} has digest sha256:[a-f0-9]{64}, expected ${image.layer.digest}$`));
    expect(await store.getLocal('team/app:v1')).toBeUndefined();
  });

  it('a docker-save layer that does not match the config diff id is refused', async () => {
    const { archive } = dockerSave('x', ['team/app:v1'], true);
    const error = await failure(loadArchive(store, chunks(archive)));
    expect(error.message).toContain('diff');
    expect(await store.getLocal('team/app:v1')).toBeUndefined();
  });

  it('refuses what is not an image archive, naming the reason', async () => {
    expect((await failure(loadArchive(store, chunks(Buffer.from('not a tar at all, just text that goes on'.repeat(40)))))).code).toBe('invalid_archive');
    const empty = await failure(loadArchive(store, chunks(writeTar([file('README', 'hi')], 0))));
    expect(empty.message).toBe('cannot load image archive: it holds neither index.json (OCI image layout) nor manifest.json (docker save)');
    const missing = await failure(loadArchive(store, chunks(writeTar([file('manifest.json', '[{"Config":"c.json","RepoTags":[],"Layers":[]}]')], 0))));
    expect(missing.message).toBe('cannot load image archive: "c.json" is named but not in the archive');
  });

  it('an archive that unpacks to more than the node can spare is refused, nothing written or recorded', async () => {
    const { archive } = dockerSave('x'.repeat(5000), ['team/big:v1']);
    const before = await loadArchive(store, chunks(dockerSave('small', ['team/small:v1']).archive));
    const error = await failure(loadArchive(store, chunks(archive), 4096));
    expect(error.code).toBe('invalid_archive');
    expect(error.message).toMatch(/^cannot load image archive: it unpacks to more than the 4.1kB this node can spare \(5% of its image disk stays free\)$/);
    expect(await store.getLocal('team/big:v1')).toBeUndefined();
    expect(await readdir(join(dataDir, 'staging'))).toEqual([]);
    // What was there is untouched.
    expect((await store.getLocal('team/small:v1'))?.digest).toBe(before[0]?.digest);
    // The default allowance is the real free space of the store's disk, less the reserve.
    const allowance = await archiveAllowance(dataDir);
    expect(allowance).toBeGreaterThan(0);
    expect(allowance).toBeLessThan(Number.MAX_SAFE_INTEGER);
  });
});
