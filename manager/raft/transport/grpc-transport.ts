/**
 * Raft messages between managers over gRPC with mutual TLS. Outgoing: one PeerStream per
 * member. Incoming: the Raft service's Send stream, accepted only from a manager certificate
 * of this cluster whose CN is the message's sender — a peer cannot speak for another.
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../../common/log.js';
import { peerIdentity } from '../../../pki/grpc-credentials.js';
import type { RaftMessage, RaftMessageBatch, RaftSendResponse } from '../../../proto/skiff/v1/raft.js';
import type { MemberId, Message } from '../core/types.js';
import { messageFromWire, messageToWire } from '../storage/codec.js';
import { PeerStream } from './peer-stream.js';

/** A peer counts as reachable when it was in contact within this window. */
export const REACHABLE_WINDOW_MS = 3_000;

export interface TransportOptions {
  selfId: MemberId;
  clusterId: string;
  credentials: grpc.ChannelCredentials;
  channelOptions: grpc.ChannelOptions;
  /** Delivers an incoming message to the local node. */
  deliver: (message: Message) => void;
  /** Tells the local node a member could not be reached. */
  unreachable: (member: MemberId) => void;
  /** The newest store log format this manager reads, told to every peer with each batch. */
  storeFormat: number;
  log: Logger;
}

export class GrpcTransport {
  private readonly peers = new Map<MemberId, PeerStream>();
  private readonly addresses = new Map<MemberId, string>();
  private readonly lastHeardMs = new Map<MemberId, number>();
  private readonly storeFormats = new Map<MemberId, number>();

  constructor(private readonly options: TransportOptions) {}

  /** Sets the address book (member -> ip:port). Members not listed keep their last address. */
  setAddress(member: MemberId, addr: string): void {
    if (member === this.options.selfId || addr === '') return;
    this.addresses.set(member, addr);
    this.peers.get(member)?.setAddress(addr);
  }

  addressOf(member: MemberId): string | undefined {
    return this.addresses.get(member);
  }

  /** Sends one Ready's messages: each peer's go onto its stream at once, in order. */
  send(messages: Message[]): void {
    const byPeer = new Map<MemberId, RaftMessage[]>();
    for (const message of messages) {
      let wires = byPeer.get(message.to);
      if (wires === undefined) byPeer.set(message.to, (wires = []));
      wires.push(messageToWire(message));
    }
    for (const [member, wires] of byPeer) {
      const peer = this.peer(member);
      if (peer === undefined) this.options.unreachable(member);
      else peer.send(wires);
    }
  }

  /** Whether `member` was heard from (or reached) recently. */
  isReachable(member: MemberId, nowMs: number, windowMs = REACHABLE_WINDOW_MS): boolean {
    if (member === this.options.selfId) return true;
    return nowMs - (this.lastHeardMs.get(member) ?? 0) < windowMs;
  }

  /** The store log format `member` said it reads in its last batch; undefined if never heard from. */
  storeFormatOf(member: MemberId): number | undefined {
    return this.storeFormats.get(member);
  }

  /** The handler of the Raft service's Send stream. */
  sendHandler(): grpc.handleClientStreamingCall<RaftMessageBatch, RaftSendResponse> {
    return (call, callback) => {
      const identity = peerIdentity(call);
      if (identity === undefined || identity.role !== 'manager' || identity.clusterId !== this.options.clusterId) {
        callback({ code: grpc.status.PERMISSION_DENIED, details: 'cannot accept raft messages: a manager certificate of this cluster is required' } as grpc.ServiceError);
        return;
      }
      const sender = identity.nodeId as MemberId;
      call.on('data', (batch: RaftMessageBatch) => {
        this.lastHeardMs.set(sender, Date.now());
        this.storeFormats.set(sender, batch.storeFormat);
        for (const wire of batch.messages) {
          const message = messageFromWire(wire);
          if (message === undefined || message.from !== sender || message.to !== this.options.selfId) continue;
          this.options.deliver(message);
        }
      });
      call.on('end', () => callback(null, {}));
      call.on('error', () => undefined);
    };
  }

  close(): void {
    for (const peer of this.peers.values()) peer.close();
    this.peers.clear();
  }

  private peer(member: MemberId): PeerStream | undefined {
    const existing = this.peers.get(member);
    if (existing !== undefined) return existing;
    const addr = this.addresses.get(member);
    if (addr === undefined) return undefined;
    const log = this.options.log;
    const stream = new PeerStream(addr, this.options.credentials, this.options.channelOptions, () => this.options.unreachable(member), log, this.options.storeFormat);
    this.peers.set(member, stream);
    return stream;
  }
}
