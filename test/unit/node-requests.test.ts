/**
 * The node-request channel end to end in one process: a real manager (Control, Dispatcher, broker)
 * and real agent sessions over mutual TLS, whose agents answer with the real attach handlers on
 * top of a fake runtime (named so: it only knows a log path per task) and fake image handlers.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { answerNodeRequest, type ImageRequestHandler } from '../../agent/attach/node-request-handler.js';
import type { ContainerInfo, Runtime } from '../../agent/runtime/types.js';
import { AgentSession } from '../../agent/session/session.js';
import { silentLogger } from '../../common/log.js';
import { FakeCluster, fakeServiceSpec } from '../../manager/api/testing/fake-cluster.js';
import type { ImageCommandReply } from '../../proto/skiff/v1/control.js';
import type { LogMessage } from '../../proto/skiff/v1/attach.js';
import { NodeState, TaskState } from '../../proto/skiff/v1/types.js';

let cluster: FakeCluster;
let dir: string;
const sessions: AgentSession[] = [];

beforeEach(async () => {
  cluster = await FakeCluster.start({ heartbeatPeriodMs: 200 });
  dir = mkdtempSync(join(tmpdir(), 'skiff-node-requests-'));
});
afterEach(async () => {
  for (const session of sessions.splice(0)) session.close();
  await cluster.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A fake runtime: every task has a "running" container whose log is `<dir>/<task id>.log`. */
function fakeRuntime(): Pick<Runtime, 'inspect' | 'exec'> {
  return {
    inspect: async (containerId): Promise<ContainerInfo> => ({ containerId, labels: {}, status: 'running', pid: 1, addresses: [], startedAtMs: 0, logPath: join(dir, `${containerId}.log`) }),
    exec: () => Promise.reject(new Error('the fake runtime does not exec')),
  };
}

/** An agent: a real session whose tasks report running at once, answering requests with the real handlers. */
async function startAgent(hostname: string, images: ImageRequestHandler | undefined): Promise<void> {
  const credentials = await cluster.credentials('worker');
  let nodeId = '';
  const session: AgentSession = new AgentSession({
    managers: [cluster.address],
    credentials,
    description: { hostname, platform: { os: 'linux', architecture: 'amd64' }, resources: { nanoCpus: 4e9, memoryBytes: 8e9, pids: 0 }, engineVersion: 'fake' },
    addr: '127.0.0.1',
    log: silentLogger,
    onSessionStarted: (id) => (nodeId = id),
    onAssignments: (assignments) => {
      for (const task of assignments.updated) {
        session.report(task.meta?.id ?? '', { state: TaskState.TASK_STATE_RUNNING, message: '', err: '', timestampMs: Date.now(), exitCode: 0, containerId: task.meta?.id ?? '', pid: 1, health: 0 }, []);
      }
    },
    onRequest: (request, client) => void answerNodeRequest(client, request, { runtime: fakeRuntime(), images, nodeId: () => nodeId, log: silentLogger }),
  });
  sessions.push(session);
  session.start();
}

async function waitUntil<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function readAll<T>(call: grpc.ClientReadableStream<T> | grpc.ClientDuplexStream<unknown, T>): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const items: T[] = [];
    call.on('data', (item: T) => items.push(item));
    call.on('error', reject);
    call.on('end', () => resolve(items));
  });
}

describe('node requests through a real manager and real agent sessions', () => {
  it('image commands get one reply per ready node, with the error of a node that cannot answer', async () => {
    await startAgent('with-images', async (request) => ({ images: [{ references: [`listed:${request.op?.$case ?? ''}`], digest: 'sha256:1', sizeBytes: 1, createdMs: 0, containers: 0 }], deleted: [], reclaimedBytes: 0 }));
    await startAgent('without-images', undefined);
    const admin = await cluster.control();
    await waitUntil('two ready nodes', async () => ((await admin.call((c) => c.listNodes, {})).nodes.filter((node) => node.status?.state === NodeState.NODE_STATE_READY).length >= 2 ? true : undefined));
    const replies = await readAll<ImageCommandReply>(admin.client.imageCommand({ nodes: [], request: { op: { $case: 'list', value: {} } } }));
    const byHost = new Map(replies.map((reply) => [reply.hostname, reply]));
    expect(byHost.get('with-images')?.response?.images[0]?.references).toEqual(['listed:list']);
    expect(byHost.get('with-images')?.error).toBe('');
    expect(byHost.get('without-images')?.error).toBe('image operations are not available on this node');
    await expect(readAll(admin.client.imageCommand({ nodes: ['nosuchnode'], request: { op: { $case: 'list', value: {} } } }))).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
  });

  it('load relays the archive chunks, in order, to the named node', async () => {
    await startAgent('loader', async (_request, archive) => {
      const chunks: Buffer[] = [];
      for await (const chunk of archive ?? []) chunks.push(Buffer.from(chunk));
      return { images: [{ references: [Buffer.concat(chunks).toString()], digest: '', sizeBytes: 0, createdMs: 0, containers: 0 }], deleted: [], reclaimedBytes: 0 };
    });
    const admin = await cluster.control();
    await waitUntil('the loader node', async () => ((await admin.call((c) => c.listNodes, {})).nodes.some((node) => node.description?.hostname === 'loader' && node.status?.state === NodeState.NODE_STATE_READY) ? true : undefined));
    const call = admin.client.loadImage();
    const replies = readAll<ImageCommandReply>(call);
    call.write({ chunk: { $case: 'start', value: { nodes: ['loader'] } } });
    for (const part of ['one,', 'two,', 'three']) call.write({ chunk: { $case: 'data', value: Buffer.from(part) } });
    call.end();
    const [reply] = await replies;
    expect(reply?.error).toBe('');
    expect(reply?.response?.images[0]?.references).toEqual(['one,two,three']);
  });

  it('task logs come back with task names, tail applied per task; exec failing on the node says why', async () => {
    await startAgent('logger', undefined);
    const admin = await cluster.control();
    await admin.call((c) => c.createService, { noResolveImage: true, spec: fakeServiceSpec('web', 2) });
    const tasks = await waitUntil('two running tasks', async () => {
      const listed = (await admin.call((c) => c.listTasks, { service: 'web', node: '' })).tasks;
      return listed.filter((task) => task.status?.state === TaskState.TASK_STATE_RUNNING).length === 2 ? listed : undefined;
    });
    for (const task of tasks) {
      const id = task.meta?.id ?? '';
      writeFileSync(join(dir, `${id}.log`), ['a', 'b', 'c'].map((line, index) => `2026-11-23T10:00:0${index}.000000001Z stdout F ${line}-${task.slot}\n`).join(''));
    }
    const messages = await readAll<LogMessage>(admin.client.taskLogs({ service: 'web', task: '', options: { follow: false, tail: 2, sinceMs: 0 } }));
    const lines = messages.map((message) => `${message.taskName} ${Buffer.from(message.line).toString()}`).sort();
    expect(lines).toEqual(['web.1 b-1', 'web.1 c-1', 'web.2 b-2', 'web.2 c-2']);
    const exec = admin.client.execTask();
    const outputs = readAll(exec);
    exec.write({ message: { $case: 'start', value: { task: 'web.1', argv: ['true'], env: [], user: '', workdir: '', attachStdin: false } } });
    exec.end();
    await expect(outputs).rejects.toMatchObject({ details: expect.stringContaining('the fake runtime does not exec') });
  });
});
