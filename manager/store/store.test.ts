import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Service } from '../../proto/skiff/v1/objects.js';
import { LocalBackend, SNAPSHOT_INTERVAL_ENTRIES } from './local-backend.js';
import { WalCorruptionError } from '../raft/storage/wal.js';
import { newObjectId, Store } from './store.js';
import { StoreError } from './errors.js';
import { toStoreObject } from './objects.js';
import { StoreTables, type StoreCommit } from './tables.js';
import { StoreActionKind } from '../../proto/skiff/v1/store.js';

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-store-'));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function service(name: string, replicas = 1): Service {
  return {
    meta: { id: newObjectId(), version: 0, createdAtMs: 0, updatedAtMs: 0 },
    spec: {
      name,
      labels: {},
      taskTemplate: undefined,
      mode: { $case: 'replicated', value: { replicas } },
      updateConfig: undefined,
      rollbackConfig: undefined,
      endpoint: undefined,
      deployStrategy: '',
      rebalance: '',
      bluegreenHoldMs: 0,
      canaryReplicas: 0,
    },
    previousSpec: undefined,
    updateStatus: undefined,
    endpoint: undefined,
    activeColor: '',
    specVersion: 1,
    rebalanceRequestedAtMs: 0,
  };
}

async function openStore(dir: string, clock = () => 1_000): Promise<Store> {
  const store = new Store(new LocalBackend(dir), clock);
  await store.start();
  return store;
}

function replicasOf(value: Service | undefined): number | undefined {
  return value?.spec?.mode?.$case === 'replicated' ? value.spec.mode.value.replicas : undefined;
}

