/**
 * The agent's side of a NodeRequest (logs, exec, images) that came down its session: it opens
 * Dispatcher.Attach to the same manager, names the request in the first frame, and answers on
 * that call. A failure is sent as an `error` frame; the manager ending the call cancels the work
 * (stops following a log, kills an exec'd process, abandons an image load).
 */
import type * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../common/log.js';
import type { ImageRequest, ImageResponse, VolumeRequest, VolumeResponse } from '../../proto/skiff/v1/attach.js';
import type { AgentFrame, DispatcherClient, ManagerFrame, NodeRequest } from '../../proto/skiff/v1/dispatcher.js';
import type { Runtime } from '../runtime/types.js';
import { startExecSession } from './exec-handler.js';
import { AttachSink, type FrameSink, Handoff } from './frame-sink.js';
import { answerLogs } from './logs-handler.js';

/** Image operations on this node (agent/image): `archive` is set for load only. */
export type ImageRequestHandler = (request: ImageRequest, archive: AsyncIterable<Uint8Array> | undefined) => Promise<ImageResponse>;

export interface NodeRequestDeps {
  runtime: Pick<Runtime, 'inspect' | 'exec'>;
  images: ImageRequestHandler | undefined;
  /** Volume operations on this node (agent/runtime/volumes.ts). */
  volumes?: (request: VolumeRequest) => Promise<VolumeResponse>;
  /** This node's id (for the log messages). */
  nodeId: () => string;
  log: Logger;
}

/** What a handler gets: where to answer, the manager's frames, and the cancellation. */
interface RequestContext {
  sink: FrameSink;
  signal: AbortSignal;
  /** Called with every frame from the manager, in order; awaited (backpressure). */
  onManagerFrame: (handler: (frame: ManagerFrame) => Promise<void>) => void;
}

export function answerNodeRequest(client: Pick<InstanceType<typeof DispatcherClient>, 'attach'>, request: NodeRequest, deps: NodeRequestDeps): Promise<void> {
  const log = deps.log.child({ requestId: request.requestId, kind: request.request?.$case ?? 'none' });
  const call: grpc.ClientDuplexStream<AgentFrame, ManagerFrame> = client.attach();
  const abort = new AbortController();
  call.write({ requestId: request.requestId, frame: undefined });
  // Frames that come before the handler is ready (stdin while runc exec starts) wait for it.
  let setHandler: (handler: (frame: ManagerFrame) => Promise<void>) => void = () => undefined;
  const handlerReady = new Promise<(frame: ManagerFrame) => Promise<void>>((resolve) => (setHandler = resolve));
  // The manager's frames; the end of them (or an error) means the manager is done with us.
  const incoming = (async () => {
    try {
      for await (const frame of call as AsyncIterable<ManagerFrame>) await (await handlerReady)(frame);
    } catch {
      // cancelled or failed: the same for us
    }
    abort.abort();
  })();
  const context: RequestContext = { sink: new AttachSink(call, abort.signal), signal: abort.signal, onManagerFrame: (handler) => setHandler(handler) };
  return handle(request, deps, context)
    .catch(async (error: unknown) => {
      const message = error instanceof Error ? error.message : String(error);
      log.info('node request failed', { error: message });
      await context.sink.send({ $case: 'error', value: message });
    })
    .finally(() => {
      setHandler(async () => undefined);
      call.end();
      // A manager that never ends its side would keep this call open: give it a moment.
      const timer = setTimeout(() => call.cancel(), 5_000);
      void incoming.finally(() => clearTimeout(timer));
    });
}

async function handle(request: NodeRequest, deps: NodeRequestDeps, context: RequestContext): Promise<void> {
  const body = request.request;
  switch (body?.$case) {
    case 'logs':
      return answerLogs(body.value, deps.runtime, deps.nodeId(), context.sink, context.signal);
    case 'exec': {
      const session = await startExecSession(body.value, deps.runtime, context.sink, context.signal);
      context.onManagerFrame(async (frame) => {
        if (frame.frame?.$case === 'execInput') await session.input(frame.frame.value);
      });
      return session.done;
    }
    case 'image': {
      if (deps.images === undefined) throw new Error('image operations are not available on this node');
      let archive: Handoff<Uint8Array> | undefined;
      if (body.value.op?.$case === 'load') {
        const chunks = new Handoff<Uint8Array>();
        archive = chunks;
        context.onManagerFrame(async (frame) => {
          if (frame.frame?.$case === 'loadData') await chunks.push(frame.frame.value);
          else if (frame.frame?.$case === 'loadDone') chunks.end();
        });
        context.signal.addEventListener('abort', () => chunks.end(new Error('the image load was cancelled')), { once: true });
      }
      const response = await deps.images(body.value, archive);
      await context.sink.send({ $case: 'image', value: response });
      return;
    }
    case 'volume': {
      if (deps.volumes === undefined) throw new Error('volume operations are not available on this node');
      await context.sink.send({ $case: 'volume', value: await deps.volumes(body.value) });
      return;
    }
    case undefined:
      throw new Error('the request names no operation');
    default: {
      const exhaustive: never = body;
      throw new Error(`unknown request ${String(exhaustive)}`);
    }
  }
}
