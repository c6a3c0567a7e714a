import { afterEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../../common/log.js';
import * as grpc from '@grpc/grpc-js';
import { RaftProposal } from '../../proto/skiff/v1/raft.js';
import { StoreSnapshot, StoreTransaction } from '../../proto/skiff/v1/store.js';
import type { LogIndex, MemberId, RaftCore, RaftStatus, Term } from '../raft/core/types.js';
import { STORE_FORMAT, STORE_FORMAT_TASK_STATUS } from './backend.js';
import { PROPOSAL_TIMEOUT_MS, READ_TIMEOUT_MS, RaftStoreBackend, ReadBatcher } from './raft-backend.js';

const id = (name: string): MemberId => name as MemberId;

/** A backend over a core that reports only this configuration, and peers that told these formats. */
function backend(voters: string[], learners: string[], formats: Record<string, number>): RaftStoreBackend {
  const status = { id: id('a'), conf: { voters: voters.map(id), learners: learners.map(id) } } as unknown as RaftStatus;
  return new RaftStoreBackend({
    core: () => ({ status: () => status }) as unknown as RaftCore,
    kick: () => undefined,
    addressOf: () => undefined,
    reachableVoters: () => voters.length,
    storeFormatOf: (member) => formats[member],
    credentials: grpc.credentials.createInsecure(),
    channelOptions: {},
    selfName: 'a',
    log: silentLogger,
  });
}

describe('store on Raft: log formats', () => {
  it('reads a format only when every other voter and learner told it reads it', () => {
    expect(backend(['a'], [], {}).readsFormat(STORE_FORMAT_TASK_STATUS)).toBe(true);
    expect(backend(['a', 'b', 'c'], [], { b: 1, c: 1 }).readsFormat(STORE_FORMAT_TASK_STATUS)).toBe(true);
    // c runs a skiffd older than formats (0), or was not heard from since this manager started.
    expect(backend(['a', 'b', 'c'], [], { b: 1, c: 0 }).readsFormat(STORE_FORMAT_TASK_STATUS)).toBe(false);
    expect(backend(['a', 'b', 'c'], [], { b: 1 }).readsFormat(STORE_FORMAT_TASK_STATUS)).toBe(false);
    // A learner applies every entry too.
    expect(backend(['a', 'b'], ['d'], { b: 1, d: 0 }).readsFormat(STORE_FORMAT_TASK_STATUS)).toBe(false);
    // A format newer than this build's is never written by it, whatever the peers say.
    expect(backend(['a', 'b'], [], { b: STORE_FORMAT + 1 }).readsFormat(STORE_FORMAT + 1)).toBe(false);
  });
});

/**
 * A backend on a leader `a` over a core that hands out log indexes from 1 and keeps each
 * proposal's bytes, and a sink whose commit of index i is version i.
 */
function leaderBackend(): { backend: RaftStoreBackend; proposals: Uint8Array[]; reads: string[] } {
  const status = { id: id('a'), conf: { voters: [id('a'), id('b'), id('c')], learners: [] } } as unknown as RaftStatus;
  const proposals: Uint8Array[] = [];
  const reads: string[] = [];
  const core = {
    status: () => status,
    readIndex: (requestId: string) => {
      reads.push(requestId);
      return { ok: true };
    },
    propose: (data: Uint8Array) => {
      proposals.push(data);
      return { ok: true, index: proposals.length as LogIndex, term: 1 as Term };
    },
  } as unknown as RaftCore;
  const result = new RaftStoreBackend({
    core: () => core,
    kick: () => undefined,
    addressOf: (member) => (member === 'b' ? '10.0.0.2:4243' : undefined),
    reachableVoters: () => 3,
    storeFormatOf: () => STORE_FORMAT,
    credentials: grpc.credentials.createInsecure(),
    channelOptions: {},
    selfName: 'a',
    log: silentLogger,
  });
  void result.start({ applyEntry: (index) => ({ version: index, events: [] }), restoreSnapshot: () => undefined, takeSnapshot: () => StoreSnapshot.fromPartial({}) });
  result.onSoftState({ leader: id('a'), role: 'leader' });
  return { backend: result, proposals, reads };
}

function committed(backend: RaftStoreBackend, index: number, data: Uint8Array): void {
  backend.machine.apply({ index: index as LogIndex, term: 2 as Term, type: 'normal', data });
  backend.onApplied(index as LogIndex);
}

const otherProposal = RaftProposal.encode({ proposalId: 'someone-else', storeTransaction: new Uint8Array() }).finish();

describe('store on Raft: a write in flight when leadership moves', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('is answered when the new leader commits its entry', async () => {
    const { backend, proposals } = leaderBackend();
    const write = backend.propose(StoreTransaction.fromPartial({}));
    backend.onSoftState({ leader: id('b'), role: 'follower' });
    committed(backend, 1, proposals[0] ?? new Uint8Array());
    await expect(write).resolves.toEqual({ version: 1, events: [] });
  });

  it('fails at once, as not applied, when the new leader commits another entry at its index', async () => {
    const { backend } = leaderBackend();
    const first = backend.propose(StoreTransaction.fromPartial({}));
    const second = backend.propose(StoreTransaction.fromPartial({}));
    backend.onSoftState({ leader: id('b'), role: 'follower' });
    committed(backend, 1, otherProposal);
    await expect(first).rejects.toMatchObject({ code: 'unavailable', message: expect.stringMatching(/leadership moved before the write was committed.*it was not applied: retry$/) });
    // Index 2 is not applied yet: that write may still commit.
    committed(backend, 2, otherProposal);
    await expect(second).rejects.toThrow(/it was not applied/);
  });

  it('fails as unknown when this manager catches up from a snapshot', async () => {
    const { backend } = leaderBackend();
    const write = backend.propose(StoreTransaction.fromPartial({}));
    backend.onSoftState({ leader: id('b'), role: 'follower' });
    backend.machine.restore(new Uint8Array());
    await expect(write).rejects.toThrow(/may or may not have been applied: re-read before retrying/);
  });

  it('names the move, not a lost quorum, when the wait runs out', async () => {
    vi.useFakeTimers();
    const { backend } = leaderBackend();
    const moved = backend.propose(StoreTransaction.fromPartial({}));
    const movedError = moved.catch((error: unknown) => error);
    backend.onSoftState({ leader: id('b'), role: 'follower' });
    await vi.advanceTimersByTimeAsync(PROPOSAL_TIMEOUT_MS);
    expect(String(await movedError)).toMatch(/leadership moved while the write was in flight \(manager 10\.0\.0\.2:4243 leads now\).*may still be: re-read/);

    backend.onSoftState({ leader: id('a'), role: 'leader' });
    const stuck = backend.propose(StoreTransaction.fromPartial({})).catch((error: unknown) => error);
    await vi.advanceTimersByTimeAsync(PROPOSAL_TIMEOUT_MS);
    expect(String(await stuck)).toMatch(/no quorum: the write was not committed within 5000 ms/);
  });
});

