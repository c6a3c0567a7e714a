import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../common/log.js';
import * as grpc from '@grpc/grpc-js';
import type { MemberId, RaftCore, RaftStatus } from '../raft/core/types.js';
import { STORE_FORMAT, STORE_FORMAT_TASK_STATUS } from './backend.js';
import { RaftStoreBackend } from './raft-backend.js';

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
