/**
 * A follower's way to serve the streaming Control calls that only the leader can answer (logs,
 * exec, images: the leader holds the agents' sessions): the call is replayed on the leader over
 * mutual TLS with this manager's node certificate, and both streams are relayed with
 * backpressure. Ending either side ends the other; the leader's status is passed on unchanged.
 */
import * as grpc from '@grpc/grpc-js';
import type { ControlClient } from '../../proto/skiff/v1/control.js';

/** A client to the leader's Control service. */
export interface LeaderControl {
  addr: string;
  client: InstanceType<typeof ControlClient>;
}

type ServerSide<In, Out> = grpc.ServerWritableStream<In, Out> | grpc.ServerDuplexStream<In, Out>;

function relayError(call: ServerSide<unknown, unknown>, error: unknown): void {
  const serviceError = error as Partial<grpc.ServiceError>;
  const details = serviceError.details ?? (error instanceof Error ? error.message : String(error));
  call.emit('error', Object.assign(new Error(details), { code: serviceError.code ?? grpc.status.UNAVAILABLE, details }));
}

/** Leader -> this call, pausing the leader's stream while the caller is slow. */
async function relayDown<Out>(upstream: grpc.ClientReadableStream<Out> | grpc.ClientDuplexStream<unknown, Out>, call: ServerSide<unknown, Out>): Promise<void> {
  try {
    for await (const message of upstream as AsyncIterable<Out>) {
      if (call.cancelled) return;
      if (!call.write(message)) await new Promise<void>((resolve) => call.once('drain', resolve));
    }
    call.end();
  } catch (error) {
    if (!call.cancelled) relayError(call, error);
  }
}

export async function proxyServerStream<In, Out>(call: grpc.ServerWritableStream<In, Out>, open: (metadata: grpc.Metadata) => grpc.ClientReadableStream<Out>): Promise<void> {
  const upstream = open(new grpc.Metadata());
  call.on('cancelled', () => upstream.cancel());
  await relayDown(upstream, call);
}

export async function proxyBidi<In, Out>(call: grpc.ServerDuplexStream<In, Out>, open: (metadata: grpc.Metadata) => grpc.ClientDuplexStream<In, Out>): Promise<void> {
  const upstream = open(new grpc.Metadata());
  call.on('cancelled', () => upstream.cancel());
  // This call -> leader; its end half-closes the leader's call.
  void (async () => {
    // Not `for await (… of call)`: that destroys the call when the client half-closes, before the answer.
    const messages = call.iterator({ destroyOnReturn: false }) as AsyncIterator<In>;
    for (let next = await messages.next(); next.done !== true; next = await messages.next()) {
      if (!upstream.write(next.value)) await new Promise<void>((resolve) => upstream.once('drain', resolve));
    }
    upstream.end();
  })().catch(() => upstream.cancel());
  await relayDown(upstream, call);
}
