import { createServer, type Server } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { freePort } from '../../deploy/registry/free-port.js';
import { FakeRegistry, fakeImage, fakeIndex } from './fake-registry.js';
import { resolveImageTag } from './tag-resolver.js';

let registry: FakeRegistry;
beforeEach(async () => {
  registry = new FakeRegistry();
  await registry.start();
});
afterEach(async () => {
  await registry.stop();
});

const options = () => ({ defaultRegistry: registry.addr, insecureRegistries: [registry.addr] });

describe('tag resolver', () => {
  it('pins a tag to the manifest digest, keeping the reference as written', async () => {
    const image = fakeImage('pin');
    registry.addImage('demo/web', 'v1', image);
    expect(await resolveImageTag('demo/web:v1', options())).toEqual({ kind: 'pinned', image: `demo/web:v1@${image.manifest.digest}`, digest: image.manifest.digest });
    const accept = registry.requests.at(-1);
    expect(accept?.path).toBe('/v2/demo/web/manifests/v1');
  });

  it('keeps the index digest of a multi-platform image, so each node picks its platform', async () => {
    const amd = fakeImage('amd');
    const index = fakeIndex([{ manifest: amd.manifest, os: 'linux', architecture: 'amd64' }]);
    registry.manifests.set('demo/multi:1', index);
    expect(await resolveImageTag('demo/multi:1', options())).toMatchObject({ kind: 'pinned', digest: index.digest });
  });

  it('leaves a digest reference alone without asking the registry', async () => {
    const pinned = `demo/web:v1@sha256:${'c'.repeat(64)}`;
    expect(await resolveImageTag(pinned, options())).toEqual({ kind: 'unchanged', image: pinned, reason: 'the reference has a digest already' });
    expect(registry.requests).toEqual([]);
  });

  it('an unknown tag or a refused connection leaves the tag unchanged with the reason', async () => {
    expect(await resolveImageTag('demo/nope:v9', options())).toMatchObject({ kind: 'unchanged', image: 'demo/nope:v9', reason: expect.stringContaining('manifest unknown') });
    const closed = `127.0.0.1:${await freePort()}`;
    const started = Date.now();
    const refused = await resolveImageTag('demo/web:v1', { defaultRegistry: closed, insecureRegistries: [closed] });
    expect(refused).toMatchObject({ kind: 'unchanged', reason: expect.stringContaining('ECONNREFUSED') });
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('a registry that never answers costs at most the deadline', async () => {
    const silent: Server = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const address = silent.address();
    const addr = `127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`;
    try {
      const started = Date.now();
      const result = await resolveImageTag('demo/web:v1', { defaultRegistry: addr, insecureRegistries: [addr], deadlineMs: 300 });
      expect(result).toEqual({ kind: 'unchanged', image: 'demo/web:v1', reason: `registry ${addr} did not answer within 300 ms` });
      expect(Date.now() - started).toBeLessThan(1_500);
    } finally {
      silent.close();
    }
  });
});
