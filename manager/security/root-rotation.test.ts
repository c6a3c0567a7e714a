import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../../common/log.js';
import type { Cluster } from '../../proto/skiff/v1/objects.js';
import { NodeState } from '../../proto/skiff/v1/types.js';
import { ControllerRunner } from '../orchestrator/controller-loop.js';
import { fakeNode, tempStore, type TempStore } from '../orchestrator/testing/fake-objects.js';
import type { Store } from '../store/store.js';
import { rootRotationController } from './root-rotation.js';

const WAIT = { timeout: 3_000, interval: 10 };
const NEW = '-----NEW ROOT-----\n';
const OLD = '-----OLD ROOT-----\n';

function rotatingCluster(): Cluster {
  return {
    meta: { id: 'c1', version: 0, createdAtMs: 0, updatedAtMs: 0 },
    spec: undefined,
    rootCaCertPem: `${NEW}${OLD}`,
    rootCa: { caCertPem: NEW, caKeyPem: 'key', caDigest: 'new-digest', previousCaCertPem: OLD, crossSignedCaCertPem: '-----CROSS-----\n' },
    joinTokens: undefined,
    deniedNodes: [],
    unlockKey: '',
  };
}

let temp: TempStore;
let store: Store;
beforeEach(async () => {
  temp = await tempStore();
  store = temp.store;
});
afterEach(() => temp.close());

const cluster = (): Cluster => store.reader.list('cluster')[0]!;
/** One reconcile of the controller, as its runner would do it; resolves with the writes it made. */
const reconcileOnce = async (): Promise<number> => {
  let writes = 0;
  await store.update((transaction, reader) => {
    rootRotationController.reconcile(new Set(['cluster']), transaction, reader, 0, new Set());
    writes = transaction.actions.length;
  });
  return writes;
};

describe('root rotation controller', () => {
  it('root rotation controller finishes only once every node holds a certificate from the new root', async () => {
    await store.update((tx) => {
      tx.create('cluster', rotatingCluster());
      tx.create('node', fakeNode('a', { certCaDigest: 'new-digest' }));
      tx.create('node', fakeNode('b', { certCaDigest: 'old-digest' }));
    });
    expect(await reconcileOnce()).toBe(0);
    expect(cluster().rootCaCertPem).toBe(`${NEW}${OLD}`);
    const b = store.reader.get('node', 'b')!;
    await store.update((tx) => tx.update('node', { ...b, certCaDigest: 'new-digest' }));
    expect(await reconcileOnce()).toBe(1);
    expect(cluster().rootCaCertPem).toBe(NEW);
    expect(cluster().rootCa).toMatchObject({ caCertPem: NEW, caKeyPem: 'key', caDigest: 'new-digest', previousCaCertPem: '', crossSignedCaCertPem: '' });
    // Finished: nothing more to do.
    expect(await reconcileOnce()).toBe(0);
  });

  it('root rotation controller does nothing without a rotation, whatever the nodes hold', async () => {
    await store.update((tx) => {
      tx.create('cluster', { ...rotatingCluster(), rootCaCertPem: NEW, rootCa: { ...rotatingCluster().rootCa!, previousCaCertPem: '', crossSignedCaCertPem: '' } });
      tx.create('node', fakeNode('a', { certCaDigest: '' }));
    });
    const before = cluster().meta?.version;
    expect(await reconcileOnce()).toBe(0);
    expect(cluster().meta?.version).toBe(before);
  });

  it('root rotation controller finishes once a node that never renewed is removed', async () => {
    await store.update((tx) => {
      tx.create('cluster', rotatingCluster());
      tx.create('node', fakeNode('a', { certCaDigest: 'new-digest' }));
      tx.create('node', fakeNode('gone', { certCaDigest: 'old-digest', state: NodeState.NODE_STATE_DOWN }));
    });
    const runner = new ControllerRunner(rootRotationController, store, Date.now, silentLogger);
    runner.start();
    try {
      // A down node keeps the rotation open: its first run (on start) leaves the cluster as it is.
      await vi.waitFor(() => expect(store.reader.list('node')).toHaveLength(2), WAIT);
      expect(await reconcileOnce()).toBe(0);
      await store.update((tx) => tx.remove('node', store.reader.get('node', 'gone')!));
      await vi.waitFor(() => expect(cluster().rootCaCertPem).toBe(NEW), WAIT);
      expect(cluster().rootCa?.previousCaCertPem).toBe('');
    } finally {
      runner.stop();
    }
  });

  it('root rotation controller writes with the cluster version it read: a change meanwhile conflicts', async () => {
    await store.update((tx) => {
      tx.create('cluster', rotatingCluster());
      tx.create('node', fakeNode('a', { certCaDigest: 'new-digest' }));
    });
    const stale = cluster();
    await store.update((tx) => tx.update('cluster', { ...stale, deniedNodes: [{ nodeId: 'x', removedAtMs: 1, expiresAtMs: 2 }] }));
    const staleReader = { ...store.reader, list: ((kind: string) => (kind === 'cluster' ? [stale] : store.reader.list('node'))) as typeof store.reader.list };
    await expect(store.update((transaction) => rootRotationController.reconcile(new Set(['cluster']), transaction, staleReader, 0, new Set()))).rejects.toThrow(/version|changed/);
    expect(cluster().rootCa?.previousCaCertPem).toBe(OLD);
  });
});
