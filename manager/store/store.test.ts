import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Service, Task } from '../../proto/skiff/v1/objects.js';
import { TaskState } from '../../proto/skiff/v1/types.js';
import { fakeServiceSpec } from '../api/testing/fake-cluster.js';
import { fakeTask } from '../orchestrator/testing/fake-objects.js';
import { LocalBackend, SNAPSHOT_INTERVAL_ENTRIES } from './local-backend.js';
import { WalCorruptionError } from '../raft/storage/wal.js';
import { newObjectId, Store } from './store.js';
import { StoreError } from './errors.js';
import { toStoreObject } from './objects.js';
import { mergeAttachments, StoreTables, type StoreCommit } from './tables.js';
import { StoreActionKind, StoreTransaction } from '../../proto/skiff/v1/store.js';

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
    tables.apply(1, { actions: [{ kind: StoreActionKind.STORE_ACTION_KIND_CREATE, object: web, taskStatus: undefined }], proposedAtMs: 1 });
    // A skip (a StoreError, as for a conflict) would move this manager past the entry with its
    // state behind every manager that could read it; a plain Error stops the Raft driver instead.
    const unknownKind = (): unknown => tables.apply(2, { actions: [{ kind: 7 as StoreActionKind, object: web, taskStatus: undefined }], proposedAtMs: 2 });
    expect(unknownKind).toThrow(/unknown store action kind 7.*upgrade this manager/);
    expect(unknownKind).not.toThrow(StoreError);
    const noObject = (): unknown => tables.apply(2, { actions: [{ kind: 7 as StoreActionKind, object: undefined, taskStatus: undefined }], proposedAtMs: 2 });
    expect(noObject).toThrow(/no object this skiffd can read.*upgrade this manager/);
    expect(noObject).not.toThrow(StoreError);
    expect(tables.version).toBe(1);
    expect(tables.list('service')).toHaveLength(1);
  });

  it('store writes a task status change as the report alone and applies it to the stored task, surviving a restart', async () => {
    const dir = tempDir();
    const store = await openStore(dir);
    const template = fakeServiceSpec('web', 1).taskTemplate!;
    const spec = { ...template, container: { ...template.container!, env: [`BIG=${'x'.repeat(4096)}`] } };
    const overlay = { network: 'overlay1', addresses: ['10.0.1.5/24'] };
    const bridge = { network: 'bridge', addresses: ['172.18.0.2/16'] };
    await store.update((tx) => tx.create('task', { ...fakeTask(newObjectId(), { nodeId: 'n1', state: TaskState.TASK_STATE_ASSIGNED }), spec, networks: [overlay] }));
    const read = store.reader.list('task')[0]!;
    const running = { ...read.status!, state: TaskState.TASK_STATE_RUNNING, message: 'started', containerId: 'c1', pid: 42 };
    let written: StoreTransaction | undefined;
    await store.update((tx) => {
      tx.updateTaskStatus(read, running, [bridge]);
      written = { actions: tx.actions, proposedAtMs: 0 };
    });
    // The entry carries no task: 4 KiB of spec would otherwise be written again with every report.
    expect(written!.actions[0]!.object).toBeUndefined();
    expect(StoreTransaction.encode(written!).finish().length).toBeLessThan(200);
    const check = (task: Task | undefined): void => {
      expect(task?.status).toEqual(running);
      expect(task?.spec).toEqual(spec);
      expect(task?.nodeId).toBe('n1');
      expect(task?.networks).toEqual([overlay, bridge]);
      expect(task?.meta?.version).toBe(2);
    };
    check(store.reader.get('task', read.meta!.id));
    // A report from a stale read conflicts like an update and changes nothing.
    await expect(store.update((tx) => tx.updateTaskStatus(read, { ...running, state: TaskState.TASK_STATE_FAILED }, []))).rejects.toMatchObject({ code: 'version_conflict' });
    // A report for a task that is gone is refused, not applied to nothing.
    await expect(store.update((tx) => tx.updateTaskStatus({ ...read, meta: { ...read.meta!, id: 'gone' } }, running, []))).rejects.toMatchObject({ code: 'not_found' });
    await store.close();
    const reopened = await openStore(dir);
    check(reopened.reader.get('task', read.meta!.id));
    await reopened.close();
  });

  it('mergeAttachments keeps the allocator\'s attachments and lets a reported one replace its network\'s', () => {
    const overlay = { network: 'overlay1', addresses: ['10.0.1.5/24'] };
    const bridge = { network: 'bridge', addresses: ['172.18.0.2/16'] };
    const bridgeAgain = { network: 'bridge', addresses: ['172.18.0.3/16'] };
    expect(mergeAttachments([overlay], [])).toEqual([overlay]);
    expect(mergeAttachments([overlay, bridge], [bridgeAgain])).toEqual([overlay, bridgeAgain]);
  });

  it('store tables keep the by-service and by-node indexes right across updates that move a task and ones that do not', () => {
    const tables = new StoreTables();
    const create = (task: Task): void => void tables.apply(tables.version + 1, { actions: [{ kind: StoreActionKind.STORE_ACTION_KIND_CREATE, object: toStoreObject({ kind: 'task', object: task }), taskStatus: undefined }], proposedAtMs: 1 });
    const update = (task: Task): void => void tables.apply(tables.version + 1, { actions: [{ kind: StoreActionKind.STORE_ACTION_KIND_UPDATE, object: toStoreObject({ kind: 'task', object: task }), taskStatus: undefined }], proposedAtMs: 1 });
    create(fakeTask('t1', { serviceId: 's1' }));
    const ids = (tasks: Task[]): string[] => tasks.map((task) => task.meta!.id);
    expect(ids(tables.tasksByNode('n1'))).toEqual([]);
    update({ ...tables.get('task', 't1')!, nodeId: 'n1' });
    expect(ids(tables.tasksByNode('n1'))).toEqual(['t1']);
    update({ ...tables.get('task', 't1')!, desiredState: TaskState.TASK_STATE_SHUTDOWN });
    expect(tables.tasksByNode('n1').map((task) => task.desiredState)).toEqual([TaskState.TASK_STATE_SHUTDOWN]);
    expect(tables.tasksByService('s1').map((task) => task.desiredState)).toEqual([TaskState.TASK_STATE_SHUTDOWN]);
    update({ ...tables.get('task', 't1')!, nodeId: 'n2', serviceId: 's2' });
    expect(ids(tables.tasksByNode('n1'))).toEqual([]);
    expect(ids(tables.tasksByService('s1'))).toEqual([]);
    expect(ids(tables.tasksByNode('n2'))).toEqual(['t1']);
    expect(ids(tables.tasksByService('s2'))).toEqual(['t1']);
  });

  it('store writes a status report as a whole-task update while a manager that cannot read TASK_STATUS is a member', async () => {
    const olderPeer = new (class extends LocalBackend {
      override readsFormat(): boolean {
        return false;
      }
    })(tempDir());
    const store = new Store(olderPeer, () => 1_000);
    await store.start();
    const overlay = { network: 'overlay1', addresses: ['10.0.1.5/24'] };
    const bridge = { network: 'bridge', addresses: ['172.18.0.2/16'] };
    await store.update((tx) => tx.create('task', { ...fakeTask('t1', { nodeId: 'n1', state: TaskState.TASK_STATE_ASSIGNED }), networks: [overlay] }));
    const read = store.reader.get('task', 't1')!;
    const running = { ...read.status!, state: TaskState.TASK_STATE_RUNNING };
    let kinds: StoreActionKind[] = [];
    await store.update((tx) => {
      tx.updateTaskStatus(read, running, [bridge]);
      kinds = tx.actions.map((action) => action.kind);
    });
    expect(kinds).toEqual([StoreActionKind.STORE_ACTION_KIND_UPDATE]);
    expect(store.reader.get('task', 't1')).toMatchObject({ status: running, networks: [overlay, bridge], nodeId: 'n1', meta: { version: 2 } });
    await store.close();
  });

  it('store tables refuse, not skip, a task status change without a status', () => {
    const tables = new StoreTables();
    const task = fakeTask('t1');
    tables.apply(1, { actions: [{ kind: StoreActionKind.STORE_ACTION_KIND_CREATE, object: toStoreObject({ kind: 'task', object: task }), taskStatus: undefined }], proposedAtMs: 1 });
    const noStatus = (): unknown => tables.apply(2, { actions: [{ kind: StoreActionKind.STORE_ACTION_KIND_TASK_STATUS, object: undefined, taskStatus: { taskId: 't1', version: 1, status: undefined, networks: [] } }], proposedAtMs: 2 });
    expect(noStatus).toThrow(/carries no status.*upgrade this manager/);
    expect(noStatus).not.toThrow(StoreError);
    expect(tables.version).toBe(1);
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
