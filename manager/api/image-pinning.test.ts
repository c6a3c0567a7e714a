import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeRegistry, fakeImage } from '../../agent/image/fake-registry.js';
import type { Service } from '../../proto/skiff/v1/objects.js';
import { freePort } from '../../deploy/registry/free-port.js';
import { ControlApi, FakeCluster, fakeServiceSpec } from './testing/fake-cluster.js';

let registry: FakeRegistry;
let cluster: FakeCluster | undefined;
beforeEach(async () => {
  registry = new FakeRegistry();
  await registry.start();
});
afterEach(async () => {
  await cluster?.close();
  cluster = undefined;
  await registry.stop();
});

async function adminOf(defaultRegistry: string): Promise<ControlApi> {
  cluster = await FakeCluster.start({ registries: { defaultRegistry, insecureRegistries: [defaultRegistry] } });
  return cluster.control();
}

const imageOf = (service: Service | undefined): string | undefined => service?.spec?.taskTemplate?.container?.image;

describe('image pinning at service create and update', () => {
  it('pins the tag to the registry digest unless noResolveImage; an update to a new tag pins again', async () => {
    const v1 = fakeImage('v1');
    const v2 = fakeImage('v2');
    registry.addImage('demo/web', 'v1', v1);
    registry.addImage('demo/web', 'v2', v2);
    const admin = await adminOf(registry.addr);
    const pinned = await admin.call((c) => c.createService, { noResolveImage: false, spec: fakeServiceSpec('web', 1, { image: 'demo/web:v1' }) });
    expect(imageOf(pinned.service)).toBe(`demo/web:v1@${v1.manifest.digest}`);
    const kept = await admin.call((c) => c.createService, { noResolveImage: true, spec: fakeServiceSpec('raw', 1, { image: 'demo/web:v1' }) });
    expect(imageOf(kept.service)).toBe('demo/web:v1');
    const spec = fakeServiceSpec('web', 1, { image: 'demo/web:v2' });
    const updated = await admin.call((c) => c.updateService, { noResolveImage: false, service: 'web', version: pinned.service!.meta!.version, spec });
    expect(imageOf(updated.service)).toBe(`demo/web:v2@${v2.manifest.digest}`);
  });

  it('keeps the tag when the registry does not know it or cannot be reached, without a long wait', async () => {
    const admin = await adminOf(registry.addr);
    const unknown = await admin.call((c) => c.createService, { noResolveImage: false, spec: fakeServiceSpec('nope', 1, { image: 'demo/nope:v9' }) });
    expect(imageOf(unknown.service)).toBe('demo/nope:v9');
    await cluster?.close();
    const closed = `127.0.0.1:${await freePort()}`;
    const down = await adminOf(closed);
    const started = Date.now();
    const created = await down.call((c) => c.createService, { noResolveImage: false, spec: fakeServiceSpec('web', 1, { image: 'demo/web:v1' }) });
    expect(imageOf(created.service)).toBe('demo/web:v1');
    expect(Date.now() - started).toBeLessThan(2_500);
  });
});
