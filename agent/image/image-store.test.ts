import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { freePort } from '../../deploy/registry/free-port.js';
import { digestOf, FakeRegistry, fakeImage, fakeIndex } from './fake-registry.js';
import { createImageStore, type ImageStoreExtras } from './image-store.js';
import { selectPlatform } from './manifest.js';
import { ImageError, type ImageStore } from './types.js';

let registry: FakeRegistry;
let dataDir: string;
beforeEach(async () => {
  registry = new FakeRegistry();
  await registry.start();
  dataDir = await mkdtemp(join(tmpdir(), 'skiff-image-store-unit-'));
});
afterEach(async () => {
  await registry.stop();
  await rm(dataDir, { recursive: true, force: true });
});

function store(extras: ImageStoreExtras = {}): ImageStore {
  return createImageStore({ dataDir, defaultRegistry: registry.addr, insecureRegistries: [registry.addr], ...extras });
}
async function failure(promise: Promise<unknown>): Promise<ImageError> {
  const caught = await promise.then(
    () => undefined,
    (error: unknown) => error,
  );
  expect(caught).toBeInstanceOf(ImageError);
  return caught as ImageError;
}

describe('image store (fake registry)', () => {
  it('pulls a tag: records the manifest digest, parses the run config, unpacks the layer', async () => {
    const image = fakeImage('hi', { Entrypoint: ['/bin/app'], Cmd: ['--serve'], User: 'nobody' });
    registry.addImage('team/app', 'v1', image);
    const pulled = await store().pull('team/app:v1');
    expect(pulled.digest).toBe(image.manifest.digest);
    expect(pulled.config).toEqual({ entrypoint: ['/bin/app'], cmd: ['--serve'], env: ['A=1'], workingDir: '', user: 'nobody' });
    expect(await readFile(join(pulled.layerDirs[0] ?? '', 'hello'), 'utf8')).toBe('hi');
    expect(await readdir(join(dataDir, 'blobs', 'sha256'))).toEqual(expect.arrayContaining([image.layer.digest.slice(7), image.config.digest.slice(7)]));
  });

  it('a corrupted layer blob is digest_mismatch and leaves no blob or layer behind', async () => {
    const image = fakeImage('good');
    registry.addImage('team/app', 'v1', image);
    const corrupted = Buffer.from(image.layer.bytes);
    corrupted[corrupted.length - 1] = (corrupted[corrupted.length - 1] ?? 0) ^ 0xff;
    registry.blobs.set(image.layer.digest, { ...image.layer, bytes: corrupted });
    const error = await failure(store().pull('team/app:v1'));
    expect(error.code).toBe('digest_mismatch');
    expect(error.message).toContain(`cannot pull image "team/app:v1": blob ${image.layer.digest} from registry ${registry.addr} has digest ${digestOf(corrupted)}`);
    expect(await readdir(join(dataDir, 'blobs', 'sha256'))).not.toContain(image.layer.digest.slice(7));
    expect(await readdir(join(dataDir, 'layers')).catch(() => [])).toEqual([]);
  });

  it('a manifest whose bytes do not match the digest asked for is digest_mismatch', async () => {
    const image = fakeImage('x');
    const wrong = `sha256:${'b'.repeat(64)}`;
    registry.manifests.set(`team/app:${wrong}`, image.manifest);
    const error = await failure(store().pull(`team/app@${wrong}`));
    expect(error.code).toBe('digest_mismatch');
  });

  it('404 on the manifest is not_found naming the registry', async () => {
    const error = await failure(store().pull('team/missing:v1'));
    expect(error.code).toBe('not_found');
    expect(error.message).toBe(`cannot pull image "team/missing:v1": manifest unknown to registry ${registry.addr}`);
  });

  it('answers a Bearer challenge with a token fetched with basic credentials', async () => {
    registry.addImage('team/app', 'v1', fakeImage('secret'));
    const basic = `Basic ${Buffer.from('alice:pw').toString('base64')}`;
    registry.intercept = (request, response) => {
      if (request.url?.startsWith('/token')) {
        const url = new URL(request.url, 'http://x');
        const ok = request.headers.authorization === basic && url.searchParams.get('scope') === 'repository:team/app:pull' && url.searchParams.get('service') === 'fake';
        response.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' }).end(ok ? '{"token":"t0k"}' : '{}');
        return true;
      }
      if (request.headers.authorization === 'Bearer t0k') return false;
      response
        .writeHead(401, { 'www-authenticate': `Bearer realm="http://${registry.addr}/token",service="fake",scope="repository:team/app:pull"` })
        .end();
      return true;
    };
    const pulled = await store({ credentials: { [registry.addr]: { username: 'alice', password: 'pw' } } }).pull('team/app:v1');
    expect(pulled.layerDirs).toHaveLength(1);
    const error = await failure(createImageStore({ dataDir: join(dataDir, 'other'), defaultRegistry: registry.addr, insecureRegistries: [registry.addr] }).pull('team/app:v1'));
    expect(error.code).toBe('unauthorized');
  });

  it('answers a Basic challenge only when credentials are configured', async () => {
    registry.addImage('team/app', 'v1', fakeImage('b'));
    const basic = `Basic ${Buffer.from('bob:pw').toString('base64')}`;
    registry.intercept = (request, response) => {
      if (request.headers.authorization === basic) return false;
      response.writeHead(401, { 'www-authenticate': 'Basic realm="fake"' }).end();
      return true;
    };
    const error = await failure(store().pull('team/app:v1'));
    expect(error).toMatchObject({ code: 'unauthorized', message: expect.stringContaining('requires credentials') });
    await store({ credentials: { [registry.addr]: { username: 'bob', password: 'pw' } } }).pull('team/app:v1');
  });

  it('chooses the matching platform from an index, else platform_not_found', async () => {
    const amd = fakeImage('amd64');
    const arm = fakeImage('arm64');
    registry.addImage('team/app', 'amd-only', amd);
    registry.addImage('team/app', 'arm-only', arm);
    const index = fakeIndex([
      { manifest: arm.manifest, os: 'linux', architecture: 'arm64' },
      { manifest: amd.manifest, os: 'linux', architecture: 'amd64' },
    ]);
    registry.manifests.set('team/app:multi', index);
    const pulled = await store({ platform: { os: 'linux', architecture: 'amd64' } }).pull('team/app:multi');
    expect(pulled.digest).toBe(index.digest);
    expect(await readFile(join(pulled.layerDirs[0] ?? '', 'hello'), 'utf8')).toBe('amd64');
    const error = await failure(store({ platform: { os: 'linux', architecture: 's390x' } }).pull('team/app:multi'));
    expect(error.code).toBe('platform_not_found');
    expect(error.message).toContain('no manifest for linux/s390x (index has: linux/arm64, linux/amd64)');
    expect(() => selectPlatform([], { os: 'linux', architecture: 'amd64' }, '"x"')).toThrow(/index has: nothing/);
  });

  it('retries 5xx answers and then succeeds', async () => {
    registry.addImage('team/app', 'v1', fakeImage('retry'));
    let failures = 2;
    registry.intercept = (_request, response) => {
      if (failures === 0) return false;
      failures -= 1;
      response.writeHead(503).end();
      return true;
    };
    await store().pull('team/app:v1');
    expect(failures).toBe(0);
  });

  it('a refused connection is registry_unreachable naming the registry', async () => {
    const closed = `127.0.0.1:${await freePort()}`;
    const error = await failure(createImageStore({ dataDir, defaultRegistry: closed, insecureRegistries: [closed] }).pull('team/app:v1'));
    expect(error.code).toBe('registry_unreachable');
    expect(error.message).toContain(`registry ${closed} is unreachable (ECONNREFUSED)`);
  });

  it('getLocal finds a pulled image from a new store without the registry', async () => {
    const image = fakeImage('local');
    registry.addImage('team/app', 'v1', image);
    const pulled = await store().pull('team/app:v1');
    await registry.stop();
    expect(await store().getLocal('team/app:v1')).toEqual(pulled);
    expect(await store().pull(`team/app@${image.manifest.digest}`)).toMatchObject({ digest: pulled.digest, layerDirs: pulled.layerDirs });
  });
});
