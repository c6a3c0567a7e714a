/**
 * The agent's end of one Dispatcher.Attach: frames out with backpressure, frames in as an async
 * sequence, and an abort signal that fires when the manager ends the call (the user went away).
 */
import type * as grpc from '@grpc/grpc-js';
import type { AgentFrame, ManagerFrame } from '../../proto/skiff/v1/dispatcher.js';

export type AgentFrameBody = NonNullable<AgentFrame['frame']>;

/** Where a request handler sends its answer. */
export interface FrameSink {
  /** Resolves once the transport took the frame; never rejects (a gone call drops frames). */
  send(frame: AgentFrameBody): Promise<void>;
}

export class AttachSink implements FrameSink {
  private closed = false;

  constructor(
    private readonly call: grpc.ClientDuplexStream<AgentFrame, ManagerFrame>,
    private readonly signal: AbortSignal,
  ) {
    signal.addEventListener('abort', () => (this.closed = true), { once: true });
  }

  async send(frame: AgentFrameBody): Promise<void> {
    if (this.closed) return;
    if (this.call.write({ requestId: '', frame })) return;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        this.call.off('drain', done);
        this.signal.removeEventListener('abort', done);
        resolve();
      };
      this.call.on('drain', done);
      this.signal.addEventListener('abort', done, { once: true });
    });
  }
}

/**
 * A one-slot channel: push() resolves once the consumer took the value, so a fast producer (the
 * manager's archive chunks) waits for a slow consumer (the image store) and memory stays bounded.
 */
export class Handoff<T> implements AsyncIterable<T> {
  private readonly values: { value: T; taken: () => void }[] = [];
  private waiting: (() => void) | undefined;
  private ended = false;
  private failure: Error | undefined;

  push(value: T): Promise<void> {
    return new Promise((taken) => {
      this.values.push({ value, taken });
      this.waiting?.();
    });
  }

  /** No more values; with an error, the consumer's loop throws it instead of ending. */
  end(error?: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.failure = error;
    this.waiting?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      const next = this.values.shift();
      if (next !== undefined) {
        next.taken();
        yield next.value;
        continue;
      }
      if (this.failure !== undefined) throw this.failure;
      if (this.ended) return;
      await new Promise<void>((resolve) => (this.waiting = resolve));
      this.waiting = undefined;
    }
  }
}