describe('store on Raft: linearizable reads (ReadIndex)', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  /** Lets queued microtasks (the read round's start) run. */
  const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

  it('reads of one turn share one round, and wait until this manager applied its index', async () => {
    const { backend, reads } = leaderBackend();
    backend.onApplied(3 as LogIndex);
    let served = 0;
    const first = backend.readBarrier().then(() => (served += 1));
    const second = backend.readBarrier().then(() => (served += 1));
    await turn();
    expect(reads).toHaveLength(1);
    backend.onReadState(reads[0] ?? '', 5 as LogIndex);
    await turn();
    // The leader's commit index was 5 when the round started; 4 and 5 are not applied here yet.
    expect(served).toBe(0);
    backend.onApplied(5 as LogIndex);
    await Promise.all([first, second]);
    expect(served).toBe(2);
  });

  it('a read after a round was sent waits for the next round, which starts when the one in flight is confirmed', async () => {
    const { backend, reads } = leaderBackend();
    const first = backend.readBarrier();
    await turn();
    const second = backend.readBarrier();
    const third = backend.readBarrier();
    await turn();
    // One round in flight at a time: the sent one may predate the later reads, so they wait.
    expect(reads).toHaveLength(1);
    backend.onReadState(reads[0] ?? '', 0 as LogIndex);
    await first;
    await turn();
    // The two later reads share the next round.
    expect(reads).toHaveLength(2);
    let laterDone = 0;
    void Promise.all([second, third]).then(() => (laterDone = 2));
    await turn();
    expect(laterDone).toBe(0);
    backend.onReadState(reads[1] ?? '', 0 as LogIndex);
    await Promise.all([second, third]);
    // A read state for a round no longer in flight changes nothing.
    backend.onReadState(reads[0] ?? '', 7 as LogIndex);
    expect(reads).toHaveLength(2);
  });

  it('a read that does not catch up in time fails and leaves no waiter behind', async () => {
    vi.useFakeTimers();
    const { backend, reads } = leaderBackend();
    const late = backend.readBarrier().catch((error: unknown) => error);
    await vi.advanceTimersByTimeAsync(0);
    backend.onReadState(reads[0] ?? '', 9 as LogIndex);
    await vi.advanceTimersByTimeAsync(0);
    expect(backend.appliedWaitCount).toBe(1);
    await vi.advanceTimersByTimeAsync(READ_TIMEOUT_MS);
    expect(String(await late)).toMatch(/cannot read: this manager did not catch up with the leader's commit index 9 within 5000 ms \(applied 0\)/);
    expect(backend.appliedWaitCount).toBe(0);
  });

  it('refuses at once without a leader, naming the lost quorum', async () => {
    const { backend, reads } = leaderBackend();
    backend.onSoftState({ leader: '' as MemberId, role: 'follower' });
    await expect(backend.readBarrier()).rejects.toMatchObject({ code: 'unavailable', message: expect.stringMatching(/^cannot read: no quorum: this manager sees no leader.*--force-new-cluster/) });
    expect(reads).toHaveLength(0);
  });

  it('fails a read in flight when leadership moves, and one a majority does not confirm in time', async () => {
    vi.useFakeTimers();
    const { backend } = leaderBackend();
    const moved = backend.readBarrier().catch((error: unknown) => error);
    await vi.advanceTimersByTimeAsync(0);
    backend.onSoftState({ leader: id('b'), role: 'follower' });
    expect(String(await moved)).toMatch(/cannot read: leadership moved while the read was being confirmed; retry/);

    backend.onSoftState({ leader: id('a'), role: 'leader' });
    const unconfirmed = backend.readBarrier().catch((error: unknown) => error);
    await vi.advanceTimersByTimeAsync(READ_TIMEOUT_MS);
    expect(String(await unconfirmed)).toMatch(/cannot read: no quorum: a majority did not confirm the leader within 5000 ms/);
  });
});

