/**
 * Control calls that a node answers: `service logs`, `task exec`, `image ls|pull|rm|prune|load`.
 * The leader sends one NodeRequest per node through the node-request broker and relays the
 * answers; a follower passes the whole call to the leader (see leader-proxy.ts), since only the
 * leader holds the agents' sessions.
 */
import * as grpc from '@grpc/grpc-js';
import type {
  ControlServer,
  ExecClientMessage,
  ImageCommandReply,
  ImageCommandRequest,
  LoadImageChunk,
  TaskLogsRequest,
  VolumeCommandReply,
  VolumeCommandRequest,
} from '../../proto/skiff/v1/control.js';
import type { AgentFrame } from '../../proto/skiff/v1/dispatcher.js';
import type { ExecOutput, ImageRequest, LogMessage } from '../../proto/skiff/v1/attach.js';
import type { Node, Task } from '../../proto/skiff/v1/objects.js';
import { NodeState, TaskState, taskStateToJSON } from '../../proto/skiff/v1/types.js';
import type { NodeRequestBody, NodeRequestBroker, NodeRequestStream } from '../dispatcher/node-requests.js';
import type { StoreReader } from '../store/store.js';
import { type NodeRequestOptions, resolveNode, resolveService } from './control-common.js';
import { ApiError } from './errors.js';
import { type LeaderControl, proxyBidi, proxyServerStream } from './leader-proxy.js';
import { toGrpcError } from './status-mapping.js';
import { resolveTask, shortTaskName, tasksForLogs } from './task-resolve.js';

type NodeRequestMethods = Pick<ControlServer, 'taskLogs' | 'execTask' | 'imageCommand' | 'loadImage' | 'volumeCommand'>;

/** Writes with backpressure; resolves false when the caller went away meanwhile. */
export async function writeTo<T>(call: grpc.ServerWritableStream<unknown, T> | grpc.ServerDuplexStream<unknown, T>, message: T): Promise<boolean> {
  if (call.cancelled) return false;
  if (call.write(message)) return true;
  await new Promise<void>((resolve) => {
    const done = (): void => {
      call.off('drain', done);
      call.off('cancelled', done);
      resolve();
    };
    call.on('drain', done);
    call.on('cancelled', done);
  });
  return !call.cancelled;
}

/**
 * The messages of a server call's request stream. Not `for await (… of call)`: Node destroys a
 * stream whose async iterator finished, and the call must still answer after the client half-closed.
 */
export function messagesOf<T>(call: grpc.ServerDuplexStream<T, unknown>): AsyncIterator<T> {
  return call.iterator({ destroyOnReturn: false }) as AsyncIterator<T>;
}

function fail(call: { emit(event: 'error', error: Error): boolean }, error: unknown): void {
  call.emit('error', toGrpcError(error));
}

const label = (node: Node | undefined, nodeId: string): string => node?.description?.hostname || nodeId;

export function nodeRequestHandlers(reader: StoreReader, options: NodeRequestOptions | undefined): NodeRequestMethods {
  const route = <Call extends { emit(event: 'error', error: Error): boolean }>(onLeader: (broker: NodeRequestBroker, call: Call) => Promise<void>, onFollower: (leader: LeaderControl, call: Call) => Promise<void>) => (call: Call): void => {
    const broker = options?.broker();
    if (broker !== undefined) {
      onLeader(broker, call).catch((error: unknown) => fail(call, error));
      return;
    }
    const leader = options?.leader();
    if (leader === undefined) return fail(call, new ApiError('unavailable', 'cannot reach the nodes: this manager is not the leader and knows no leader (no quorum?)'));
    onFollower(leader, call).catch((error: unknown) => fail(call, error));
  };
  return {
    taskLogs: route((broker, call) => serveLogs(reader, broker, call, options?.subscribe), (leader, call) => proxyServerStream(call, (metadata) => leader.client.taskLogs(call.request, metadata))),
    execTask: route((broker, call) => serveExec(reader, broker, call), (leader, call) => proxyBidi(call, (metadata) => leader.client.execTask(metadata))),
    imageCommand: route((broker, call) => serveImageCommand(reader, broker, call), (leader, call) => proxyServerStream(call, (metadata) => leader.client.imageCommand(call.request, metadata))),
    loadImage: route((broker, call) => serveLoadImage(reader, broker, call), (leader, call) => proxyBidi(call, (metadata) => leader.client.loadImage(metadata))),
    volumeCommand: route((broker, call) => serveVolumeCommand(reader, broker, call), (leader, call) => proxyServerStream(call, (metadata) => leader.client.volumeCommand(call.request, metadata))),
  };
}

