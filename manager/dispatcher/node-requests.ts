/**
 * The node-request broker: joins a Control call (logs, exec, images) to the agent that must answer
 * it. The broker sends a NodeRequest down the node's live session and waits for that node to open
 * Dispatcher.Attach with the request id; the two calls are then one pipe. Either side ending ends
 * the other: a CLI that disconnects cancels the agent's Attach (which stops following the log or
 * kills the exec'd process), and an agent that goes away ends the Control call with an error.
 *
 * Runs on the leader only, beside the dispatcher, which owns the sessions.
 */
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../common/log.js';
import type { AgentFrame, DispatcherMessage, ManagerFrame, NodeRequest } from '../../proto/skiff/v1/dispatcher.js';
import { ApiError } from '../api/errors.js';

/** How long a node has to open its Attach after the request went down its session. */
export const ATTACH_TIMEOUT_MS = 10_000;
/** Requests waiting for their Attach at most (each holds a timer and a little memory). */
export const MAX_PENDING_REQUESTS = 1_024;

/** The server side of one Dispatcher.Attach call, as the broker uses it (grpc-js's duplex stream fits). */
export interface AttachCall {
  /** The agent's frames (Readable.iterator): not destroying the call at their end, so it can still be ended with a status. */
  iterator(options: { destroyOnReturn: boolean }): AsyncIterator<AgentFrame>;
  write(frame: ManagerFrame): boolean;
  once(event: 'drain', listener: () => void): unknown;
  on(event: 'cancelled', listener: () => void): unknown;
  /** grpc-js ends a server call with an error status this way. */
  emit(event: 'error', error: Error): boolean;
  end(): void;
}

/** The request's body: one of logs, exec, image. */
export type NodeRequestBody = NodeRequest['request'];

/** One request to one node, from the Control side. */
export interface NodeRequestStream {
  readonly nodeId: string;
  readonly requestId: string;
  /** The agent's frames in order; ends when the agent ends its Attach, throws when it never attached. */
  frames(): AsyncIterable<AgentFrame>;
  /** Sends a frame to the agent; resolves once the transport took it (backpressure). */
  send(frame: ManagerFrame): Promise<void>;
  /** Ends both sides now; the agent sees its Attach end. Idempotent. */
  cancel(): void;
}

export interface NodeRequestBrokerOptions {
  /** Writes a message to the node's live session; false when the node has none. */
  sendToNode: (nodeId: string, message: DispatcherMessage) => boolean;
  attachTimeoutMs?: number;
  log: Logger;
}

interface Pending {
  nodeId: string;
  attached: (call: AttachCall, iterator: AsyncIterator<AgentFrame>, first: AgentFrame) => void;
  failed: (error: Error) => void;
}

export class NodeRequestBroker {
  private readonly pending = new Map<string, Pending>();
  private readonly attachTimeoutMs: number;

  constructor(private readonly options: NodeRequestBrokerOptions) {
    this.attachTimeoutMs = options.attachTimeoutMs ?? ATTACH_TIMEOUT_MS;
  }

  /**
   * Sends `body` to node `nodeId`. Throws ApiError `unavailable` naming the node when it has no
   * session; the returned stream's frames() throws when the node does not attach in time.
   */
  open(nodeId: string, body: NodeRequestBody, label = nodeId): NodeRequestStream {
    if (this.pending.size >= MAX_PENDING_REQUESTS) throw new ApiError('unavailable', `cannot send a request to node ${label}: ${MAX_PENDING_REQUESTS} requests are waiting for their nodes already`);
    const requestId = randomUUID();
    let call: AttachCall | undefined;
    let cancelled = false;
    let timer: NodeJS.Timeout | undefined;
    let stop: () => void = () => undefined;
    // Resolves when either side is gone: a pending next() of the agent's frames must not outlive it.
    const stopped = new Promise<IteratorReturnResult<undefined>>((resolve) => (stop = () => resolve({ done: true, value: undefined })));
    const attachedCall = new Promise<{ iterator: AsyncIterator<AgentFrame>; first: AgentFrame }>((resolve, reject) => {
      timer = setTimeout(() => {
        this.pending.delete(requestId);
        reject(new ApiError('unavailable', `cannot complete the request: node ${label} did not answer within ${Math.round(this.attachTimeoutMs / 1000)} s`));
      }, this.attachTimeoutMs);
      this.pending.set(requestId, {
        nodeId,
        attached: (attach, iterator, first) => {
          clearTimeout(timer);
          this.pending.delete(requestId);
          call = attach;
          attach.on('cancelled', stop);
          if (cancelled) attach.end();
          resolve({ iterator, first });
        },
        failed: (error) => {
          clearTimeout(timer);
          this.pending.delete(requestId);
          reject(error);
        },
      });
    });
    // A rejection nobody awaits yet (cancelled before frames()) must not crash the process.
    attachedCall.catch(() => undefined);
    const sent = this.options.sendToNode(nodeId, { message: { $case: 'request', value: { requestId, request: body } } });
    if (!sent) {
      this.pending.get(requestId)?.failed(new ApiError('unavailable', `cannot send the request to node ${label}: it is not connected to the leader`));
      throw new ApiError('unavailable', `cannot send the request to node ${label}: it is not connected to the leader`);
    }
    return {
      nodeId,
      requestId,
      frames: async function* () {
        const { iterator, first } = await attachedCall;
        if (first.frame !== undefined) yield first;
        for (;;) {
          if (cancelled) return;
          const next = await Promise.race([iterator.next(), stopped]);
          if (next.done === true) return;
          yield next.value;
        }
      },
      send: async (frame) => {
        await attachedCall;
        if (call === undefined || cancelled) return;
        if (!call.write(frame)) await Promise.race([new Promise<void>((resolve) => call?.once('drain', resolve)), stopped]);
      },
      cancel: () => {
        if (cancelled) return;
        cancelled = true;
        stop();
        const waiting = this.pending.get(requestId);
        if (waiting !== undefined) waiting.failed(new ApiError('unavailable', 'cannot complete the request: cancelled'));
        call?.end();
      },
    };
  }

  /**
   * The agent's Attach: its first frame names the request. `nodeId` comes from the caller's
   * certificate; a request sent to another node is refused.
   */
  async attach(nodeId: string, call: AttachCall): Promise<void> {
    const iterator = call.iterator({ destroyOnReturn: false });
    let first: IteratorResult<AgentFrame>;
    try {
      first = await iterator.next();
    } catch {
      return; // the agent gave up before saying which request
    }
    if (first.done === true) {
      call.end();
      return;
    }
    const requestId = first.value.requestId;
    const pending = this.pending.get(requestId);
    if (pending === undefined || pending.nodeId !== nodeId) {
      this.options.log.warn('attach refused', { nodeId, requestId });
      call.emit('error', Object.assign(new Error(`cannot attach: no request ${requestId} is waiting for node ${nodeId}`), { code: grpc.status.PERMISSION_DENIED }));
      return;
    }
    pending.attached(call, iterator, first.value);
  }

  /** Fails every request still waiting for its node (the dispatcher stopped leading). */
  failAll(reason: string): void {
    for (const pending of [...this.pending.values()]) pending.failed(new ApiError('unavailable', `cannot complete the request: ${reason}`));
  }
}
