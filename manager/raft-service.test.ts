import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { channelCredentials, channelOptions, type NodeRole } from '../pki/index.js';
import { RaftClient } from '../proto/skiff/v1/raft.js';
import { StoreActionKind, StoreTransaction } from '../proto/skiff/v1/store.js';
import { FakeCluster, fakeServiceSpec } from './api/testing/fake-cluster.js';
import type { Service } from '../proto/skiff/v1/objects.js';
import { MAX_PROPOSAL_BYTES } from './store/raft-backend.js';
import { newObjectId } from './store/store.js';
import { joinFormatRefusal, leaderAddressInJoinRefusal, notLeaderForJoin } from './raft-group.js';
import { STORE_FORMAT } from './store/backend.js';

let cluster: FakeCluster;
const clients: InstanceType<typeof RaftClient>[] = [];

beforeAll(async () => {
  cluster = await FakeCluster.start();
});
afterAll(async () => {
  for (const client of clients) client.close();
  await cluster.close();
});

async function raftClient(role: NodeRole): Promise<InstanceType<typeof RaftClient>> {
  const client = new RaftClient(cluster.address, channelCredentials(await cluster.credentials(role)), channelOptions());
  clients.push(client);
  return client;
}

function serviceObject(name: string, labels: Record<string, string> = {}): Service {
  return { meta: { id: newObjectId(), version: 0, createdAtMs: 0, updatedAtMs: 0 }, spec: { ...fakeServiceSpec(name, 0), labels }, previousSpec: undefined, updateStatus: undefined, endpoint: undefined, activeColor: '', specVersion: 1, rebalanceRequestedAtMs: 0 };
}

function createServiceTransaction(name: string, labels: Record<string, string> = {}): Uint8Array {
  const service = serviceObject(name, labels);
  return StoreTransaction.encode({ actions: [{ kind: StoreActionKind.STORE_ACTION_KIND_CREATE, object: { object: { $case: "service", value: service } }, taskStatus: undefined }], proposedAtMs: 1 }).finish();
}

function forward(client: InstanceType<typeof RaftClient>, name: string, labels: Record<string, string> = {}): Promise<{ index: number } | grpc.ServiceError> {
  return new Promise((resolve) => client.forwardProposal({ storeTransaction: createServiceTransaction(name, labels) }, (error, response) => resolve(error ?? response)));
}

/** A label value that takes a transaction past one Raft entry's limit, but not past gRPC's 4 MiB. */
const OVERSIZED = { blob: 'x'.repeat(MAX_PROPOSAL_BYTES + 1024) };