/** States in which a task has (or had) its container: its log can be read. */
function hasLog(task: Task): boolean {
  const state = task.status?.state ?? TaskState.TASK_STATE_NEW;
  return task.nodeId !== '' && state >= TaskState.TASK_STATE_RUNNING && state !== TaskState.TASK_STATE_REJECTED;
}

/**
 * `service logs`: one node request per node for the tasks there, relayed as they come. With
 * `follow` on a service, tasks that start later (a scale-up, a replacement, an update) are
 * followed too, from their first line, once they run: the call then lasts until the client ends it.
 */
async function serveLogs(reader: StoreReader, broker: NodeRequestBroker, call: grpc.ServerWritableStream<TaskLogsRequest, LogMessage>, subscribe: NodeRequestOptions['subscribe']): Promise<void> {
  const request = call.request;
  const options = request.options ?? { follow: false, tail: -1, sinceMs: 0 };
  const tasks = tasksForLogs(reader, request.service, request.task);
  // `service logs web.2` names one task: nothing more to follow.
  const serviceId = request.task === '' ? serviceIdOf(reader, request.service) : undefined;
  const following = options.follow && serviceId !== undefined && subscribe !== undefined;
  const names = new Map<string, string>();
  const opened = new Set<string>();
  const streams: NodeRequestStream[] = [];
  let unsubscribe = (): void => undefined;
  const cancelAll = (): void => {
    unsubscribe();
    for (const stream of streams) stream.cancel();
  };
  call.on('cancelled', cancelAll);
  try {
    await new Promise<void>((resolve, reject) => {
      let pumping = 0;
      const settleIfIdle = (): void => {
        if (pumping === 0 && !following) resolve();
      };
      const open = (nodeId: string, batch: readonly Task[], nodeOptions: typeof options): void => {
        const node = reader.get('node', nodeId);
        const nodeLabel = label(node, nodeId);
        for (const task of batch) {
          names.set(task.meta?.id ?? '', shortTaskName(task));
          opened.add(task.meta?.id ?? '');
        }
        let stream: NodeRequestStream;
        try {
          stream = broker.open(nodeId, { $case: 'logs', value: { taskIds: batch.map((task) => task.meta?.id ?? ''), options: nodeOptions } }, nodeLabel);
        } catch (error) {
          // History on a node that is gone says nothing; a node that should run a task must answer.
          const live = batch.some((task) => task.desiredState === TaskState.TASK_STATE_RUNNING);
          if (live || node?.status?.state === NodeState.NODE_STATE_READY) reject(error);
          return;
        }
        streams.push(stream);
        pumping += 1;
        void (async () => {
          for await (const frame of stream.frames()) {
            const value = frame.frame;
            if (value?.$case === 'error') throw new ApiError('unavailable', `cannot read logs on node ${nodeLabel}: ${value.value}`);
            if (value?.$case === 'done') break;
            if (value?.$case !== 'logs') continue;
            for (const message of value.value.messages) {
              const named = { ...message, taskName: names.get(message.taskId) ?? message.taskName, nodeId: stream.nodeId };
              if (!(await writeTo(call, named))) return;
            }
          }
          stream.cancel();
        })().then(
          () => {
            pumping -= 1;
            settleIfIdle();
          },
          reject,
        );
      };
      if (following) {
        // Subscribed in the same turn as the read below: no task change falls between them.
        unsubscribe = subscribe((commit) => {
          for (const event of commit.events) {
            if (event.kind !== 'task' || event.action === 'remove') continue;
            const task = event.object;
            if (task.serviceId !== serviceId || opened.has(task.meta?.id ?? '') || !hasLog(task)) continue;
            // A task that started after the call: every line it wrote.
            open(task.nodeId, [task], { ...options, tail: -1 });
          }
        });
        call.on('cancelled', () => resolve());
      }
      const byNode = new Map<string, Task[]>();
      // Following, a task not yet running is opened once it runs (above), not now with no log.
      for (const task of tasks) if (!following || hasLog(task)) byNode.set(task.nodeId, [...(byNode.get(task.nodeId) ?? []), task]);
      for (const [nodeId, batch] of byNode) open(nodeId, batch, options);
      settleIfIdle();
    });
  } finally {
    cancelAll();
  }
  call.end();
}

