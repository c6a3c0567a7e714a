import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../../../common/log.js';
import { channelCredentials, channelOptions, createCertificateAuthority, issueNodeCredentials, newNodeId, serverCredentials } from '../../../pki/index.js';
import { RaftService } from '../../../proto/skiff/v1/raft.js';
import type { LogIndex, MemberId, Message, Term } from '../core/types.js';
import { GrpcTransport } from './grpc-transport.js';

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

const unimplemented = (_call: unknown, callback: (error: Partial<grpc.ServiceError>) => void): void => callback({ code: grpc.status.UNIMPLEMENTED });

/** Two managers' transports, the receiver behind a real gRPC server with mutual TLS. */
async function pair(senderFormat: number): Promise<{ sender: GrpcTransport; receiver: GrpcTransport; senderId: MemberId; receiverId: MemberId; delivered: Message[] }> {
  const ca = await createCertificateAuthority();
  const senderId = newNodeId() as MemberId;
  const receiverId = newNodeId() as MemberId;
  const senderCreds = await issueNodeCredentials(ca, { nodeId: senderId, role: 'manager', ipAddresses: ['127.0.0.1'] });
  const receiverCreds = await issueNodeCredentials(ca, { nodeId: receiverId, role: 'manager', ipAddresses: ['127.0.0.1'] });
  const delivered: Message[] = [];
  const common = { clusterId: ca.clusterId, channelOptions: channelOptions(), unreachable: () => undefined, log: silentLogger };
  const receiver = new GrpcTransport({ ...common, selfId: receiverId, credentials: channelCredentials(receiverCreds), deliver: (message) => delivered.push(message), storeFormat: 1 });
  const sender = new GrpcTransport({ ...common, selfId: senderId, credentials: channelCredentials(senderCreds), deliver: () => undefined, storeFormat: senderFormat });
  const server = new grpc.Server();
  server.addService(RaftService, { send: receiver.sendHandler(), forwardProposal: unimplemented, join: unimplemented });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', serverCredentials(receiverCreds), (error, bound) => (error ? reject(error) : resolve(bound))));
  cleanups.push(() => {
    sender.close();
    receiver.close();
    server.forceShutdown();
  });
  sender.setAddress(receiverId, `127.0.0.1:${port}`);
  return { sender, receiver, senderId, receiverId, delivered };
}

describe('grpc transport', () => {
  it.each([0, 1, 7])('tells the receiver which store format the sender reads (%i)', async (format) => {
    const { sender, receiver, senderId, receiverId, delivered } = await pair(format);
    expect(receiver.storeFormatOf(senderId)).toBeUndefined();
    const heartbeat: Message = { type: 'heartbeat', from: senderId, to: receiverId, term: 3 as Term, commit: 0 as LogIndex, context: '' };
    sender.send([heartbeat]);
    await vi.waitFor(() => expect(delivered).toHaveLength(1), { timeout: 10_000, interval: 20 });
    expect(delivered[0]).toMatchObject({ type: 'heartbeat', from: senderId, term: 3 });
    expect(receiver.storeFormatOf(senderId)).toBe(format);
  });
});
