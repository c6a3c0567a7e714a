import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { READ_CONSISTENCY_HEADER } from '../../common/read-consistency.js';
import { unaryRead, type ControlOptions } from './control-common.js';

/** Calls a unary handler with `header` (if any) in the call metadata; resolves with the error or response. */
function invoke(handler: grpc.handleUnaryCall<string, string>, header?: string): Promise<{ error: grpc.ServiceError | null; response: string | undefined }> {
  const metadata = new grpc.Metadata();
  if (header !== undefined) metadata.set(READ_CONSISTENCY_HEADER, header);
  return new Promise((resolve) => {
    handler({ request: 'q', metadata } as unknown as grpc.ServerUnaryCall<string, string>, (error, response) => resolve({ error: error as grpc.ServiceError | null, response: response ?? undefined }));
  });
}

describe('unaryRead', () => {
  const options = {} as ControlOptions;

  it('waits for the read barrier by default and with linearizable, skips it with stale, and refuses anything else', async () => {
    let barriers = 0;
    const store = { readBarrier: async () => void (barriers += 1) };
    const handler = unaryRead(store, options, (request: string) => `answer to ${request}`);
    expect(await invoke(handler)).toEqual({ error: null, response: 'answer to q' });
    expect(await invoke(handler, 'linearizable')).toEqual({ error: null, response: 'answer to q' });
    expect(barriers).toBe(2);
    expect(await invoke(handler, 'stale')).toEqual({ error: null, response: 'answer to q' });
    expect(barriers).toBe(2);
    const refused = await invoke(handler, 'eventual');
    expect(refused.error?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(refused.error?.details).toMatch(/skiff-read-consistency is "eventual"; expected linearizable or stale/);
    expect(barriers).toBe(2);
  });

  it('a refused barrier fails the read; a stale read still answers', async () => {
    const store = { readBarrier: () => Promise.reject(Object.assign(new Error('cannot read: no quorum: this manager sees no leader'), { code: 'unavailable' })) };
    const handler = unaryRead(store, options, () => 'stored');
    const refused = await invoke(handler);
    expect(refused.error).not.toBeNull();
    expect(refused.error?.details ?? refused.error?.message).toMatch(/cannot read: no quorum/);
    expect(await invoke(handler, 'stale')).toEqual({ error: null, response: 'stored' });
  });
});