function serviceIdOf(reader: StoreReader, reference: string): string | undefined {
  try {
    return resolveService(reader, reference).meta?.id;
  } catch {
    return undefined;
  }
}

async function serveExec(reader: StoreReader, broker: NodeRequestBroker, call: grpc.ServerDuplexStream<ExecClientMessage, ExecOutput>): Promise<void> {
  const inputs = messagesOf(call);
  const first = await inputs.next();
  if (first.done === true || first.value.message?.$case !== 'start') throw new ApiError('invalid_argument', 'cannot exec: the first message must be the exec request (start)');
  const request = first.value.message.value;
  if (request.argv.length === 0 || request.argv[0] === '') throw new ApiError('invalid_argument', 'cannot exec: the command (argv) is empty');
  const task = resolveTask(reader, request.task);
  const name = `${shortTaskName(task)}.${task.meta?.id ?? ''}`;
  const state = task.status?.state ?? TaskState.TASK_STATE_NEW;
  if (state !== TaskState.TASK_STATE_RUNNING) {
    throw new ApiError('failed_precondition', `cannot exec in task ${name}: it is not running (state ${taskStateToJSON(state).replace('TASK_STATE_', '').toLowerCase()})`);
  }
  const node = reader.get('node', task.nodeId);
  const stream = broker.open(task.nodeId, { $case: 'exec', value: { ...request, task: task.meta?.id ?? '' } }, label(node, task.nodeId));
  call.on('cancelled', () => stream.cancel());
  // Stdin flows while the output does; it ends when the client half-closes.
  void (async () => {
    for (;;) {
      const next = await inputs.next();
      if (next.done === true) return;
      if (next.value.message?.$case === 'input') await stream.send({ frame: { $case: 'execInput', value: next.value.message.value } });
    }
  })().catch(() => undefined);
  try {
    for await (const frame of stream.frames()) {
      const value = frame.frame;
      if (value?.$case === 'error') throw new ApiError('failed_precondition', `cannot exec in task ${name}: ${value.value}`);
      if (value?.$case !== 'execOutput') continue;
      if (!(await writeTo(call, value.value))) return;
      if (value.value.output?.$case === 'exitCode') {
        call.end();
        return;
      }
    }
  } finally {
    stream.cancel();
  }
  throw new ApiError('unavailable', `cannot exec in task ${name}: node ${label(node, task.nodeId)} ended the call without an exit code`);
}

/** Nodes by id, prefix or hostname; none named = every ready node. */
function targetNodes(reader: StoreReader, references: string[]): Node[] {
  if (references.length === 0) return reader.list('node').filter((node) => node.status?.state === NodeState.NODE_STATE_READY);
  const found = new Map<string, Node>();
  for (const reference of references) {
    const node = resolveNode(reader, reference);
    found.set(node.meta?.id ?? '', node);
  }
  return [...found.values()];
}

interface NodeReply<R> {
  nodeId: string;
  hostname: string;
  response: R | undefined;
  error: string;
}

/** One node's answer to a one-shot request (image, volume), taken by `pick`; a failure becomes the reply's error. */
async function nodeReply<R>(stream: NodeRequestStream | Error, node: Node, pick: (frame: AgentFrame['frame']) => R | undefined): Promise<NodeReply<R>> {
  const nodeId = node.meta?.id ?? '';
  const reply = { nodeId, hostname: node.description?.hostname ?? '', response: undefined, error: '' };
  if (stream instanceof Error) return { ...reply, error: stream.message };
  try {
    for await (const frame of stream.frames()) {
      const response = pick(frame.frame);
      if (response !== undefined) return { ...reply, response };
      if (frame.frame?.$case === 'error') return { ...reply, error: frame.frame.value };
    }
    return { ...reply, error: `node ${label(node, nodeId)} ended the call without an answer` };
  } catch (error) {
    return { ...reply, error: error instanceof Error ? error.message : String(error) };
  } finally {
    stream.cancel();
  }
}