describe('store', () => {
  it('store assigns the commit index as version and keeps createdAt across updates', async () => {
    let now = 5_000;
    const store = await openStore(tempDir(), () => now);
    const web = service('web');
    const first = await store.update((tx) => tx.create('service', web));
    expect(first?.version).toBe(1);
    const stored = store.reader.get('service', web.meta!.id)!;
    expect(stored.meta).toEqual({ id: web.meta!.id, version: 1, createdAtMs: 5_000, updatedAtMs: 5_000 });
    now = 9_000;
    await store.update((tx) => tx.update('service', { ...stored, specVersion: 2 }));
    expect(store.reader.get('service', web.meta!.id)!.meta).toEqual({ id: web.meta!.id, version: 2, createdAtMs: 5_000, updatedAtMs: 9_000 });
    await store.close();
  });

  it('store refuses a stale version and leaves the object unchanged', async () => {
    const store = await openStore(tempDir());
    const web = service('web', 3);
    await store.update((tx) => tx.create('service', web));
    const read = store.reader.get('service', web.meta!.id)!;
    await store.update((tx) => tx.update('service', { ...read, specVersion: 7 }));
    await expect(store.update((tx) => tx.update('service', { ...read, specVersion: 9 }))).rejects.toMatchObject({ code: 'version_conflict' });
    expect(store.reader.get('service', web.meta!.id)!.specVersion).toBe(7);
  });

  it('store tables refuse, not skip, an action this build cannot read (a newer skiffd wrote it)', () => {
    const tables = new StoreTables();
    const web = toStoreObject({ kind: 'service', object: service('web') });
    tables.apply(1, { actions: [{ kind: StoreActionKind.STORE_ACTION_KIND_CREATE, object: web }], proposedAtMs: 1 });
    // A skip (a StoreError, as for a conflict) would move this manager past the entry with its
    // state behind every manager that could read it; a plain Error stops the Raft driver instead.
    const unknownKind = (): unknown => tables.apply(2, { actions: [{ kind: 7 as StoreActionKind, object: web }], proposedAtMs: 2 });
    expect(unknownKind).toThrow(/unknown store action kind 7.*upgrade this manager/);
    expect(unknownKind).not.toThrow(StoreError);
    const noObject = (): unknown => tables.apply(2, { actions: [{ kind: 7 as StoreActionKind, object: undefined }], proposedAtMs: 2 });
    expect(noObject).toThrow(/no object this skiffd can read.*upgrade this manager/);
    expect(noObject).not.toThrow(StoreError);
    expect(tables.version).toBe(1);
    expect(tables.list('service')).toHaveLength(1);
  });

  it('store refuses a duplicate name and an atomic transaction applies nothing on conflict', async () => {
    const store = await openStore(tempDir());
    await store.update((tx) => tx.create('service', service('web')));
    const other = service('api');
    await expect(
      store.update((tx) => {
        tx.create('service', other);
        tx.create('service', service('web'));
      }),
    ).rejects.toMatchObject({ code: 'name_conflict' });
    expect(store.reader.get('service', other.meta!.id)).toBeUndefined();
    expect(store.reader.list('service').map((s) => s.spec?.name)).toEqual(['web']);
  });

  it('store notifies subscribers of each commit in order with the changed objects', async () => {
    const store = await openStore(tempDir());
    const commits: StoreCommit[] = [];
    store.subscribe((commit) => commits.push(commit));
    const web = service('web');
    await store.update((tx) => tx.create('service', web));
    await store.update((tx) => tx.remove('service', store.reader.get('service', web.meta!.id)!));
    expect(commits.map((c) => [c.version, c.events.map((e) => `${e.action}:${e.kind}`)])).toEqual([
      [1, ['create:service']],
      [2, ['remove:service']],
    ]);
    expect(store.reader.findByName('service', 'web')).toBeUndefined();
  });

  it('store recovers every acknowledged write after a restart, including past a snapshot', async () => {
    const dir = tempDir();
    const store = await openStore(dir);
    const ids: string[] = [];
    const total = SNAPSHOT_INTERVAL_ENTRIES + 25;
    await Promise.all(
      Array.from({ length: total }, (_, i) => {
        const created = service(`svc-${i}`, i);
        ids.push(created.meta!.id);
        return store.update((tx) => tx.create('service', created));
      }),
    );
    expect(store.reader.version).toBe(total);
    await store.close();
    expect(readdirSync(join(dir, 'snap')).length).toBeGreaterThan(0);
    const reopened = await openStore(dir);
    expect(reopened.reader.version).toBe(total);
    expect(reopened.reader.list('service')).toHaveLength(total);
    expect(replicasOf(reopened.reader.findByName('service', `svc-${total - 1}`))).toBe(total - 1);
    await reopened.close();
  });

  it('store persists concurrent writes as consecutive records in commit order', async () => {
    const dir = tempDir();
    const store = await openStore(dir);
    await Promise.all(Array.from({ length: 50 }, (_, i) => store.update((tx) => tx.create('service', service(`g${i}`)))));
    await store.close();
    const segment = readdirSync(join(dir, 'wal'))[0]!;
    expect(statSync(join(dir, 'wal', segment)).size).toBeGreaterThan(50 * 16);
    const reopened = await openStore(dir);
    expect(reopened.reader.version).toBe(50);
    expect(reopened.reader.list('service')).toHaveLength(50);
    await reopened.close();
  });

  it('store truncates a torn tail and keeps every complete record', async () => {
    const dir = tempDir();
    const store = await openStore(dir);
    await store.update((tx) => tx.create('service', service('a')));
    await store.update((tx) => tx.create('service', service('b')));
    await store.close();
    const segment = join(dir, 'wal', readdirSync(join(dir, 'wal'))[0]!);
    const before = statSync(segment).size;
    appendFileSync(segment, Buffer.from([40, 0, 0, 0, 1, 2, 3]));
    const reopened = await openStore(dir);
    expect(reopened.reader.list('service').map((s) => s.spec?.name).sort()).toEqual(['a', 'b']);
    expect(statSync(segment).size).toBe(before);
    await reopened.update((tx) => tx.create('service', service('c')));
    await reopened.close();
    const again = await openStore(dir);
    expect(again.reader.version).toBe(3);
    await again.close();
  });

  it('store refuses to start on corruption in the middle of the log, naming file and offset', async () => {
    const dir = tempDir();
    const store = await openStore(dir);
    await store.update((tx) => tx.create('service', service('a')));
    await store.update((tx) => tx.create('service', service('b')));
    await store.close();
    const segment = join(dir, 'wal', readdirSync(join(dir, 'wal'))[0]!);
    const data = readFileSync(segment);
    data[20] = data[20]! ^ 0xff;
    writeFileSync(segment, data);
    const error = await openStore(dir).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(WalCorruptionError);
    expect((error as WalCorruptionError).message).toContain(segment);
    expect((error as WalCorruptionError).offset).toBe(0);
    expect(readFileSync(segment)).toEqual(data);
  });

  it('store refuses a directory of another format version', async () => {
    const dir = tempDir();
    await (await openStore(dir)).close();
    writeFileSync(join(dir, 'FORMAT'), 'skiff-store 99\n');
    await expect(openStore(dir)).rejects.toThrow(/format "skiff-store 99"/);
  });
});

describe('newObjectId', () => {
  it('makes distinct 25-character ids of [a-z0-9], across pool refills', () => {
    const ids = Array.from({ length: 5_000 }, () => newObjectId());
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.every((id) => /^[a-z0-9]{25}$/.test(id))).toBe(true);
  });
});