describe('raft service', () => {
  it.each<NodeRole>(['worker', 'admin'])('raft service refuses a forwarded write from a %s certificate and stores nothing', async (role) => {
    const result = await forward(await raftClient(role), `from-${role}`);
    expect(result).toMatchObject({ code: grpc.status.PERMISSION_DENIED, details: expect.stringContaining('manager certificate') });
    expect(cluster.manager.store.reader.findByName('service', `from-${role}`)).toBeUndefined();
  });

  it('raft service commits a forwarded write from a manager certificate at the index it answers', async () => {
    const result = await forward(await raftClient('manager'), 'from-manager');
    expect(result).toHaveProperty('index');
    const stored = cluster.manager.store.reader.findByName('service', 'from-manager');
    expect(stored?.meta?.version).toBe((result as { index: number }).index);
  });

  it('raft service refuses a forwarded write too large for one Raft entry, naming the limit, and stores nothing', async () => {
    const version = cluster.manager.store.reader.version;
    const result = await forward(await raftClient('manager'), 'oversized-forward', OVERSIZED);
    expect(result).toMatchObject({ code: grpc.status.RESOURCE_EXHAUSTED, details: expect.stringContaining(`over the ${MAX_PROPOSAL_BYTES}-byte limit of one Raft entry`) });
    expect(cluster.manager.store.reader.findByName('service', 'oversized-forward')).toBeUndefined();
    expect(cluster.manager.store.reader.version).toBe(version);
  });

  it('store on Raft refuses a transaction too large for one entry before proposing it, and keeps working', async () => {
    const store = cluster.manager.store;
    const version = store.reader.version;
    await expect(store.update((transaction) => transaction.create('service', serviceObject('oversized-local', OVERSIZED)))).rejects.toMatchObject({
      code: 'too_large',
      message: expect.stringMatching(/the transaction is \d+ bytes \(1 changes\), over the \d+-byte limit/),
    });
    expect(store.reader.version).toBe(version);
    await store.update((transaction) => transaction.create('service', serviceObject('after-oversized')));
    expect(store.reader.findByName('service', 'after-oversized')).toBeDefined();
  });

  it('raft service refuses a join from a worker certificate', async () => {
    const client = await raftClient('worker');
    const error = await new Promise<grpc.ServiceError | null>((resolve) => client.join({ addr: '127.0.0.1:1', storeFormat: STORE_FORMAT }, (caught) => resolve(caught)));
    expect(error?.details).toContain('requires a manager certificate, the caller\'s is worker');
  });

  it('raft service refuses a join from a manager whose skiffd reads an older store format than every member, and records nothing', async () => {
    const version = cluster.manager.store.reader.version;
    const client = new RaftClient(cluster.address, channelCredentials(await cluster.credentials('manager')), channelOptions());
    clients.push(client);
    // Format 0 is not written on the wire (proto3): the same bytes as a build from before the field sends.
    const error = await new Promise<grpc.ServiceError | null>((resolve) => client.join({ addr: '127.0.0.9:4242', storeFormat: 0 }, (caught) => resolve(caught)));
    expect(error?.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(error?.details).toContain(`the manager at 127.0.0.9:4242 reads store log format 0, and every member of this cluster reads format ${STORE_FORMAT}`);
    expect(error?.details).toContain('upgrade skiffd on 127.0.0.9:4242');
    expect(cluster.manager.managerAddresses()).not.toContain('127.0.0.9:4242');
    expect(cluster.manager.store.reader.version).toBe(version);
  });

  it('raft service refuses a message stream from a worker certificate', async () => {
    const client = await raftClient('worker');
    const error = await new Promise<grpc.ServiceError | null>((resolve) => {
      const call = client.send((caught) => resolve(caught));
      call.write({ messages: [], storeFormat: 0 });
      call.end();
    });
    expect(error?.code).toBe(grpc.status.PERMISSION_DENIED);
  });
});

describe('joining with an older store format', () => {
  it('is refused only when the joiner reads less than every member does', () => {
    expect(joinFormatRefusal(1, 1, '198.18.1.13:4242')).toBeUndefined();
    expect(joinFormatRefusal(2, 1, '198.18.1.13:4242')).toBeUndefined();
    expect(joinFormatRefusal(0, 0, '198.18.1.13:4242')).toBeUndefined();
    expect(joinFormatRefusal(0, 1, '198.18.1.13:4242')).toMatch(/^cannot join: this skiffd is older than the cluster: the manager at 198\.18\.1\.13:4242 reads store log format 0/);
  });
});

describe('joining through a manager that does not lead', () => {
  it('the refusal names the leader by address, and the joiner reads it back', () => {
    const refusal = notLeaderForJoin('198.18.1.11:4242', '198.18.1.12:4242');
    expect(leaderAddressInJoinRefusal(`Error: cannot join the cluster through 198.18.1.11:4242: ${refusal}`)).toBe('198.18.1.12:4242');
    // No leader known, or an old manager that named the leader's member id: nothing to dial.
    expect(leaderAddressInJoinRefusal(notLeaderForJoin('198.18.1.11:4242', undefined))).toBeUndefined();
    expect(leaderAddressInJoinRefusal('cannot join through 198.18.1.11:4242: it is not the leader (leader: 2nmxp6wjhkchxxj6e0nv025hj)')).toBeUndefined();
  });
});
