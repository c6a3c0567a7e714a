/**
 * The outgoing side of the transport to one peer: a long-lived client stream of message
 * batches, with reconnection. A Ready's messages to the peer go onto the stream at once (no
 * hop through the event loop: that would add a turn to every write's latency). Raft tolerates
 * loss, so while the peer is unreachable messages are dropped and the core is told the peer is
 * unreachable (it falls back to probing).
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../../common/log.js';
import { type RaftMessage, RaftClient, type RaftMessageBatch, type RaftSendResponse } from '../../../proto/skiff/v1/raft.js';

/** Messages per batch on the wire at most. */
const MAX_BATCH_MESSAGES = 256;
const RECONNECT_DELAY_MS = 200;

export class PeerStream {
  private client: InstanceType<typeof RaftClient> | undefined;
  private call: grpc.ClientWritableStream<RaftMessageBatch> | undefined;
  private retryAt = 0;
  private lastContactMs = 0;

  constructor(
    private addr: string,
    private readonly credentials: grpc.ChannelCredentials,
    private readonly options: grpc.ChannelOptions,
    private readonly onUnreachable: () => void,
    private readonly log: Logger,
    /** The store log format this manager reads, carried by every batch (RaftMessageBatch.store_format). */
    private readonly storeFormat: number,
  ) {}

  /** When a message last went out without a transport error (ms since epoch; 0 = never). */
  get lastContact(): number {
    return this.lastContactMs;
  }

  setAddress(addr: string): void {
    if (addr === this.addr) return;
    this.addr = addr;
    this.reset();
  }

  /** Writes `messages` (one Ready's, for this peer) onto the stream now, in batches. */
  send(messages: RaftMessage[]): void {
    if (messages.length === 0) return;
    if (Date.now() < this.retryAt) {
      // Told after the caller's Ready is handled, not in the middle of it.
      queueMicrotask(() => this.onUnreachable());
      return;
    }
    const call = this.ensureCall();
    for (let start = 0; start < messages.length; start += MAX_BATCH_MESSAGES) call.write({ messages: messages.slice(start, start + MAX_BATCH_MESSAGES), storeFormat: this.storeFormat });
  }

  close(): void {
    this.reset();
  }

  private ensureCall(): grpc.ClientWritableStream<RaftMessageBatch> {
    if (this.call !== undefined) return this.call;
    this.client = new RaftClient(this.addr, this.credentials, { ...this.options, 'grpc.keepalive_time_ms': 5_000, 'grpc.keepalive_timeout_ms': 3_000 });
    const call = this.client.send((error: grpc.ServiceError | null, _response?: RaftSendResponse) => {
      if (this.call !== call) return;
      this.log.debug('raft stream closed', { peer: this.addr, error: error?.message });
      this.reset();
      this.retryAt = Date.now() + RECONNECT_DELAY_MS;
      this.onUnreachable();
    });
    call.on('error', () => undefined);
    // A stream that carries data is a live peer; grpc reports failure through the callback.
    call.on('status', () => undefined);
    this.client.getChannel().getConnectivityState(true);
    this.call = call;
    this.lastContactMs = Date.now();
    const watch = (): void => {
      const channel = this.client?.getChannel();
      if (channel === undefined || this.call !== call) return;
      const state = channel.getConnectivityState(false);
      if (state === grpc.connectivityState.READY) this.lastContactMs = Date.now();
      channel.watchConnectivityState(state, Date.now() + 1_000, () => watch());
    };
    watch();
    return call;
  }

  private reset(): void {
    const call = this.call;
    this.call = undefined;
    call?.end();
    this.client?.close();
    this.client = undefined;
  }
}