const imageReply = (stream: NodeRequestStream | Error, node: Node): Promise<ImageCommandReply> => nodeReply(stream, node, (frame) => (frame?.$case === 'image' ? frame.value : undefined));

function openOnNode(broker: NodeRequestBroker, node: Node, body: NodeRequestBody): NodeRequestStream | Error {
  try {
    return broker.open(node.meta?.id ?? '', body, label(node, node.meta?.id ?? ''));
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error));
  }
}

const openImage = (broker: NodeRequestBroker, node: Node, request: ImageRequest): NodeRequestStream | Error => openOnNode(broker, node, { $case: 'image', value: request });

/** Sends `body` to each target node at once and relays one reply per node as each answers. */
async function serveOnNodes<R>(reader: StoreReader, broker: NodeRequestBroker, call: grpc.ServerWritableStream<unknown, NodeReply<R>>, nodeReferences: string[], body: NodeRequestBody, pick: (frame: AgentFrame['frame']) => R | undefined): Promise<void> {
  const nodes = targetNodes(reader, nodeReferences);
  const streams = nodes.map((node) => openOnNode(broker, node, body));
  call.on('cancelled', () => streams.forEach((stream) => stream instanceof Error || stream.cancel()));
  await Promise.all(nodes.map(async (node, index) => writeTo(call, await nodeReply(streams[index] ?? new Error('no stream'), node, pick))));
  call.end();
}

async function serveVolumeCommand(reader: StoreReader, broker: NodeRequestBroker, call: grpc.ServerWritableStream<VolumeCommandRequest, VolumeCommandReply>): Promise<void> {
  const request = call.request.request;
  if (request?.op === undefined) throw new ApiError('invalid_argument', 'cannot run the volume command: request.op is missing');
  await serveOnNodes(reader, broker, call, call.request.nodes, { $case: 'volume', value: request }, (frame) => (frame?.$case === 'volume' ? frame.value : undefined));
}

async function serveImageCommand(reader: StoreReader, broker: NodeRequestBroker, call: grpc.ServerWritableStream<ImageCommandRequest, ImageCommandReply>): Promise<void> {
  const request = call.request.request;
  if (request?.op === undefined) throw new ApiError('invalid_argument', 'cannot run the image command: request.op is missing');
  if (request.op.$case === 'load') throw new ApiError('invalid_argument', 'cannot run the image command: load goes through LoadImage');
  await serveOnNodes(reader, broker, call, call.request.nodes, { $case: 'image', value: request }, (frame) => (frame?.$case === 'image' ? frame.value : undefined));
}

async function serveLoadImage(reader: StoreReader, broker: NodeRequestBroker, call: grpc.ServerDuplexStream<LoadImageChunk, ImageCommandReply>): Promise<void> {
  const chunks = messagesOf(call);
  const first = await chunks.next();
  if (first.done === true || first.value.chunk?.$case !== 'start') throw new ApiError('invalid_argument', 'cannot load the image: the first message must name the nodes (start)');
  const nodes = targetNodes(reader, first.value.chunk.value.nodes);
  const streams = nodes.map((node) => openImage(broker, node, { op: { $case: 'load', value: {} } }));
  call.on('cancelled', () => streams.forEach((stream) => stream instanceof Error || stream.cancel()));
  // Replies are awaited from the start: a node that fails early answers at once and is skipped.
  const answered = new Set<number>();
  const replies = nodes.map((node, index) =>
    imageReply(streams[index] ?? new Error('no stream'), node).then(async (reply) => {
      answered.add(index);
      await writeTo(call, reply);
    }),
  );
  const live = (): NodeRequestStream[] => streams.filter((stream, index): stream is NodeRequestStream => !(stream instanceof Error) && !answered.has(index));
  for (;;) {
    const next = await chunks.next();
    if (next.done === true) break;
    if (next.value.chunk?.$case !== 'data') continue;
    const data = next.value.chunk.value;
    // A node that fails takes its error into its reply; the others go on.
    await Promise.all(live().map((stream) => stream.send({ frame: { $case: 'loadData', value: data } }).catch(() => undefined)));
  }
  await Promise.all(live().map((stream) => stream.send({ frame: { $case: 'loadDone', value: true } }).catch(() => undefined)));
  await Promise.all(replies);
  call.end();
}