describe('ReadBatcher', () => {
  const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

  it('keeps one round in flight, batches the reads that arrive meanwhile, and fails only the batch whose round failed', async () => {
    const rounds: Array<{ resolve: (index: number) => void; reject: (error: Error) => void }> = [];
    const batcher = new ReadBatcher(() => new Promise((resolve, reject) => rounds.push({ resolve, reject })));
    const a = batcher.next();
    const b = batcher.next();
    await turn();
    expect(rounds).toHaveLength(1);
    const c = batcher.next().catch((error: unknown) => error);
    const d = batcher.next().catch((error: unknown) => error);
    await turn();
    expect(rounds).toHaveLength(1);
    rounds[0]?.resolve(4);
    expect(await Promise.all([a, b])).toEqual([4, 4]);
    await turn();
    expect(rounds).toHaveLength(2);
    rounds[1]?.reject(new Error('leader gone'));
    expect(String(await c)).toBe('Error: leader gone');
    expect(String(await d)).toBe('Error: leader gone');
    // A round that throws instead of rejecting fails its batch too, and the batcher goes on.
    let throwing = true;
    const next = new ReadBatcher(() => {
      if (throwing) throw new Error('no client');
      return Promise.resolve(8);
    });
    await expect(next.next()).rejects.toThrow('no client');
    throwing = false;
    await expect(next.next()).resolves.toBe(8);
  });
});
